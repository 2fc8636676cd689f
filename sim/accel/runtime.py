"""Running a :class:`~.compiler.Compiled` on an engine, with one call::

    result = run(compiled, {"x": x}, engine="model")     # sim/accel/model.py
    result = run(compiled, {"x": x}, engine="rtl")       # the accel_tile block on Verilator
    result.outputs["y"], result.ok, result.tiles[0].cycles

``engine="model"``: the functional machine model (:class:`~.model.Machine`), every tile of the
compiled program; no cycles. ``engine="rtl"``: the ``accel_tile`` block (one tile and its
semaphore bank, ``hw/testbench/accel.py``) through ``sim.runner``, built with the tile
parameters of the compiled configuration (:meth:`~.config.TileConfig.to_tile_params`), one tile
only until the multi-tile top exists. The RTL run writes one job in the format of
``verif/tb_accel_tile.py`` (the memory image before, the program's address; no ``after``, so
the testbench only runs it), sets ``SCOVILLE_JOBS``/``SCOVILLE_JOBS_OUT`` and reads back the
final image, state, error code and address, cycles and instructions retired.
"""

import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from scoville.hw.accel.isa import ErrCode
from scoville.hw.params import ParameterError

from .model import Machine, Memory, TileResult


__all__ = ["TileRun", "RunResult", "run", "ENGINES"]

ENGINES = ("model", "rtl")
_SEQ_STATES = {2: "done", 3: "error"}       # hw.accel.sequencer.SeqState DONE, ERROR


@dataclass
class TileRun(TileResult):
    """How one tile's program ended (:class:`~.model.TileResult`: ``state`` "done", "error",
    or on the model "hung"), and ``cycles`` from start to DONE/ERROR (RTL; None on the model)."""
    cycles: int = None


@dataclass
class RunResult:
    """``outputs`` (name -> numpy array, :meth:`~.compiler.Compiled.read_output`) read from
    the final ``image``; ``tiles`` one :class:`TileRun` per program; ``log``: the simulation's
    log (RTL)."""
    engine: str
    outputs: dict
    tiles: list
    image: np.ndarray
    log: Path = None

    @property
    def ok(self):
        return all(t.state == "done" for t in self.tiles)

    @property
    def cycles(self):
        """The slowest tile's cycles (RTL), else None."""
        c = [t.cycles for t in self.tiles if t.cycles is not None]
        return max(c) if c else None


def run(compiled, inputs=None, *, engine="model", max_cycles=2_000_000, fast_compile=True, seed=None):
    """Run ``compiled`` with ``inputs`` (name -> array) on ``engine`` ("model" or "rtl"); a
    :class:`RunResult`. ``max_cycles`` (RTL) fails the simulation of a program that runs longer;
    ``fast_compile`` builds the Verilator model at -O0 (what ``tests/test_accel_tile.py``
    builds, so the two share it)."""
    if engine not in ENGINES:
        raise ParameterError(f"engine: {engine!r} is not accepted (accepted: one of {', '.join(ENGINES)})")
    image = compiled.memory_image(inputs)
    if engine == "model":
        tiles, image, log = _run_model(compiled, image)
    else:
        tiles, image, log = _run_rtl(compiled, image, max_cycles=max_cycles, fast_compile=fast_compile,
                                     seed=seed)
    outputs = {name: compiled.read_output(image, name) for name in compiled.outputs}
    return RunResult(engine, outputs, tiles, image, log)


def _run_model(compiled, image):
    cfg = compiled.config
    m = Machine(cfg, tiles=compiled.tiles, memory=Memory(cfg.hbm_bytes, size=len(image), data=image))
    results = m.run({p.tile: p.base for p in compiled.programs})
    tiles = [TileRun(**{f.name: getattr(r, f.name) for f in fields(r)}) for r in results]
    return tiles, m.memory.data, None


def _run_rtl(compiled, image, *, max_cycles, fast_compile, seed):
    # imported here: the model engine needs neither the block registry nor a simulator
    from scoville.sim.blocks import get_block
    from scoville.sim.runner import run as run_block

    if len(compiled.programs) != 1:
        raise ParameterError(f"engine rtl: {len(compiled.programs)} tiles (accepted: 1, the accel_tile "
                             "block, until the multi-tile top exists; compile with tiles=1)")
    prog = compiled.programs[0]
    block = get_block("accel_tile")
    params = block.configure(**compiled.config.to_tile_params().as_dict()).as_dict()
    with tempfile.TemporaryDirectory(prefix="scoville-accel-") as tmp:
        jobs, out = Path(tmp) / "jobs.npz", Path(tmp) / "out.npz"
        np.savez(jobs, count=np.array(1), **{
            "0/name": np.array("compiled"), "0/before": image, "0/prog": np.array(prog.base),
            "0/errors": np.zeros((0, 3), np.int64), "0/max_cycles": np.array(max_cycles)})
        result = run_block(block, params, module="scoville.verif.tb_accel_tile", testcase=r"\.programs$",
                           env={"SCOVILLE_JOBS": str(jobs), "SCOVILLE_JOBS_OUT": str(out)},
                           fast_compile=fast_compile, seed=seed)
        with np.load(out) as back:
            final = back["0/image"].copy()
            state, code = int(back["0/state"]), int(back["0/err_code"])
            tile = TileRun(prog.tile, _SEQ_STATES.get(state, f"state {state}"), ErrCode(code),
                           int(back["0/err_pc"]), int(back["0/retired"]), cycles=int(back["0/cycles"]))
    return [tile], final, result.log
