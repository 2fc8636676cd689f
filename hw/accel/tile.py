"""A compute tile: sequencer, tile DMA, GEMM engine and vector unit behind one AXI4 manager.

::

                 +------------------------------ tile -------------------------------+
    m_axi <----- | axi_mux <- sequencer (fetch)    --> GEMM cmd / VPU cmd, statuses  |
      (NoC)      |         <- tile DMA (rd, wr)    --> load router --> GEMM A/B/Q,   |
                 |                                 <-- store mux   <-- VPU A/B/P     |
                 |                                                     GEMM C, VPU Y/S|
                 +-------------------------------------------------------------------+

The sequencer resolves each LOAD/STORE (:data:`~.isa.Move`) and hands it to the tile DMA; the
tile records the move's port in order (the DMA answers moves of one direction in order), so
the load router sends each read beat to the port of the move it belongs to (the DMA marks a
move's last beat), and the store mux takes a move's ``rows * ceil(row_bytes / 2**beat_log2)``
beats from its source port. A unit beat carries ``2**beat_log2`` bytes in its low bytes: the
port's native width (GEMM A ``R`` bytes, B ``C``, Q and P and S 8, C ``4C`` or ``C``, VPU
``lanes`` times 1, 2 or 4); the sequencer refuses any other size for the port.

The vector unit takes a beat of ``a`` and one of ``b`` together (ADD, MUL, ROPE) while the DMA
delivers one move after another, so ``b`` goes through a row buffer of ``vpu_buffer / lanes``
beats: a program loads a row of ``b``, then the row of ``a`` it pairs with (REPEAT over the rows
with two LOADs).

``unit_reset`` from the sequencer (after an error) resets the GEMM engine, the vector unit and
the routing state, so the next program finds every unit empty.

Latency and throughput are the units': a LOAD feeding a unit adds the DMA's read latency to the
unit's command; the units run concurrently, each in its command order.
"""

from dataclasses import asdict, dataclass

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from ..axi import AXI4Signature, AXIStreamSignature
from ..axi_mux import AXIMux, source_bits
from ..gemm import GEMM
from ..params import ParameterError, Params, param
from ..vpu.vpu import VPU
from .isa import INSTR_BITS, ErrCode, LoadPort, StorePort
from .semaphores import SemRequest
from .sequencer import SeqState, Sequencer
from .tile_dma import TileDMA


__all__ = ["ComputeParams", "TileParams", "Tile", "tile", "port_beats"]


@dataclass(frozen=True)
class ComputeParams(Params):
    """The parameters of a tile's compute units, shared by a tile and the whole accelerator.
    The defaults are a small configuration that simulates quickly (a 4 x 4 array, 2 vector
    lanes, 64-word buffers: a Verilator build of a few minutes); a large one is e.g.
    ``--rows 16 --cols 16 --lanes 8 --a-depth 4096 --b-depth 4096 --c-depth 4096 --max-n 256
    --vpu-buffer 4096 --vpu-channels 2048``."""
    rows: int = param(4, lo=2, hi=16, power_of_two=True, doc="systolic array rows (weight-stationary)")
    cols: int = param(4, lo=2, hi=16, power_of_two=True, doc="systolic array columns")
    a_depth: int = param(64, lo=2, hi=65536, doc="GEMM A buffer words (R int8 each)")
    b_depth: int = param(64, lo=2, hi=65536, doc="GEMM B buffer words (C int8 each)")
    c_depth: int = param(64, lo=2, hi=65536, doc="GEMM C buffer words (C int32 each)")
    max_n: int = param(16, lo=1, hi=65535, doc="largest GEMM N of LOAD_Q/STORE")
    lanes: int = param(2, lo=2, hi=16, power_of_two=True, doc="vector unit lanes")
    vpu_buffer: int = param(32, lo=2, hi=16384, doc="vector unit row buffer (elements)")
    vpu_channels: int = param(32, lo=2, hi=16384, doc="vector unit channel parameters")
    outstanding: int = param(8, lo=1, hi=64, doc="moves and unit commands in flight per unit")

    def check(self):
        for name in ("vpu_buffer", "vpu_channels"):
            if getattr(self, name) % self.lanes:
                raise ParameterError(f"{name}: {getattr(self, name)} is not a multiple of lanes "
                                     f"{self.lanes} (accepted: a multiple of lanes in {self.lanes}..16384)")

    def compute_fields(self):
        """The fields of :class:`ComputeParams` of this set, as a dict."""
        return {f: getattr(self, f) for f in ComputeParams.__dataclass_fields__}


@dataclass(frozen=True)
class TileParams(ComputeParams):
    """Parameters of one compute tile (the ``accel_tile`` block)."""
    addr_width: int = param(16, lo=12, hi=40, doc="HBM byte address bits")
    hbm_bytes: int = param(0, lo=0, hi=1 << 40, doc="HBM size a move must stay inside (0: 2**addr_width)")
    id_width: int = param(4, lo=1, hi=15, doc="AXI ID bits of the sequencer and DMA (m_axi: one more)")

    def check(self):
        super().check()
        if self.hbm_bytes > 1 << self.addr_width:
            raise ParameterError(f"hbm_bytes: {self.hbm_bytes} does not fit addr_width {self.addr_width} "
                                 f"(accepted: 0..{1 << self.addr_width})")


def port_beats(*, rows, cols, lanes):
    """``(load, store)``: the beat sizes (``beat_log2``) each port of a tile takes."""
    r, c, v = exact_log2(rows), exact_log2(cols), exact_log2(lanes)
    vpu = {v, v + 1, v + 2}           # int8, int16, int32 elements
    load = {LoadPort.GEMM_A: {r}, LoadPort.GEMM_B: {c}, LoadPort.GEMM_Q: {3},
            LoadPort.VPU_A: vpu, LoadPort.VPU_B: vpu, LoadPort.VPU_P: {3}}
    store = {StorePort.GEMM_C: {c, c + 2}, StorePort.VPU_Y: vpu, StorePort.VPU_S: {3}}
    return load, store


class Tile(wiring.Component):
    """One compute tile (see the module docstring).

    Parameters
    ----------
    rows, cols : int
        Systolic array (powers of two, 2..16); WS dataflow.
    a_depth, b_depth, c_depth, max_n : int
        GEMM engine buffers (:class:`~scoville.hw.gemm.GEMM`).
    lanes, vpu_buffer, vpu_channels : int
        Vector unit (:class:`~scoville.hw.vpu.vpu.VPU`; lanes a power of two, 2..16).
    addr_width, hbm_bytes : int
        HBM address space seen by the tile, and the size a move must stay inside.
    id_width : int
        ID bits of the sequencer's and the DMA's AXI ports; ``m_axi`` has one more.
    outstanding : int
        Moves (each direction) and unit commands in flight per unit.

    Members
    -------
    m_axi : Out(AXI4Signature(addr_width, 256, id_width + 1))
        Instruction fetch and DMA, merged (:class:`~scoville.hw.axi_mux.AXIMux`).
    start, prog_base, abort, state, err_code, err_pc, retired
        The sequencer's control and status (:class:`~.sequencer.Sequencer`).
    m_kv, kv_busy, kv_error, m_post, m_take
        To the KV-cache DMA and the semaphore bank.
    perf_gemm_busy, perf_gemm_fill_drain : Out(32)
        The GEMM engine's counters (array utilisation = 1 - fill_drain / busy over a COMPUTE).
    """

    def __init__(self, *, params=None, **kwargs):
        self.params = p = params if params is not None else TileParams(**kwargs)
        self._cfg = c = asdict(p)
        c["hbm_bytes"] = p.hbm_bytes or 1 << p.addr_width
        rows, cols, lanes, addr_width, id_width = p.rows, p.cols, p.lanes, p.addr_width, p.id_width
        # one unit beat is at most the widest port: GEMM C (int32) or a VPU row of int32
        self._port_bits = max(32 * cols, 32 * lanes, 64)
        super().__init__({
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=INSTR_BITS,
                                       id_width=id_width + source_bits(2))),
            "start": In(1), "prog_base": In(addr_width), "abort": In(1),
            "state": Out(SeqState), "err_code": Out(ErrCode), "err_pc": Out(addr_width),
            "retired": Out(32),
            "m_kv": Out(stream.Signature(256)), "kv_busy": In(1), "kv_error": In(1),
            "m_post": Out(stream.Signature(SemRequest)), "m_take": Out(stream.Signature(SemRequest)),
            "perf_gemm_busy": Out(32), "perf_gemm_fill_drain": Out(32),
        })


    def elaborate(self, platform):
        m = Module()
        c = self._cfg
        R, C, L, aw, iw = c["rows"], c["cols"], c["lanes"], c["addr_width"], c["id_width"]
        load_beats, store_beats = port_beats(rows=R, cols=C, lanes=L)
        seq = m.submodules.seq = Sequencer(addr_width=aw, hbm_bytes=c["hbm_bytes"], id_width=iw,
                                           outstanding=c["outstanding"], load_beats=load_beats,
                                           store_beats=store_beats)
        dma = m.submodules.dma = TileDMA(addr_width=aw, data_width=INSTR_BITS, id_width=iw,
                                         port_bits=self._port_bits, outstanding=c["outstanding"])
        reset = seq.unit_reset
        gemm = m.submodules.gemm = ResetInserter(reset)(GEMM(
            rows=R, cols=C, dataflow="ws", a_depth=c["a_depth"], b_depth=c["b_depth"],
            c_depth=c["c_depth"], max_n=c["max_n"]))
        vpu = m.submodules.vpu = ResetInserter(reset)(VPU(
            lanes=L, buffer=c["vpu_buffer"], channels=c["vpu_channels"]))
        gemm_c, vpu_c = gemm, vpu      # (the reset wrapper forwards the ports)

        # ---- the sequencer's outside world -----------------------------------------------
        mux = m.submodules.axi_mux = AXIMux(managers=2, addr_width=aw, data_width=INSTR_BITS, id_width=iw)
        wiring.connect(m, seq.m_axi, mux.s_axi0)
        wiring.connect(m, dma.m_axi, mux.s_axi1)
        wiring.connect(m, mux.m_axi, wiring.flipped(self.m_axi))
        m.d.comb += [seq.start.eq(self.start), seq.prog_base.eq(self.prog_base), seq.abort.eq(self.abort),
                     self.state.eq(seq.state), self.err_code.eq(seq.err_code), self.err_pc.eq(seq.err_pc),
                     self.retired.eq(seq.retired), seq.kv_busy.eq(self.kv_busy), seq.kv_error.eq(self.kv_error),
                     dma.abort.eq(seq.dma_abort), seq.dma_busy.eq(dma.busy),
                     self.perf_gemm_busy.eq(gemm_c.perf_busy),
                     self.perf_gemm_fill_drain.eq(gemm_c.perf_fill_drain)]
        wiring.connect(m, seq.m_kv, wiring.flipped(self.m_kv))
        wiring.connect(m, seq.m_post, wiring.flipped(self.m_post))
        wiring.connect(m, seq.m_take, wiring.flipped(self.m_take))
        wiring.connect(m, seq.m_gemm, gemm_c.s_cmd)
        wiring.connect(m, gemm_c.m_sts, seq.s_gemm_sts)
        wiring.connect(m, seq.m_vpu, vpu_c.s_cmd)
        wiring.connect(m, vpu_c.m_sts, seq.s_vpu_sts)
        for sts, dst in ((dma.m_rd_sts, seq.s_load_sts), (dma.m_wr_sts, seq.s_store_sts)):
            m.d.comb += [dst.valid.eq(sts.valid), dst.payload.eq(sts.payload.resp), sts.ready.eq(dst.ready)]

        # ---- moves: the port of each, in DMA order ---------------------------------------
        for src, dst in ((seq.m_load, dma.s_rd), (seq.m_store, dma.s_wr)):
            for name in ("addr", "rows", "row_bytes", "stride", "beat_log2"):
                m.d.comb += getattr(dst.payload, name).eq(getattr(src.payload, name))

        rd_ord = m.submodules.rd_order = ResetInserter(reset)(
            fifo.SyncFIFOBuffered(width=4, depth=c["outstanding"]))
        m.d.comb += [dma.s_rd.valid.eq(seq.m_load.valid & rd_ord.w_rdy),
                     seq.m_load.ready.eq(dma.s_rd.ready & rd_ord.w_rdy),
                     rd_ord.w_data.eq(seq.m_load.payload.port),
                     rd_ord.w_en.eq(seq.m_load.valid & seq.m_load.ready)]

        wr_ord = m.submodules.wr_order = ResetInserter(reset)(
            fifo.SyncFIFOBuffered(width=4 + 40, depth=c["outstanding"]))
        mv = seq.m_store.payload
        unit_beats = Signal(40)
        per_row = (mv.row_bytes + (1 << mv.beat_log2) - 1) >> mv.beat_log2
        m.d.comb += [unit_beats.eq(mv.rows * per_row),
                     dma.s_wr.valid.eq(seq.m_store.valid & wr_ord.w_rdy),
                     seq.m_store.ready.eq(dma.s_wr.ready & wr_ord.w_rdy),
                     wr_ord.w_data.eq(mv.port | (unit_beats << 4)),
                     wr_ord.w_en.eq(seq.m_store.valid & seq.m_store.ready)]

        # ---- the second operand's row buffer ----------------------------------------------
        # The vector unit takes an a beat and a b beat together (ADD, MUL, ROPE), while the DMA
        # delivers one move after the other: b's rows wait here, so a program loads a row of b,
        # then the row of a it pairs with (up to vpu_buffer elements of int32 per row).
        bq = m.submodules.vpu_b_rows = ResetInserter(reset)(
            fifo.SyncFIFOBuffered(width=len(vpu_c.s_axis_b.tdata), depth=c["vpu_buffer"] // L))
        m.d.comb += [vpu_c.s_axis_b.tdata.eq(bq.r_data), vpu_c.s_axis_b.tvalid.eq(bq.r_rdy),
                     bq.r_en.eq(vpu_c.s_axis_b.tready)]
        b_rows = AXIStreamSignature(data_width=len(vpu_c.s_axis_b.tdata), keep=False, last=False).create()
        m.d.comb += [bq.w_data.eq(b_rows.tdata), bq.w_en.eq(b_rows.tvalid), b_rows.tready.eq(bq.w_rdy)]

        # ---- load router: each read beat to its move's port ------------------------------
        sinks = {LoadPort.GEMM_A: gemm_c.s_axis_a, LoadPort.GEMM_B: gemm_c.s_axis_b,
                 LoadPort.GEMM_Q: gemm_c.s_axis_q, LoadPort.VPU_A: vpu_c.s_axis_a,
                 LoadPort.VPU_B: b_rows, LoadPort.VPU_P: vpu_c.s_axis_p}
        rd = dma.m_rd
        ready = 0
        for port, sink in sinks.items():
            sel = rd_ord.r_rdy & (rd_ord.r_data == port.value)
            m.d.comb += [sink.tdata.eq(rd.payload.data[:len(sink.tdata)]), sink.tvalid.eq(rd.valid & sel)]
            ready = ready | (sel & sink.tready)
        m.d.comb += [rd.ready.eq(ready), rd_ord.r_en.eq(rd.valid & rd.ready & rd.payload.end)]

        # ---- store mux: a move's beats from its port -------------------------------------
        sources = {StorePort.GEMM_C: gemm_c.m_axis_c, StorePort.VPU_Y: vpu_c.m_axis_y,
                   StorePort.VPU_S: vpu_c.m_axis_s}
        taken = Signal(40)
        wd = dma.s_wr_data
        head_port, head_beats = wr_ord.r_data[:4], wr_ord.r_data[4:]
        for port, source in sources.items():
            sel = wr_ord.r_rdy & (head_port == port.value)
            with m.If(sel):
                m.d.comb += [wd.payload.data.eq(source.tdata), wd.valid.eq(source.tvalid)]
            m.d.comb += source.tready.eq(sel & wd.ready)
        with m.If(wd.valid & wd.ready):
            with m.If(taken + 1 == head_beats):
                m.d.comb += wr_ord.r_en.eq(1)
                m.d.sync += taken.eq(0)
            with m.Else():
                m.d.sync += taken.eq(taken + 1)
        with m.If(reset):
            m.d.sync += taken.eq(0)
        return m


def tile(**params):
    """Factory of the ``accel_tile`` block."""
    return Tile(**params)
