"""HBM organisation and timing presets, and the parameter set of the ``hbm`` block.

Every timing is in controller clock cycles (tCK). The presets follow the JEDEC-derived figures of
Ramulator 2.1 (``python/ramulator/dram/hbm2.py``, ``hbm3.py``, github.com/CMU-SAFARI/ramulator2); where DRAMsim3's ``configs/HBM2_8Gb_x128.ini`` differs the
comment says so. A preset is a frozen dataclass: ``dataclasses.replace`` overrides any field, and
:meth:`HBMTiming.check` rejects inconsistent sets.

Data transfers are abstracted to one 32-byte *atom* per column command (HBM2: BL4 on a 64-bit
pseudo-channel; HBM3: BL8 on a 32-bit pseudo-channel). ``burst`` is the number of clock cycles a
burst occupies the data bus (2 for both presets), which is why ``tCCD_S >= burst``.
"""

from dataclasses import dataclass, fields, replace

from ..params import ParameterError, Params, param


__all__ = ["HBMTiming", "HBM2_2000", "HBM3_6400", "PRESETS", "TIMING_FIELDS", "HBMParams",
           "MAPPINGS"]


@dataclass(frozen=True)
class HBMTiming(Params):
    """Organisation and timing of one pseudo-channel, in clock cycles.

    Derived constraints used by the controller (and, independently, by ``verif/hbm_model.py``):
    RD->WR turnaround ``cl + burst + 2 - cwl``; WR->RD ``cwl + burst + twtr_s/l``;
    WR->PRE ``cwl + burst + twr``; RD->PRE ``trtp``.
    """
    tck_ps: int = param(1000, lo=100, hi=10000, doc="clock period in ps")
    bank_groups: int = param(4, lo=1, hi=8, power_of_two=True, doc="bank groups")
    banks_per_group: int = param(4, lo=1, hi=8, power_of_two=True, doc="banks per bank group")
    rows: int = param(32768, lo=2, hi=1 << 17, power_of_two=True, doc="rows per bank")
    columns: int = param(32, lo=2, hi=1024, power_of_two=True, doc="32-byte atoms per row (page)")
    pc_width: int = param(64, choices=(32, 64, 128), doc="pseudo-channel data width in bits")
    burst: int = param(2, lo=1, hi=8, doc="cycles one burst occupies the data bus")
    cl: int = param(14, lo=2, hi=64, doc="read latency (RD to data)")
    cwl: int = param(5, lo=1, hi=64, doc="write latency (WR to data)")
    trcd_rd: int = param(14, lo=1, hi=128, doc="ACT to RD, same bank")
    trcd_wr: int = param(12, lo=1, hi=128, doc="ACT to WR, same bank")
    trp: int = param(14, lo=1, hi=128, doc="PRE to ACT, same bank")
    tras: int = param(34, lo=1, hi=256, doc="ACT to PRE, same bank")
    trc: int = param(48, lo=1, hi=512, doc="ACT to ACT, same bank")
    twr: int = param(16, lo=1, hi=128, doc="write recovery (end of write data to PRE)")
    trtp: int = param(5, lo=1, hi=64, doc="RD to PRE, same bank")
    tccd_s: int = param(2, lo=1, hi=32, doc="column to column, different bank group")
    tccd_l: int = param(4, lo=1, hi=32, doc="column to column, same bank group")
    trrd_s: int = param(4, lo=1, hi=64, doc="ACT to ACT, different bank group")
    trrd_l: int = param(4, lo=1, hi=64, doc="ACT to ACT, same bank group")
    tfaw: int = param(15, lo=1, hi=256, doc="window holding at most four ACTs")
    twtr_s: int = param(6, lo=1, hi=64, doc="write to read turnaround, different bank group")
    twtr_l: int = param(8, lo=1, hi=64, doc="write to read turnaround, same bank group")
    trfc: int = param(350, lo=1, hi=4096, doc="all-bank REF to ACT/REF")
    trfcpb: int = param(160, lo=1, hi=4096, doc="per-bank REF to ACT of that bank")
    trrefd: int = param(8, lo=1, hi=256, doc="per-bank REF to per-bank REF, different bank")
    trefi: int = param(3900, lo=16, hi=1 << 16, doc="average all-bank refresh interval")

    @property
    def banks(self):
        return self.bank_groups * self.banks_per_group

    @property
    def rtw(self):
        """RD to WR on the same pseudo-channel (data-bus turnaround)."""
        return self.cl + self.burst + 2 - self.cwl

    def wtr(self, same_group):
        return self.cwl + self.burst + (self.twtr_l if same_group else self.twtr_s)

    @property
    def wr_to_pre(self):
        return self.cwl + self.burst + self.twr

    @property
    def peak_bytes_per_cycle(self):
        return 32 / self.burst

    def check(self):
        rules = [
            (self.tccd_s >= self.burst, "tccd_s", f"tccd_s={self.tccd_s} < burst={self.burst}"),
            (self.tccd_l >= self.tccd_s, "tccd_l", f"tccd_l={self.tccd_l} < tccd_s={self.tccd_s}"),
            (self.trrd_l >= self.trrd_s, "trrd_l", f"trrd_l={self.trrd_l} < trrd_s={self.trrd_s}"),
            (self.twtr_l >= self.twtr_s, "twtr_l", f"twtr_l={self.twtr_l} < twtr_s={self.twtr_s}"),
            (self.tras >= max(self.trcd_rd, self.trcd_wr), "tras",
             f"tras={self.tras} < trcd={max(self.trcd_rd, self.trcd_wr)}"),
            (self.trc >= self.tras + self.trp, "trc",
             f"trc={self.trc} < tras+trp={self.tras + self.trp}"),
            (self.tfaw >= self.trrd_s, "tfaw", f"tfaw={self.tfaw} < trrd_s={self.trrd_s}"),
            (self.rtw >= 1, "cwl", f"cl+burst+2-cwl={self.rtw} < 1 (cwl too large for cl)"),
            (self.trefi > 2 * (self.trfc + self.trc + self.wr_to_pre), "trefi",
             f"trefi={self.trefi} leaves no time for traffic next to trfc={self.trfc}"),
            (self.trefi // self.banks > self.trfcpb, "trfcpb",
             f"trfcpb={self.trfcpb} >= per-bank interval trefi/banks={self.trefi // self.banks}"),
        ]
        for ok, name, text in rules:
            if not ok:
                raise ParameterError(f"{name}: inconsistent timing set ({text})")


# HBM2-2000 (tCK 1.0 ns), 8 Gb die, pseudo-channel mode. Source: Ramulator 2.1
# HBM2 preset (github.com/CMU-SAFARI/ramulator2). tRFC 350 ns is the 8 Gb
# figure (4 Gb: 260 ns). DRAMsim3 HBM2_8Gb_x128.ini differs: tFAW 30, tCCD_L 2, tRRD_L 6, tRFC 260.
# Per-bank refresh figures are not in that table: tRFCpb 160 and tRREFD 8 are JEDEC-typical values
# (assumption, named as such here and in docs/hbm.md).
HBM2_2000 = HBMTiming()

# HBM3-6400 (tCK 0.625 ns), 16 Gb die, 8-high. Source: Ramulator 2.1 python/ramulator/dram/hbm3.py
# preset. tRFC: JEDEC gives 260-550 ns by density; 350 ns
# (560 cycles) is taken for 16 Gb. tRFCpb 320 cycles is the preset's per-bank figure.
HBM3_6400 = HBMTiming(
    tck_ps=625, bank_groups=4, banks_per_group=4, rows=16384, columns=32, pc_width=32, burst=2,
    cl=20, cwl=10, trcd_rd=31, trcd_wr=15, trp=26, tras=45, trc=72, twr=33, trtp=9,
    tccd_s=2, tccd_l=4, trrd_s=4, trrd_l=5, tfaw=24, twtr_s=7, twtr_l=10,
    trfc=560, trfcpb=320, trrefd=8, trefi=6240)

PRESETS = {"hbm2": HBM2_2000, "hbm3": HBM3_6400}

# Fields of HBMTiming that the block's parameter set can override (0 there means "preset value").
TIMING_FIELDS = [f.name for f in fields(HBMTiming) if f.name not in ("tck_ps", "pc_width", "rows")]

# Address mappings, most significant field first; "co" is the 32-byte atom index within a row.
MAPPINGS = ("ro_ba_co_bg", "ro_ba_bg_co", "ro_co_ba_bg", "ba_bg_ro_co")


def _timing_overrides():
    """``param`` declarations for every overridable timing field (0 = the preset's value)."""
    return {name: param(0, lo=0, hi=1 << 16, doc=f"override of the preset's {name} (0: preset)")
            for name in TIMING_FIELDS}


@dataclass(frozen=True)
class _HBMParamsBase(Params):
    preset: str = param("hbm2", choices=tuple(PRESETS), doc="timing and organisation preset")
    rows: int = param(32, lo=2, hi=1 << 17, power_of_two=True,
                      doc="rows per bank modelled (the device memory holds banks*rows*columns atoms)")
    mapping: str = param("ro_ba_co_bg", choices=MAPPINGS,
                         doc="address bit order, most significant first (co = atom in row)")
    xor_bank: bool = param(False, doc="XOR bank and bank-group bits with low row bits")
    page_policy: str = param("open", choices=("open", "closed"),
                             doc="row buffer policy (closed: precharge once no queued request hits the row)")
    refresh: str = param("all_bank", choices=("all_bank", "per_bank"),
                         doc="refresh mode: all-bank REF every tREFI, or one bank every tREFI/banks")
    refresh_postpone: int = param(1, lo=0, hi=8,
                                  doc="tREFI intervals a refresh may be postponed (JEDEC: 8)")
    # 64 read entries: the queue is also the in-order reorder buffer, so finished reads hold
    # entries until the oldest returns; 32 leave too few waiting reads to keep 16 banks busy
    # under random traffic (80 % of the activation bound; 64: 101 %).
    read_queue: int = param(64, lo=4, hi=64, power_of_two=True, doc="read queue / reorder entries")
    write_queue: int = param(32, lo=4, hi=64, power_of_two=True, doc="write queue entries")
    wq_high: int = param(24, lo=1, hi=64, doc="write drain starts at this write-queue level")
    wq_low: int = param(8, lo=0, hi=63, doc="write drain stops at this write-queue level")
    # 1024: random traffic at full activation rate waits up to ~900 cycles for its bank; a lower
    # limit trips the starvation rule in normal operation (512: 89 % of the activation bound).
    age_limit: int = param(1024, lo=16, hi=16384, doc="cycles after which a request is served first")
    id_width: int = param(4, lo=1, hi=8, doc="AXI ID width")
    addr_width: int = param(32, lo=12, hi=40, doc="AXI address width")


# The timing override fields are added programmatically so the CLI sees one flat parameter set.
HBMParams = dataclass(frozen=True)(type("HBMParams", (_HBMParamsBase,), {
    "__annotations__": {name: int for name in TIMING_FIELDS},
    **_timing_overrides(),
    "__module__": __name__,
    "__qualname__": "HBMParams",
    "__doc__": """Parameters of the ``hbm`` block (one pseudo-channel controller and its device).

    ``preset`` selects the organisation and timing; every timing field (``cl``, ``trcd_rd``, ...,
    ``trefi``) may be overridden, 0 keeping the preset's value. ``rows`` sizes the modelled
    device (the behavioural device stores every atom). The resolved timing is :meth:`timing`.
    """,
}))


def _timing(self):
    """The resolved :class:`HBMTiming`: preset, then overrides, then ``rows``."""
    overrides = {name: getattr(self, name) for name in TIMING_FIELDS if getattr(self, name)}
    return replace(PRESETS[self.preset], rows=self.rows, **overrides)


def _check(self):
    self.timing()  # HBMTiming.check names the inconsistent field
    if self.wq_high > self.write_queue:
        raise ParameterError(f"wq_high: {self.wq_high} exceeds write_queue={self.write_queue}")
    if self.wq_low >= self.wq_high:
        raise ParameterError(f"wq_low: {self.wq_low} is not below wq_high={self.wq_high}")
    atoms_bits = (self.timing().banks * self.rows * self.timing().columns).bit_length() - 1
    if atoms_bits + 5 > self.addr_width:
        raise ParameterError(f"addr_width: {self.addr_width} is too small for a "
                             f"{1 << (atoms_bits + 5)}-byte device (accepted: >= {atoms_bits + 5})")


HBMParams.timing = _timing
HBMParams.check = _check
