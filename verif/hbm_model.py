"""Independent model of one HBM pseudo-channel: stores data and checks every timing constraint.

Written from the public figures of the JEDEC-derived HBM2/HBM3 presets of Ramulator 2.1
(``python/ramulator/dram/hbm2.py``, ``hbm3.py``, github.com/CMU-SAFARI/ramulator2), with its
own table below: it shares no code or constants with
``hw/hbm``. It watches the command/data bus between controller and device (the ``mon_*`` ports of
the ``hbm`` block) and checks, per command:

* bank state: ACT only to a closed bank, RD/WR only to an open bank, REF only with all closed;
* ACT: tRP after PRE, tRC after ACT (same bank); tRRD_S/tRRD_L after the last ACT of another /
  the same bank group; at most four ACTs in any tFAW window; tRFC after REF;
* PRE/PREA of an open bank: tRAS after ACT, tRTP after RD, CWL + BL + tWR after WR;
* REF: tRP after the last PRE of every bank, tRFC after the previous REF; the n-th refresh
  must come by ``n*tREFI + postpone*tREFI + slack`` (slack: closing all banks);
* REFPB (per-bank refresh): bank closed, tRP after its PRE, tRFCpb after its previous REFPB;
  tRREFD after a REFPB of another bank; counted as an ACT for tRRD and tFAW; an ACT needs
  tRFCpb after a REFPB of its bank and tRREFD after one of another bank. The n-th REFPB must
  come by ``n*tREFI/banks + postpone*tREFI + slack`` and no bank may go more than
  ``(postpone+1)*tREFI + slack`` without one;
* RD: tRCD_RD after ACT; tCCD_S/L after RD; CWL + BL + tWTR_S/L after WR;
* WR: tRCD_WR after ACT; tCCD_S/L after WR; CL + BL + 2 - CWL after RD;
* data: write data exactly CWL cycles after each WR (and never otherwise), read data exactly CL
  cycles after each RD, equal to what the model stored.

A violation raises :class:`TimingViolation` (or is counted, with ``strict=False``) with a message
naming the constraint, both commands and their cycles.
"""

import cocotb
from cocotb.triggers import RisingEdge


__all__ = ["TIMING_TABLE", "TimingViolation", "HBMChannelModel", "model_timing"]


# Own copy of the reference's preset rows (cycles). Keys are the JEDEC names.
TIMING_TABLE = {
    # HBM2-2000, tCK 1.0 ns: Ramulator 2.1 hbm2.py preset (reference table row 1); tRFC 8 Gb.
    "hbm2": {"BG": 4, "BA": 4, "COLS": 32, "BL": 2, "CL": 14, "CWL": 5, "tRCDRD": 14, "tRCDWR": 12,
             "tRP": 14, "tRAS": 34, "tRC": 48, "tWR": 16, "tRTP": 5, "tCCDS": 2, "tCCDL": 4,
             "tRRDS": 4, "tRRDL": 4, "tFAW": 15, "tWTRS": 6, "tWTRL": 8, "tRFC": 350, "tREFI": 3900,
             # Per-bank refresh: not in the reference table; JEDEC-typical values (assumption).
             "tRFCpb": 160, "tRREFD": 8},
    # HBM3-6400, tCK 0.625 ns: Ramulator 2.1 hbm3.py preset (reference table row 2); tRFC 350 ns.
    "hbm3": {"BG": 4, "BA": 4, "COLS": 32, "BL": 2, "CL": 20, "CWL": 10, "tRCDRD": 31, "tRCDWR": 15,
             "tRP": 26, "tRAS": 45, "tRC": 72, "tWR": 33, "tRTP": 9, "tCCDS": 2, "tCCDL": 4,
             "tRRDS": 4, "tRRDL": 5, "tFAW": 24, "tWTRS": 7, "tWTRL": 10, "tRFC": 560, "tREFI": 6240,
             "tRFCpb": 320, "tRREFD": 8},
}

# Block parameter name -> table key, for tests that override a timing on the block.
_PARAM_KEYS = {"bank_groups": "BG", "banks_per_group": "BA", "columns": "COLS", "burst": "BL",
               "cl": "CL", "cwl": "CWL", "trcd_rd": "tRCDRD", "trcd_wr": "tRCDWR", "trp": "tRP",
               "tras": "tRAS", "trc": "tRC", "twr": "tWR", "trtp": "tRTP", "tccd_s": "tCCDS",
               "tccd_l": "tCCDL", "trrd_s": "tRRDS", "trrd_l": "tRRDL", "tfaw": "tFAW",
               "twtr_s": "tWTRS", "twtr_l": "tWTRL", "trfc": "tRFC", "trefi": "tREFI",
               "trfcpb": "tRFCpb", "trrefd": "tRREFD"}

ROW_NAMES = {0: None, 1: "ACT", 2: "PRE", 3: "PREA", 4: "REF", 5: "REFPB"}
COL_NAMES = {0: None, 1: "RD", 2: "WR"}
NEVER = -(1 << 40)


def model_timing(block_params):
    """The model's table for a block parameter dict: its own preset plus explicit overrides."""
    table = dict(TIMING_TABLE[block_params.get("preset", "hbm2")])
    for name, key in _PARAM_KEYS.items():
        if block_params.get(name):
            table[key] = block_params[name]
    table["ROWS"] = block_params.get("rows", 32)
    table["POSTPONE"] = block_params.get("refresh_postpone", 1)
    table["PER_BANK"] = block_params.get("refresh", "all_bank") == "per_bank"
    return table


class TimingViolation(AssertionError):
    pass


class HBMChannelModel:
    """Checker and data store for the ``mon_*`` bus of the ``hbm`` block (see module docstring).

    ``strict`` raises on the first violation; otherwise :attr:`violations` collects messages.
    :attr:`counts` has the commands seen; :attr:`data_errors` counts read-data mismatches.
    """

    # The device's memory outlives a cocotb test (all tests of a module share one simulator
    # run), so the model's copy does too.
    _memories = {}

    def __init__(self, dut, timing, *, prefix="mon", strict=True, log=None):
        self.dut, self.t, self.strict, self.log = dut, timing, strict, log
        sig = lambda name: getattr(dut, f"{prefix}_{name}")
        self.row_cmd, self.row_bank, self.row_row = sig("row_cmd"), sig("row_bank"), sig("row_row")
        self.col_cmd, self.col_bank, self.col_col = sig("col_cmd"), sig("col_bank"), sig("col_col")
        self.wr_valid, self.wr_data, self.wr_strb = sig("wr_valid"), sig("wr_data"), sig("wr_strb")
        self.rd_valid, self.rd_data = sig("rd_valid"), sig("rd_data")
        self.mem = self._memories.setdefault(prefix, {})
        self.violations = []
        self.data_errors = 0
        self.counts = {k: 0 for k in ("ACT", "PRE", "PREA", "REF", "REFPB", "RD", "WR")}
        self.cycle = 0
        self._reset_state()
        self._task = cocotb.start_soon(self._run())

    # ------------------------------------------------------------------ state
    def _reset_state(self):
        t = self.t
        nb = t["BG"] * t["BA"]
        self.open = [None] * nb
        self.last_act = [(NEVER, None)] * nb
        self.last_pre = [(NEVER, None)] * nb
        self.last_rd = [(NEVER, None)] * nb
        self.last_wr = [(NEVER, None)] * nb
        self.bg_act = [(NEVER, None)] * t["BG"]
        self.bg_rd = [(NEVER, None)] * t["BG"]
        self.bg_wr = [(NEVER, None)] * t["BG"]
        self.acts = []  # cycles of recent ACTs (tFAW)
        self.last_ref = (NEVER, None)
        self.last_refpb = [(NEVER, None)] * nb
        self.last_refpb_any = (NEVER, None, None)  # (cycle, what, bank)
        self.refreshed_at = [self.cycle] * nb
        self.any_rd = (NEVER, None)
        self.refreshes = 0
        self.epoch = self.cycle  # refresh intervals count from (re)start
        self.pending_wr = {}
        self.pending_rd = {}

    def _bg(self, bank):
        return bank // self.t["BA"]

    def _fail(self, constraint, what, earlier, need):
        at, desc = earlier
        msg = (f"{constraint} violated at cycle {self.cycle}: {what} is {self.cycle - at} cycles after "
               f"{desc} at cycle {at} (needs >= {need})")
        self._report(msg)

    def _report(self, msg):
        self.violations.append(msg)
        if self.log is not None and len(self.violations) <= 20:
            self.log.error(msg)
        if self.strict:
            raise TimingViolation(msg)

    def _need(self, constraint, what, earlier, need):
        if earlier[0] != NEVER and self.cycle - earlier[0] < need:
            self._fail(constraint, what, earlier, need)

    # ------------------------------------------------------------------ commands
    def row_command(self, cmd, bank, row):
        t, c = self.t, self.cycle
        name = ROW_NAMES.get(cmd)
        if name is None:
            self._report(f"illegal row command encoding {cmd} at cycle {c}")
            return
        self.counts[name] += 1
        if name == "ACT":
            what = f"ACT bank {bank} row {row}"
            self._act_like(bank, what)
            self.open[bank] = row
            self.last_act[bank] = (c, what)
        elif name in ("PRE", "PREA"):
            banks = [bank] if name == "PRE" else range(len(self.open))
            for b in banks:
                if self.open[b] is None:
                    continue  # precharging a closed bank is a NOP in JEDEC
                what = f"{name} (bank {b})"
                self._need("tRAS", what, self.last_act[b], t["tRAS"])
                self._need("tRTP", what, self.last_rd[b], t["tRTP"])
                self._need("tWR", what, self.last_wr[b], t["CWL"] + t["BL"] + t["tWR"])
                self.open[b] = None
                self.last_pre[b] = (c, what)
        elif name == "REF":
            what = "REF"
            for b, r in enumerate(self.open):
                if r is not None:
                    self._report(f"bank state violated at cycle {c}: REF while bank {b} row {r} is open")
                self._need("tRP", what, self.last_pre[b], t["tRP"])
            self._need("tRFC", what, self.last_ref, t["tRFC"])
            self.last_ref = (c, what)
            self.refreshes += 1
            self.refreshed_at = [c] * len(self.open)
        elif name == "REFPB":
            what = f"REFPB bank {bank}"
            self._act_like(bank, what)
            self.last_refpb[bank] = (c, what)
            self.last_refpb_any = (c, what, bank)
            self.refreshed_at[bank] = c
            self.refreshes += 1

    def _act_like(self, bank, what):
        """Checks shared by ACT and REFPB (which counts as an ACT): the bank is closed and
        precharged (tRP, tRC), no refresh is running on it (tRFC, tRFCpb) nor just started on
        another bank (tRREFD), tRRD_S/L and tFAW; then the ACT-like event is recorded."""
        t, c = self.t, self.cycle
        if self.open[bank] is not None:
            self._report(f"bank state violated at cycle {c}: {what} while row {self.open[bank]} is open")
        self._need("tRP", what, self.last_pre[bank], t["tRP"])
        self._need("tRC", what, self.last_act[bank], t["tRC"])
        self._need("tRFC", what, self.last_ref, t["tRFC"])
        self._need("tRFCpb", what, self.last_refpb[bank], t["tRFCpb"])
        if self.last_refpb_any[2] != bank:
            self._need("tRREFD", what, self.last_refpb_any[:2], t["tRREFD"])
        g = self._bg(bank)
        for h in range(t["BG"]):
            if h == g:
                self._need("tRRD_L", what, self.bg_act[h], t["tRRDL"])
            else:
                self._need("tRRD_S", what, self.bg_act[h], t["tRRDS"])
        if len(self.acts) >= 4:
            self._need("tFAW", what + " (5th ACT in window)", self.acts[-4], t["tFAW"])
        ev = (c, what)
        self.bg_act[g] = ev
        self.acts = (self.acts + [ev])[-4:]

    def col_command(self, cmd, bank, col):
        t, c = self.t, self.cycle
        name = COL_NAMES.get(cmd)
        if name is None:
            self._report(f"illegal column command encoding {cmd} at cycle {c}")
            return
        self.counts[name] += 1
        row = self.open[bank]
        what = f"{name} bank {bank} col {col}"
        if row is None:
            self._report(f"bank state violated at cycle {c}: {what} to a closed bank")
            row = -1
        g = self._bg(bank)
        ev = (c, what)
        if name == "RD":
            self._need("tRCD_RD", what, self.last_act[bank], t["tRCDRD"])
            for h in range(t["BG"]):
                same = h == g
                self._need("tCCD_L" if same else "tCCD_S", what, self.bg_rd[h], t["tCCDL" if same else "tCCDS"])
                self._need("tWTR_L" if same else "tWTR_S", what, self.bg_wr[h],
                           t["CWL"] + t["BL"] + t["tWTRL" if same else "tWTRS"])
                self._need("tCCD_L" if same else "tCCD_S", what, self.bg_wr[h], t["tCCDL" if same else "tCCDS"])
            self.last_rd[bank] = ev
            self.bg_rd[g] = ev
            self.any_rd = ev
            self.pending_rd[c + t["CL"]] = (bank, row, col, c)
        else:
            self._need("tRCD_WR", what, self.last_act[bank], t["tRCDWR"])
            for h in range(t["BG"]):
                same = h == g
                self._need("tCCD_L" if same else "tCCD_S", what, self.bg_wr[h], t["tCCDL" if same else "tCCDS"])
            self._need("RD-to-WR turnaround (CL+BL+2-CWL)", what, self.any_rd, t["CL"] + t["BL"] + 2 - t["CWL"])
            self.last_wr[bank] = ev
            self.bg_wr[g] = ev
            self.pending_wr[c + t["CWL"]] = (bank, row, col, c)

    def _store(self, key, data, strb):
        mask = 0
        for k in range(32):
            if strb >> k & 1:
                mask |= 0xFF << (8 * k)
        self.mem[key] = (self.mem.get(key, 0) & ~mask) | (data & mask)

    def _data(self):
        c = self.cycle
        wr = self.pending_wr.pop(c, None)
        wr_valid = int(self.wr_valid.value)
        if wr is not None and not wr_valid:
            self._report(f"write data missing at cycle {c}: WR at cycle {wr[3]} needs data CWL later")
        elif wr is None and wr_valid:
            self._report(f"unexpected write data at cycle {c} (no WR CWL cycles earlier)")
        elif wr is not None:
            self._store(wr[:3], int(self.wr_data.value), int(self.wr_strb.value))
        rd = self.pending_rd.pop(c, None)
        rd_valid = int(self.rd_valid.value)
        if rd is not None and not rd_valid:
            self._report(f"read data missing at cycle {c}: RD at cycle {rd[3]} needs data CL later")
        elif rd is None and rd_valid:
            self._report(f"unexpected read data at cycle {c} (no RD CL cycles earlier)")
        elif rd is not None:
            expect = self.mem.get(rd[:3], 0)
            got = int(self.rd_data.value)
            if got != expect:
                self.data_errors += 1
                self._report(f"device data error at cycle {c}: RD at cycle {rd[3]} of bank {rd[0]} row "
                             f"{rd[1]} col {rd[2]} returned {got:#x}, model holds {expect:#x}")

    def _refresh_deadline(self):
        t = self.t
        slack = t["tRC"] + t["CWL"] + t["BL"] + t["tWR"] + t["tRP"] + 8
        nb = t["BG"] * t["BA"]
        if t["PER_BANK"]:
            slack += t["tRREFD"] + t["tFAW"]
        elapsed = self.cycle - self.epoch - slack
        if elapsed <= 0:
            return
        if t["PER_BANK"]:
            due = elapsed // (t["tREFI"] // nb) - t["POSTPONE"] * nb
        else:
            due = elapsed // t["tREFI"] - t["POSTPONE"]
        if self.refreshes < due:
            self._report(f"tREFI violated at cycle {self.cycle}: {self.refreshes} refreshes since cycle "
                         f"{self.epoch}, {due} due (tREFI {t['tREFI']}, postponement {t['POSTPONE']}, "
                         f"{'per-bank' if t['PER_BANK'] else 'all-bank'})")
            self.refreshes = due  # report each missed refresh once
        limit = (t["POSTPONE"] + 1) * t["tREFI"] + slack
        for bank, at in enumerate(self.refreshed_at):
            if self.cycle - at > limit:
                self._report(f"tREFI violated at cycle {self.cycle}: bank {bank} not refreshed since "
                             f"cycle {at} (limit {limit} cycles)")
                self.refreshed_at[bank] = self.cycle  # once per miss

    # ------------------------------------------------------------------ sampling
    async def _run(self):
        edge = RisingEdge(self.dut.clk)
        rst = self.dut.rst
        while True:
            await edge
            self.cycle += 1
            if int(rst.value):
                # A reset restarts controller and device (pending transfers are dropped by both);
                # the stored data survives, as in a DRAM. The memory write port is not reset, so
                # write data on the bus at the first reset edge still lands.
                wr = self.pending_wr.get(self.cycle)
                if wr is not None and int(self.wr_valid.value):
                    self._store(wr[:3], int(self.wr_data.value), int(self.wr_strb.value))
                self._reset_state()
                continue
            rc = int(self.row_cmd.value)
            if rc:
                self.row_command(rc, int(self.row_bank.value), int(self.row_row.value))
            cc = int(self.col_cmd.value)
            if cc:
                self.col_command(cc, int(self.col_bank.value), int(self.col_col.value))
            if self.pending_wr or self.pending_rd or int(self.wr_valid.value) or int(self.rd_valid.value):
                self._data()
            if self.cycle & 63 == 0:
                self._refresh_deadline()

    def stop(self):
        self._task.cancel()
