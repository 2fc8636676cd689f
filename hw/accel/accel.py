"""The Scoville accelerator: compute tiles, HBM channels and the KV-cache DMA on the mesh NoC.

::

    s_axil --> axil_decoder --> [0x000] accelerator CSRs (launch, abort, status, errors, counters)
                            --> [0x400] KV-cache DMA CSRs
    s_axi  --> host AXI bridge ----+
    tile k --> AXI bridge ---------+--> mesh (requests / responses) --> AXI bridge --> HBM ctrl c --> phy<c>
    kvdma  --> AXI bridge ---------+

Address map (every manager: tiles, host, KV-cache DMA): channel ``c`` owns the window
``[c << channel_shift, (c + 1) << channel_shift)``, ``channel_shift`` = log2 of a channel's bytes
(:attr:`AccelParams.channel_bytes`); addresses past the last channel answer DECERR at the
manager's bridge. The placement (:mod:`.placement`) puts tile ``t`` above channel ``t``.

Host flow: write programs and data through ``s_axi``; write each tile's ``prog_base<t>``; write a
tile mask to ``launch`` (semaphores are cleared by a launch when no tile runs); wait for
``irq`` (``irq_enable`` set) or poll ``running``; read ``done``/``error`` and each tile's
``err_code<t>``/``err_pc<t>``. ``abort`` (a tile mask) stops running programs with ABORT.

CSRs (32-bit, 4 bytes apart, in this order): ``launch`` (w, strobe: tile mask), ``abort`` (w,
strobe: tile mask), ``irq_enable`` (bit 0), ``running``, ``done``, ``error`` (tile masks),
``irq_status`` (bit 0: every launched tile has finished since the last launch), ``cycles`` (cycles
with a tile running since the launch that found none running), ``info`` (tiles, channels, array
rows, columns, one byte each), then per tile ``prog_base<t>``, ``err_code<t>``, ``err_pc<t>``,
``retired<t>``.

Members
-------
s_axil : In(AXI4LiteSignature(12, 32))
s_axi : In(AXI4Signature(addr_width, 256, 3))
    The host's path to HBM (same map as the tiles).
irq : Out(1)
    ``irq_enable & irq_status``.
phy<c> : Out(PHYSignature)
    Channel ``c``'s controller command/data bus, for its PHY (in simulation, a behavioural device).
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..axi import AXI4LiteSignature, AXI4Signature
from ..axil_decoder import AXILiteDecoder
from ..csr import CSRBlock, Register
from ..hbm.controller import ATOM_BITS, HBMController, PHYSignature
from ..hbm.timing import HBMParams, PRESETS
from ..kvdma import KVDMA
from ..noc.axi_bridge import REQ, RSP, AXIBridgeManager, AXIBridgeSubordinate, bridge_flit_width
from ..noc.flit import message_head_layout, node_bits
from ..noc.mesh import Mesh
from ..params import ParameterError, param
from .placement import place
from .semaphores import SemaphoreBank
from .sequencer import SeqState
from .tile import ComputeParams, Tile, TileParams


__all__ = ["AccelParams", "Accel", "accel", "ID_WIDTH", "CSR_WINDOW", "KV_CSR_BASE"]

ID_WIDTH = 3            # every manager's AXI ID width at its bridge (tiles: sequencer + DMA IDs)
CSR_WINDOW = 0x400      # accelerator CSRs at 0x000, KV-cache DMA CSRs at 0x400
KV_CSR_BASE = 0x400


@dataclass(frozen=True)
class AccelParams(ComputeParams):
    """Parameters of the ``accel`` block: the tiles' compute units (:class:`~.tile.ComputeParams`)
    and the system around them. The defaults are the small configuration that simulates
    quickly (2 tiles of :class:`~.tile.ComputeParams`' defaults, 2 channels of 128 KiB); a large
    one is e.g. ``--tiles 4 --hbm-channels 4 --hbm-rows 1024`` with the large compute parameters
    :class:`~.tile.ComputeParams` names."""
    tiles: int = param(2, lo=1, hi=8, doc="compute tiles")
    hbm_channels: int = param(2, lo=1, hi=8, doc="HBM pseudo-channels (one controller and mesh node each)")
    hbm_preset: str = param("hbm2", choices=tuple(PRESETS), doc="HBM timing preset")
    hbm_rows: int = param(8, lo=2, hi=1 << 17, power_of_two=True, doc="rows per bank modelled per channel")
    mesh_cols: int = param(0, lo=0, hi=16, doc="mesh columns (0: max(tiles, channels, 2))")
    vcs: int = param(2, lo=2, hi=4, doc="VCs per mesh port (half requests, half responses)")
    buffer: int = param(4, lo=2, hi=32, doc="flits per VC buffer")
    kv: bool = param(True, doc="include the KV-cache DMA")

    def check(self):
        super().check()
        place(tiles=self.tiles, channels=self.hbm_channels, kv=self.kv, cols=self.mesh_cols)
        if self.kv and self.addr_width > 32:
            raise ParameterError(f"hbm_rows: {self.hbm_rows} gives a {self.addr_width}-bit address space, "
                                 "beyond the KV-cache DMA's 32 bits (accepted: smaller, or --kv false)")

    @property
    def channel_bytes(self):
        t = PRESETS[self.hbm_preset]
        return t.banks * self.hbm_rows * t.columns * (ATOM_BITS // 8)

    @property
    def channel_shift(self):
        return self.channel_bytes.bit_length() - 1

    @property
    def addr_width(self):
        return self.channel_shift + (self.hbm_channels - 1).bit_length()

    @property
    def hbm_bytes(self):
        return self.hbm_channels * self.channel_bytes

    def placement(self):
        return place(tiles=self.tiles, channels=self.hbm_channels, kv=self.kv, cols=self.mesh_cols)

    def tile_params(self):
        return TileParams(**self.compute_fields(), addr_width=self.addr_width, hbm_bytes=self.hbm_bytes,
                          id_width=ID_WIDTH - 1)

    def hbm_params(self):
        nodes = self.placement().nodes
        return HBMParams(preset=self.hbm_preset, rows=self.hbm_rows, addr_width=self.channel_shift,
                         id_width=ID_WIDTH + node_bits(nodes))


def csr_registers(tiles):
    """The accelerator's CSRs in address order (see the module docstring)."""
    regs = [Register("launch", "rw", 32, strobe=True), Register("abort", "rw", 32, strobe=True),
            Register("irq_enable", "rw", 1), Register("running", "ro", 32), Register("done", "ro", 32),
            Register("error", "ro", 32), Register("irq_status", "ro", 1), Register("cycles", "ro", 32),
            Register("info", "ro", 32)]
    for t in range(tiles):
        regs += [Register(f"prog_base{t}", "rw", 32), Register(f"err_code{t}", "ro", 4),
                 Register(f"err_pc{t}", "ro", 32), Register(f"retired{t}", "ro", 32)]
    return regs


class Accel(wiring.Component):
    """The accelerator (see the module docstring)."""

    def __init__(self, *, params=None, **kwargs):
        self.params = p = params if params is not None else AccelParams(**kwargs)
        self._hbm = p.hbm_params()
        timing = self._hbm.timing()
        members = {
            "s_axil": In(AXI4LiteSignature(addr_width=12, data_width=32)),
            "s_axi": In(AXI4Signature(addr_width=p.addr_width, data_width=ATOM_BITS, id_width=ID_WIDTH)),
            "irq": Out(1),
        }
        for c in range(p.hbm_channels):
            members[f"phy{c}"] = Out(PHYSignature(timing))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pl = p.placement()
        nodes, aw = pl.nodes, p.addr_width
        flit = max(bridge_flit_width(addr_width=aw, data_width=ATOM_BITS, id_width=ID_WIDTH),
                   message_head_layout(pl.cols, pl.rows).size)
        mesh = m.submodules.mesh = Mesh(cols=pl.cols, rows=pl.rows, vcs=p.vcs, buffer=p.buffer,
                                        flit_width=flit, routing="xy", classes=2, message_ni=True)

        def manager(name, node, port):
            br = AXIBridgeManager(addr_width=aw, data_width=ATOM_BITS, id_width=ID_WIDTH, nodes=nodes,
                                  flit_width=flit, targets=pl.channels, node_shift=p.channel_shift,
                                  max_outstanding=16)
            m.submodules[f"bridge_{name}"] = br
            wiring.connect(m, port, br.s_axi)
            wiring.connect(m, br.req, mesh.endpoint(node, REQ, "i"))
            wiring.connect(m, mesh.endpoint(node, RSP, "o"), br.rsp)

        # ---- HBM channels ----------------------------------------------------------------
        for c, node in enumerate(pl.channels):
            ctrl = m.submodules[f"hbm{c}"] = HBMController(params=self._hbm)
            br = AXIBridgeSubordinate(addr_width=p.channel_shift, data_width=ATOM_BITS, id_width=ID_WIDTH,
                                      nodes=nodes, flit_width=flit, req_addr_width=aw)
            m.submodules[f"bridge_hbm{c}"] = br
            wiring.connect(m, br.m_axi, ctrl.s_axi)
            wiring.connect(m, mesh.endpoint(node, REQ, "o"), br.req)
            wiring.connect(m, br.rsp, mesh.endpoint(node, RSP, "i"))
            wiring.connect(m, ctrl.phy, wiring.flipped(getattr(self, f"phy{c}")))

        # ---- CSRs ----------------------------------------------------------------------
        csr = m.submodules.csr = CSRBlock(registers=csr_registers(p.tiles), addr_width=10)
        if p.kv:
            dec = m.submodules.csr_decoder = AXILiteDecoder(
                addr_width=12, regions=[(0, CSR_WINDOW), (KV_CSR_BASE, 256)])
            wiring.connect(m, wiring.flipped(self.s_axil), dec.s_axil)
            wiring.connect(m, dec.m_axil0, csr.s_axil)
        else:
            dec = m.submodules.csr_decoder = AXILiteDecoder(addr_width=12, regions=[(0, CSR_WINDOW)])
            wiring.connect(m, wiring.flipped(self.s_axil), dec.s_axil)
            wiring.connect(m, dec.m_axil0, csr.s_axil)

        # ---- tiles, semaphores, KV-cache DMA --------------------------------------------
        bank = m.submodules.semaphores = SemaphoreBank(clients=p.tiles)
        tiles = []
        for t, node in enumerate(pl.tiles):
            tile = m.submodules[f"tile{t}"] = Tile(params=p.tile_params())
            tiles.append(tile)
            manager(f"tile{t}", node, tile.m_axi)
            wiring.connect(m, tile.m_post, getattr(bank, f"post{t}"))
            wiring.connect(m, tile.m_take, getattr(bank, f"take{t}"))
            m.d.comb += [tile.prog_base.eq(getattr(csr, f"prog_base{t}")),
                         tile.start.eq(csr.launch_wstb & csr.launch[t]),
                         tile.abort.eq(csr.abort_wstb & csr.abort[t]),
                         getattr(csr, f"err_code{t}").eq(tile.err_code),
                         getattr(csr, f"err_pc{t}").eq(tile.err_pc),
                         getattr(csr, f"retired{t}").eq(tile.retired)]
        manager("host", pl.host, wiring.flipped(self.s_axi))

        if p.kv:
            kv = m.submodules.kvdma = KVDMA(bus_width=ATOM_BITS, addr_width=aw, id_width=ID_WIDTH)
            manager("kvdma", pl.kv, kv.m_axi)
            wiring.connect(m, dec.m_axil1, kv.s_axil)
            m.d.comb += kv.m_axis.tready.eq(1)        # STREAM gathers have no consumer here
            # Descriptors from the tiles, lowest tile first; the DMA takes one when idle.
            taken = Const(0)
            for tile in tiles:
                m.d.comb += [tile.kv_busy.eq(~kv.s_desc.ready | tile.m_kv.valid), tile.kv_error.eq(0)]
                with m.If(tile.m_kv.valid & ~taken):
                    m.d.comb += [kv.s_desc.valid.eq(1), kv.s_desc.payload.eq(tile.m_kv.payload),
                                 tile.m_kv.ready.eq(kv.s_desc.ready)]
                taken = taken | tile.m_kv.valid
        else:
            for tile in tiles:
                m.d.comb += [tile.kv_busy.eq(0), tile.kv_error.eq(0), tile.m_kv.ready.eq(1)]

        # ---- launch, status, interrupt ---------------------------------------------------
        running = Cat(t.state == SeqState.RUNNING for t in tiles)
        done = Cat(t.state == SeqState.DONE for t in tiles)
        error = Cat(t.state == SeqState.ERROR for t in tiles)
        finished = Signal()
        was_running = Signal()
        m.d.sync += was_running.eq(running.any())
        m.d.comb += [csr.running.eq(running), csr.done.eq(done), csr.error.eq(error),
                     csr.irq_status.eq(finished), self.irq.eq(csr.irq_enable & finished),
                     bank.reset_all.eq(csr.launch_wstb & ~running.any()),
                     csr.info.eq(p.tiles | (p.hbm_channels << 8) | (p.rows << 16) | (p.cols << 24))]
        with m.If(csr.launch_wstb & (csr.launch[:p.tiles] != 0)):
            m.d.sync += finished.eq(0)
            with m.If(~running.any()):
                m.d.sync += csr.cycles.eq(0)
        with m.Elif(was_running & ~running.any()):
            m.d.sync += finished.eq(1)
        with m.If(running.any()):
            m.d.sync += csr.cycles.eq(csr.cycles + 1)
        return m


def accel(**params):
    """Factory of the ``accel`` block's deliverable RTL."""
    return Accel(**params)
