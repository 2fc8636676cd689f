"""Figures quoted in README.md and docs/ re-measured by the command written next to them.

Each entry names the document, the text that quotes the figure, the command the document gives
for it, the result field and its value. The test fails when the quote or the command is no
longer in the document, or when the command no longer gives the figure: a figure cannot drift
from its design silently. Only cheap figures (under a minute each on a built model) are here;
the long ones are in ``make bench`` (``scoville.sim.bench.SUITE``).
"""

import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    doc: str          # file, relative to the repository
    quote: str        # text of the document that states the figure
    command: str      # the `scoville ...` command the document gives (without --json)
    key: str          # field of the command's JSON result
    value: object     # the figure

    def __str__(self):
        return f"{self.doc}:{self.key}={self.value}"


GEMM_64 = "scoville bench gemm --rows 8 --cols 8 --dataflow ws --m 64 --k 64 --n 64"

FIGURES = [
    Figure("docs/gemm.md", "| 64 x 64 x 64 | 8x8 WS | **4 122** | 4 096 | 99.4% | 4 122 |", GEMM_64, "cycles", 4122),
    Figure("docs/gemm.md", "| 64 x 64 x 64 | 8x8 WS | **4 122** | 4 096 | 99.4% | 4 122 |", GEMM_64, "model_cycles", 4122),
    Figure("README.md", "64x64x64 on 8x8 WS in 4 122 cycles",
           "scoville bench gemm --rows 8 --cols 8 --m 64 --k 64 --n 64", "cycles", 4122),
    Figure("docs/shared-blocks.md", "| rr_arbiter n 4 | 27 | 2 |",
           "scoville synth rr_arbiter --n 4 --target ecp5", "luts", 27),
    Figure("docs/shared-blocks.md", "| skid_buffer width 32 | 38 | 66 |",
           "scoville synth skid_buffer --width 32 --target ecp5", "ffs", 66),
    Figure("docs/shared-blocks.md", "| csr 4 rw + 2 ro, 32 bit | 397 | 166 | 151.5 MHz | 246 | 56.3 MHz | 6 480 |",
           "scoville synth csr --target generic", "transistors", 6480),
    Figure("docs/kvdma.md", "| GATHER 256 tokens, same geometry | 524 288 | 16 687 | 98.18 % |",
           "scoville bench kvdma --seq-len 256", "cycles", 16687),
    Figure("docs/kvdma.md", "| 262 144 | 8 567 | 95.62 % |",
           "scoville bench kvdma --block-size 1 --heads 1 --head-dim 128 --elem-bytes 2 --seq-len 512",
           "cycles", 8567),
]


@functools.cache     # figures sharing a command (gemm's cycles and model_cycles) run it once
def _result(command):
    args = command.split()[1:] + ["--json"]
    run = subprocess.run([sys.executable, "-m", "scoville.sim.cli", *args], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.returncode == 0, f"{command}: {run.stderr[-2000:]}"
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("figure", FIGURES, ids=str)
def test_quoted_figure_reproduces(figure):
    text = (REPO / figure.doc).read_text()
    assert figure.quote in text, f"{figure.doc} no longer quotes {figure.quote!r}: update FIGURES with the doc"
    assert figure.command in text, f"{figure.doc} does not give the command {figure.command!r} next to its figure"
    result = _result(figure.command)
    assert result.get("correct", True) is True, result
    measured = result[figure.key]
    assert measured == figure.value, (f"{figure.doc} quotes {figure.key} = {figure.value} "
                                      f"but `{figure.command}` now gives {measured}")
