"""The registry of Scoville blocks: the one list the CLI, the demo and the tests read."""

from dataclasses import dataclass
from typing import Callable

from scoville.hw.arbiter import RoundRobinArbiter, RoundRobinArbiterParams
from scoville.hw.burst import BurstSplitter, BurstSplitterParams
from scoville.hw.axi_id import AXIIDAdapterParams, axi_id_adapter
from scoville.hw.axi_mux import AXIMuxParams, axi_mux
from scoville.hw.axil_decoder import AXILiteDecoderParams, axil_decoder
from scoville.hw.axi_width import AXIWidthAdapterParams, axi_width_adapter
from scoville.hw.testbench.axi_parts import axi_id_top, axi_width_top
from scoville.hw.csr import CSRBankParams, csr_bank
from scoville.hw.params import ParameterError, Params, param
from scoville.hw.skid_buffer import SkidBuffer, SkidBufferParams
from scoville.hw.systolic import SystolicBenchParams, SystolicParams, systolic
from scoville.hw.gemm import GEMMBenchParams, GEMMParams, gemm
from scoville.hw.kvdma import KVDMABenchParams, KVDMAParams, kvdma
from scoville.hw.vpu.vpu import VPUBenchParams, VPUParams, vpu
from scoville.hw.accel.tile_dma import TileDMAParams, tile_dma
from scoville.hw.accel.tile import TileParams, tile
from scoville.hw.testbench.accel import accel_system, tile_system
from scoville.hw.accel.accel import AccelParams, accel
from scoville.sim.accel.bench import AccelBenchParams
from scoville.hw.noc.mesh import NoCBenchParams, noc_network
from scoville.hw.testbench.noc import NoCParams, noc
from scoville.hw.noc.router import RouterParams, noc_router
from scoville.hw.noc.axi_bridge import NoCAXIParams, noc_axi
from scoville.hw.hbm import HBMBenchParams, HBMParams, hbm_controller
from scoville.verif.trace import parse_trace
from scoville.hw.hbm.stack import HBMStackParams, hbm_stack
from scoville.hw.testbench.hbm import hbm_stack_system, hbm_system


__all__ = ["Block", "BLOCKS", "get_block"]


@dataclass(frozen=True)
class Block:
    """A block the CLI can elaborate, simulate, benchmark and synthesise.

    ``factory(**params)`` builds the top-level component from a validated ``params`` set;
    ``testbench`` is the cocotb module whose ``bench`` test ``scoville bench`` runs, with the
    workload options of ``bench_params`` (a :class:`Params` set: sizes, patterns, counts — not
    hardware parameters) handed over as ``verif.tb.bench_args()``; the test hands its result
    dict back with ``verif.tb.write_bench_result``. ``rtl(**params)``, when given, builds the
    deliverable RTL that ``scoville verilog`` writes and ``scoville synth`` measures, where the
    simulation top ``factory`` wraps it with test-only parts (a memory model, traffic generators).
    """
    name: str
    summary: str
    params: type[Params]
    factory: Callable
    testbench: str
    status: str = "done"
    bench_params: type[Params] | None = None
    rtl: Callable | None = None
    # Testbenches touch only top-level ports, so Verilator builds keep only those public: a
    # several times smaller and faster model (see sim.runner._ports_only_args). A block whose
    # testbench peeks inside sets this False.
    ports_only: bool = True
    # Workload fields naming input files, with the parser that validates each (raising a
    # one-line ParameterError with file and line), run before any build starts.
    input_files: tuple[tuple[str, Callable], ...] = ()
    # A bench that is more than one cocotb test (compile a workload, run it on an engine):
    # ``bench_runner(params, workload, sim=, seed=, fast_compile=)`` returns the result dict.
    bench_runner: Callable | None = None

    @property
    def rtl_factory(self):
        return self.rtl or self.factory

    def check_workload(self, workload):
        """Validate the input files ``workload`` names (see ``input_files``)."""
        for name, parse in self.input_files:
            if workload.get(name):
                parse(workload[name], name=name)

    def configure(self, **overrides):
        """Validated parameter set from defaults plus ``overrides``."""
        return self.params(**overrides)


@dataclass(frozen=True)
class StreamBench(Params):
    """Workload of the stream-block benches: beats pushed through, stall pattern on both ends."""
    beats: int = param(10000, lo=1, hi=10_000_000, doc="beats to transfer")
    stall: str = param("random", choices=("none", "periodic", "random"), doc="stalls on source and sink")


@dataclass(frozen=True)
class ArbiterBench(Params):
    """Workload of the arbiter bench: cycles of random requests (held until granted)."""
    cycles: int = param(10000, lo=1, hi=10_000_000, doc="cycles to simulate")
    load: int = param(50, lo=1, hi=100, doc="percent chance a free requester raises a request each cycle")


@dataclass(frozen=True)
class CSRBench(Params):
    """Workload of the CSR bench: random register writes and read-backs."""
    accesses: int = param(200, lo=1, hi=100_000, doc="write/read-back pairs")


TRACE_FILE = (("trace", parse_trace),)

def _bench_accel(params, workload, *, sim="verilator", seed=None, fast_compile=False):
    from scoville.sim.accel.bench import bench_accel     # it runs the block registry's own blocks
    if sim != "verilator":
        raise ParameterError(f"sim: {sim!r} is not accepted for accel (accepted: verilator)")
    return bench_accel(params, workload, seed=seed or 1, fast_compile=True)


BLOCKS = {block.name: block for block in [
    Block("skid_buffer", "two-entry registered stream slice (cuts valid/ready timing paths)",
          SkidBufferParams, lambda width: SkidBuffer(shape=width), "scoville.verif.tb_skid_buffer",
          bench_params=StreamBench),
    Block("rr_arbiter", "round-robin arbiter with hold-until-advance grant",
          RoundRobinArbiterParams, lambda n: RoundRobinArbiter(n=n), "scoville.verif.tb_arbiter",
          bench_params=ArbiterBench),
    Block("csr", "AXI4-Lite control/status register block (scratch + status registers)",
          CSRBankParams, csr_bank, "scoville.verif.tb_csr", bench_params=CSRBench),
    Block("burst_splitter", "AXI4 INCR burst splitter: byte ranges into bursts within a boundary and max_beats",
          BurstSplitterParams, BurstSplitter, "scoville.verif.tb_burst"),
    Block("axi_mux", "N:1 AXI4 multiplexer: round-robin AR/AW, W locked to its burst until WLAST, "
          "source bits added to the ID route R/B back", AXIMuxParams, axi_mux, "scoville.verif.tb_axi_parts"),
    Block("axil_decoder", "AXI4-Lite 1:N address decoder: validated address map, offset addresses, "
          "DECERR for unmapped addresses", AXILiteDecoderParams, axil_decoder, "scoville.verif.tb_axi_parts"),
    Block("axi_id", "AXI4 ID-width adapter: zero-extend to widen, per-direction remap table to narrow "
          "(same-ID order kept)", AXIIDAdapterParams, axi_id_top, "scoville.verif.tb_axi_parts",
          rtl=axi_id_adapter),
    Block("axi_width", "AXI4 data-width adapter: upsizer (lane steering) or downsizer (a burst per manager "
          "beat, R/B merged); INCR/WRAP/FIXED, narrow and unaligned transfers", AXIWidthAdapterParams,
          axi_width_top, "scoville.verif.tb_axi_parts", rtl=axi_width_adapter),
    Block("noc", "2-D mesh NoC: wormhole VC routers (1 cycle + 1 link cycle per hop), credits, "
          "message classes on disjoint VCs", NoCParams, noc, "scoville.verif.tb_noc",
          bench_params=NoCBenchParams, rtl=noc_network),
    Block("noc_router", "one 5-port NoC router (interior node of a 3x3 mesh), for unit tests and area",
          RouterParams, noc_router, "scoville.verif.tb_noc_router"),
    Block("noc_axi", "AXI4 bridge pair over the NoC mesh: managers s_axiK reach subordinates m_axiK "
          "(address map, IDs and bursts preserved, DECERR outside the map)", NoCAXIParams, noc_axi,
          "scoville.verif.tb_noc_axi"),
    Block("hbm", "HBM pseudo-channel controller (AXI4, FR-FCFS with age limit, JEDEC timing, refresh) "
          "with a behavioural device", HBMParams, hbm_system, "scoville.verif.tb_hbm",
          bench_params=HBMBenchParams, rtl=hbm_controller,
          input_files=TRACE_FILE),
    Block("hbm_stack", "N HBM pseudo-channel controllers behind one AXI4 port, address-interleaved "
          "(bursts split at granules), responses in request order; simulated with a behavioural device each",
          HBMStackParams, hbm_stack_system, "scoville.verif.tb_hbm",
          bench_params=HBMBenchParams, rtl=hbm_stack,
          input_files=TRACE_FILE),
    Block("systolic", "int8 systolic MAC array, weight- or output-stationary, with skew/deskew",
          SystolicParams, systolic, "scoville.verif.tb_systolic", bench_params=SystolicBenchParams),
    Block("gemm", "int8 GEMM engine: systolic array, A/B/C buffers, bias + requantisation, "
          "AXI-Stream data and command ports", GEMMParams, gemm, "scoville.verif.tb_gemm",
          bench_params=GEMMBenchParams),
    Block("kvdma", "paged KV-cache DMA engine: GATHER/APPEND through block tables, BLOCK_COPY, COPY, FILL, "
          "FENCE over an AXI4 master; NHD or HND cache pools; descriptor ring and push port; AXI4-Lite CSRs",
          KVDMAParams, kvdma, "scoville.verif.tb_kvdma", status="done", bench_params=KVDMABenchParams),
    Block("vpu", "vector unit: int8/16/32 rows at lanes elements per cycle: requantisation (per-channel, "
          "per-row dynamic), add, multiply, reductions, argmax, softmax, RMSNorm, LayerNorm, GELU, SiLU, RoPE",
          VPUParams, vpu, "scoville.verif.tb_vpu", bench_params=VPUBenchParams),
    Block("tile_dma", "tile DMA: 2-D HBM windows (rows x row_bytes at a stride) to and from unit ports of "
          "2**beat_log2-byte beats; AXI4 INCR bursts, read and write concurrent, abort",
          TileDMAParams, tile_dma, "scoville.verif.tb_tile_dma"),
    Block("accel_tile", "compute tile: sequencer (program fetch and issue), tile DMA, GEMM engine, vector unit "
          "behind one AXI4 manager", TileParams, tile_system, "scoville.verif.tb_accel_tile",
          status="in construction", rtl=tile),
    Block("accel", "the accelerator: compute tiles, HBM channels and the KV-cache DMA on the mesh NoC, host "
          "AXI4-Lite CSRs and AXI4 port, programs fetched from HBM", AccelParams, accel_system,
          "scoville.verif.tb_accel", status="in construction", rtl=accel,
          bench_params=AccelBenchParams, bench_runner=_bench_accel),
]}


def get_block(name):
    if name not in BLOCKS:
        raise ParameterError(f"unknown block {name!r} (accepted: {', '.join(BLOCKS)})")
    return BLOCKS[name]
