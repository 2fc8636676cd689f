"""Synthesis entry point: ``python -m scoville.scripts.synth BLOCK [--PARAM VALUE ...] --target T``,
the same as ``scoville synth`` (the flow itself is :mod:`scoville.sim.synth`)."""

import sys

from scoville.sim.cli import main


if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]]))
