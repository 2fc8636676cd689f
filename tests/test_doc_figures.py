"""Figures quoted in README.md and docs/ re-measured by the command written next to them.

Each entry names the document, the text that quotes the figure, the command the document gives
for it, the result field and its value. The test fails when the quote or the command is no
longer in the document, or when the command no longer gives the figure: a figure cannot drift
from its design silently. Only cheap figures (under a minute each, build included, on a 2-core
machine) are here; the long ones are in ``make bench`` (``scoville.sim.bench.SUITE``), and each
document says which of its figures are checked where.

One test per command: a command that several figures quote runs once, and a failure lists every
figure of it that drifted.
"""

import functools
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    doc: str          # file, relative to the repository
    quote: str        # text of the document that states the figure (whitespace-insensitive)
    command: str      # the `scoville ...` command the document gives (without --json)
    key: str          # field of the command's JSON result; dotted for a nested one ("read_latency.min")
    value: object     # the figure
    digits: int = None  # compare round(measured, digits) where the document rounds the JSON's value

    def __str__(self):
        return f"{self.doc}:{self.key}={self.value}"


# Input files a command names, written to the directory the commands run in.
FILES = {"idle.trc": "0x0 READ 1000\n0x0 READ 2000\n"}

# Blocks whose bench figures run on the -O0 Verilator model, the one `make test` builds for the
# block's own tests (tests/test_noc.py) and `bench --sweep` uses: the same cycles, no second build.
O0_MODEL_BLOCKS = {"noc"}


def _rows(doc, quote, command, *pairs, digits=None):
    """Figures of one quote: ``pairs`` is key, value, key, value, ..."""
    return [Figure(doc, quote, command, k, v, digits.get(k) if digits else None)
            for k, v in zip(pairs[::2], pairs[1::2])]


SB = "docs/shared-blocks.md"


def _synth_row(block_args, quote, ecp5, ice40, transistors):
    """A row of the shared-blocks table: ECP5 LUT4/FF/Fmax, iCE40 LUT4/Fmax, CMOS transistors."""
    base = f"scoville synth {block_args}"
    return (_rows(SB, quote, f"{base} --target ecp5 --fmax", "luts", ecp5[0], "ffs", ecp5[1],
                  "fmax_mhz", ecp5[2], digits={"fmax_mhz": 1})
            + _rows(SB, quote, f"{base} --target ice40 --fmax", "luts", ice40[0], "fmax_mhz", ice40[1],
                    digits={"fmax_mhz": 1})
            + _rows(SB, quote, f"{base} --target generic", "transistors", transistors))


AXI = "docs/axi.md"


def _axi_row(block_args, quote, luts, ffs, lutram, carry):
    return _rows(AXI, quote, f"scoville synth {block_args} --target ecp5",
                 "luts", luts, "ffs", ffs, "lutram", lutram, "carry", carry)


GEMM_64 = "scoville bench gemm --rows 8 --cols 8 --dataflow ws --m 64 --k 64 --n 64"
HBM = "docs/hbm.md"
KV = "docs/kvdma.md"
NOC = "docs/noc.md"


def _hbm_row(pattern, quote, *pairs, digits=None):
    return _rows(HBM, quote, f"scoville bench hbm --pattern {pattern} --requests 30000", *pairs,
                 "timing_violations", 0, "data_errors", 0, digits=digits)


def _kv_row(args, quote, cycles, utilization):
    return _rows(KV, quote, f"scoville bench kvdma{args}", "cycles", cycles, "bus_utilization", utilization)


FIGURES = [
    # README: the block table's headlines (the longer ones are in `make bench`)
    Figure("README.md", "64x64x64 on 8x8 WS in 4 122 cycles",
           "scoville bench gemm --rows 8 --cols 8 --m 64 --k 64 --n 64", "cycles", 4122),
    Figure("README.md", "seq 100.6 % of the refresh ceiling",
           "scoville bench hbm --pattern seq --requests 30000", "of_refresh_ceiling", 1.006, 3),
    Figure("README.md", "random 100.9 % of the activation bound",
           "scoville bench hbm --pattern random --requests 30000", "of_activation_bound", 1.009, 3),
    Figure("README.md", "99.86 % bus utilisation on the 4096-token GATHER",
           "scoville bench kvdma", "bus_utilization", 0.9986),
    Figure("README.md", "saturation 0.72 (0.68 at the default 2 VCs x 4)",
           "scoville bench noc --rate 1.0 --cycles 5000", "accepted", 0.68, 2),
    Figure("README.md", "router (2 VCs x 4, 64-bit) 1 424 LUT4 on ECP5",
           "scoville synth noc_router --vcs 2 --buffer 4 --flit-width 64 --target ecp5", "luts", 1424),

    # docs/shared-blocks.md: every cell of the synthesis table, and the three benches
    *_synth_row("skid_buffer --width 32", "| skid_buffer width 32 | 38 | 66 | 245.9 MHz | 38 | 84.1 MHz | 2 260 |",
                (38, 66, 245.9), (38, 84.1), 2260),
    *_synth_row("rr_arbiter --n 4", "| rr_arbiter n 4 | 27 | 2 | 312.7 MHz | 20 | 96.2 MHz | 174 |",
                (27, 2, 312.7), (20, 96.2), 174),
    *_synth_row("rr_arbiter --n 16", "| rr_arbiter n 16 | 127 | 4 | 136.9 MHz | 92 | 34.8 MHz | 862 |",
                (127, 4, 136.9), (92, 34.8), 862),
    *_synth_row("csr", "| csr 4 rw + 2 ro, 32 bit | 397 | 166 | 151.5 MHz | 246 | 56.3 MHz | 6 480 |",
                (397, 166, 151.5), (246, 56.3), 6480),
    Figure(SB, "1000 beats, no stalls, 1003 cycles", "scoville bench skid_buffer --beats 1000 --stall none",
           "cycles", 1003),
    *_rows(SB, "1.0 grants/cycle (`grants_per_cycle`), worst wait 7 = n - 1 grants (`max_wait_grants`)",
           "scoville bench rr_arbiter --n 8", "grants_per_cycle", 1.0, "max_wait_grants", 7),
    *_rows(SB, "200 pairs in 1 201 cycles, `cycles_per_access_pair` 6.0", "scoville bench csr",
           "cycles", 1201, "cycles_per_access_pair", 6.0),

    # docs/axi.md: the area table
    *_axi_row("axi_mux", "| `axi_mux` 3 managers, 32-bit, 2-bit IDs, write_queue 4 | 336 | 17 | 1 | 0 |", 336, 17, 1, 0),
    *_axi_row("axil_decoder", "| `axil_decoder` 3 windows, 32-bit | 155 | 9 | 0 | 0 |", 155, 9, 0, 0),
    *_axi_row("axi_id", "| `axi_id` 4 -> 2 bits, 4 per slot, 32-bit | 229 | 62 | 0 | 0 |", 229, 62, 0, 0),
    *_axi_row("axi_width", "| `axi_width` 32 -> 128 (upsizer) | 267 | 38 | 10 | 4 |", 267, 38, 10, 4),
    *_axi_row("axi_width --s-data-width 128 --m-data-width 32",
              "| `axi_width` 128 -> 32 (downsizer) | 680 | 289 | 6 | 70 |", 680, 289, 6, 70),

    # docs/gemm.md: the 64^3 row (the 16x16 rows are in `make bench`), the array's synthesis
    *_rows("docs/gemm.md", "| 64 x 64 x 64 | 8x8 WS | **4 122** | 4 096 | 99.4% | 4 122 | 5 504 (74%) | <= 4 200 |",
           GEMM_64, "cycles", 4122, "model_cycles", 4122, "utilization", 0.994, "noverlap_cycles", 5504,
           digits={"utilization": 3}),
    Figure("docs/gemm.md", "for 64^3 on 8x8 is 20 cycles", GEMM_64, "perf_fill_drain", 20),
    *_rows("docs/gemm.md", "| 4x4 | 160 | 112 | 1 131 | 16 |", "scoville synth systolic --rows 4 --cols 4 --target ecp5",
           "luts", 160, "carry", 112, "ffs", 1131, "dsps", 16),
    *_rows("docs/gemm.md", "| 8x8 | 656 | 736 | 4 831 | 64 |", "scoville synth systolic --rows 8 --cols 8 --target ecp5",
           "luts", 656, "carry", 736, "ffs", 4831, "dsps", 64),
    *_rows("docs/gemm.md", "Output-stationary 8x8: 3 880 LUT4, 1 024 CCU2C, 8 723 FF, 64 MULT18X18D",
           "scoville synth systolic --rows 8 --cols 8 --dataflow os --target ecp5",
           "luts", 3880, "carry", 1024, "ffs", 8723, "dsps", 64),

    # docs/hbm.md: the defaults' four patterns (one build), the idle row-hit latency
    *_hbm_row("seq", "| HBM2, defaults | seq | 66 153 | 90.70 % (14.51 GB/s) | **100.6 % of ceiling** | 96.7 % | 140.9 / 535 | 0 | 0 |",
              "cycles", 66153, "efficiency", 0.907, "bandwidth_GBps", 14.51, "of_refresh_ceiling", 1.006,
              "row_hit_rate", 0.967, "avg_read_latency", 140.9, "max_read_latency", 535,
              digits={"bandwidth_GBps": 2, "of_refresh_ceiling": 3, "row_hit_rate": 3, "avg_read_latency": 1}),
    *_hbm_row("random", "| HBM2, defaults | random | 131 879 | 45.50 % (7.28 GB/s) | **100.9 % of ACT bound** | 7.6 % | 281.0 / 873 | 0 | 0 |",
              "cycles", 131879, "efficiency", 0.455, "bandwidth_GBps", 7.28, "of_activation_bound", 1.009,
              "row_hit_rate", 0.076, "avg_read_latency", 281.0, "max_read_latency", 873,
              digits={"bandwidth_GBps": 2, "of_activation_bound": 3, "avg_read_latency": 1}),
    *_hbm_row("strided", "| HBM2, defaults | strided (33 atoms) | 133 844 | 44.83 % | 99.4 % of ACT bound | 0 % | 285.2 / 666 | 0 | 0 |",
              "cycles", 133844, "efficiency", 0.4483, "of_activation_bound", 0.994, "row_hit_rate", 0.0,
              "avg_read_latency", 285.2, "max_read_latency", 666,
              digits={"of_activation_bound": 3, "avg_read_latency": 1}),
    *_hbm_row("mixed", "| HBM2, defaults | mixed (10 063 writes of 30 000) | 162 581 (was 168 764; first 181 955) | 36.90 %",
              "writes", 10063, "cycles", 162581, "efficiency", 0.369, "of_activation_bound", 0.8185,
              "row_hit_rate", 0.066, "avg_read_latency", 356.8, "max_read_latency", 1032,
              digits={"row_hit_rate": 3, "avg_read_latency": 1}),
    Figure(HBM, "whose `read_latency` `min` is 17", "scoville bench hbm --trace idle.trc", "read_latency.min", 17),
    Figure(HBM, "the first read, a row miss, takes 31", "scoville bench hbm --trace idle.trc", "read_latency.max", 31),

    # docs/kvdma.md: every row on the default build but the 4096-token HND gather and the 64-bit bus
    *_kv_row("", "| 8 388 608 | 262 503 | **99.86 %** |", 262503, 0.9986),
    *_kv_row(" --op append --layout hnd --seq-len 512", "| 1 048 576 | 47 917 | 68.4 % |", 47917, 0.6838),
    *_kv_row(" --seq-len 256", "| GATHER 256 tokens, same geometry | 524 288 | 16 687 | 98.18 % |", 16687, 0.9818),
    *_kv_row(" --op append --seq-len 512", "| APPEND 512 tokens, same geometry | 1 048 576 | 33 154 | 98.84 % |", 33154, 0.9884),
    *_kv_row(" --op copy --seq-len 512", "| COPY 512 KiB | 524 288 | 16 576 | 98.84 % |", 16576, 0.9884),
    *_kv_row(" --stall random --seq-len 512", "| 1 048 576 | 41 414 | 79.12 % |", 41414, 0.7912),
    *_kv_row(" --block-size 1 --heads 1 --head-dim 128 --elem-bytes 2 --seq-len 512",
             "| 262 144 | 8 567 | 95.62 % |", 8567, 0.9562),

    # docs/noc.md: the 4x4 at the defaults (2 VCs x 4), the router's 2 x 4 row, the AXI bridge pair
    *_rows(NOC, "zero_load_latency 9.0, avg_latency 8.97", "scoville bench noc --rate 0.02 --cycles 5000",
           "zero_load_latency", 9.0, "avg_latency", 8.97, "lost", 0, "misrouted", 0, "corrupt", 0),
    *_rows(NOC, "2 VCs x 4: accepted 0.6003, avg_latency 11.92", "scoville bench noc --rate 0.6 --cycles 5000",
           "accepted", 0.6003, "avg_latency", 11.92, "lost", 0, "misrouted", 0, "corrupt", 0),
    *_rows(NOC, "2 VCs x 4: accepted 0.6772", "scoville bench noc --rate 1.0 --cycles 5000",
           "accepted", 0.6772, "lost", 0, "misrouted", 0, "corrupt", 0),
    *_rows(NOC, "| **2 x 4** | **1 424** | 265 / 88 | 686 | 95 | 81.1 MHz |",
           "scoville synth noc_router --vcs 2 --buffer 4 --flit-width 64 --target ecp5 --fmax",
           "luts", 1424, "cells_by_type.PFUMX", 265, "cells_by_type.L6MUX21", 88, "ffs", 686, "lutram", 95,
           "fmax_mhz", 81.1, digits={"fmax_mhz": 1}),
    *_rows(NOC, "gives 2 695 LUT4, 1 338 FF and 236 LUTRAM", "scoville synth noc_axi --target ecp5",
           "luts", 2695, "ffs", 1338, "lutram", 236),

    # docs/accel.md: a whole GEMM from HBM to HBM on the small default (the build tests/test_accel.py makes)
    *_rows("docs/accel.md", "| `scoville bench accel --workload gemm --m 16 --k 64 --n 64` | 7 028 | yes | 29.1 % | 11.3 % |",
           "scoville bench accel --workload gemm --m 16 --k 64 --n 64", "cycles", 7028, "correct", True,
           "utilization", 0.2914, "roofline_fraction", 0.1127),
]

COMMANDS = list(dict.fromkeys(f.command for f in FIGURES))


def _flat(text):
    return " ".join(text.split())


@functools.cache
def _doc(name):
    return _flat((REPO / name).read_text())


@functools.cache
def _workdir():
    path = Path(tempfile.mkdtemp(prefix="doc-figures-"))
    for name, text in FILES.items():
        (path / name).write_text(text)
    return path


def _result(command):
    args = command.split()[1:]
    if args[0] == "bench" and args[1] in O0_MODEL_BLOCKS:
        from scoville.sim import cli
        from scoville.sim.bench import run_bench
        block, params, workload = cli._block_and_params(args[1:], "bench", workload_allowed=True)
        return run_bench(block, params, workload, fast_compile=True)
    run = subprocess.run([sys.executable, "-m", "scoville.sim.cli", *args, "--json"], cwd=_workdir(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.returncode == 0, f"{command}: {run.stderr[-2000:]}"
    return json.loads(run.stdout.splitlines()[-1])


def _field(result, key):
    for part in key.split("."):
        result = result[part]
    return result


def test_every_figure_is_quoted_next_to_its_command():
    """Cheap, before any run: every quote and its command are in the document."""
    missing = [f"{f.doc}: quote {f.quote!r}" for f in FIGURES if _flat(f.quote) not in _doc(f.doc)]
    missing += [f"{f.doc}: command {f.command!r}" for f in FIGURES if _flat(f.command) not in _doc(f.doc)]
    assert not missing, "update FIGURES with the docs:\n" + "\n".join(dict.fromkeys(missing))


@pytest.mark.parametrize("command", COMMANDS, ids=[c.removeprefix("scoville ") for c in COMMANDS])
def test_quoted_figures_reproduce(command):
    figures = [f for f in FIGURES if f.command == command]
    result = _result(command)
    assert result.get("correct", True) is True, result
    drifted = []
    for f in figures:
        measured = _field(result, f.key)
        if f.digits is not None:
            measured = round(measured, f.digits)
        if measured != f.value:
            drifted.append(f"{f.doc} quotes {f.key} = {f.value} ({f.quote!r}) but `{command}` now gives {measured}")
    assert not drifted, "\n".join(drifted)
