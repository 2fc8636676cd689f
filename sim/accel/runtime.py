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

import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from scoville.hw.accel.isa import ErrCode
from scoville.hw.params import ParameterError

from .model import Machine, Memory, TileResult
from .timing import Timing


__all__ = ["TileRun", "RunResult", "run", "run_batch", "ENGINES"]

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
    return run_batch([(compiled, inputs)], engine=engine, max_cycles=max_cycles, fast_compile=fast_compile,
                     seed=seed)[0]


def run_batch(jobs, *, engine="model", max_cycles=2_000_000, fast_compile=True, seed=None):
    """:func:`run` of every ``(compiled, inputs)`` of ``jobs``, a :class:`RunResult` each; on the
    RTL in one simulation (the jobs back to back on one reset, as ``verif/tb_accel_tile.py``
    runs them), so every compiled program must have the same configuration. The model's cycles
    follow the same sequence: a job starts while the instruction fetch the previous one issued
    past its END may still be arriving (:class:`~.timing.Timing`'s ``fetch_tail``)."""
    if engine not in ENGINES:
        raise ParameterError(f"engine: {engine!r} is not accepted (accepted: one of {', '.join(ENGINES)})")
    images = [compiled.memory_image(inputs) for compiled, inputs in jobs]
    if engine == "model":
        ran, tail = [], -1
        for (compiled, _), image in zip(jobs, images):
            ran.append(_run_model(compiled, image, fetch_tail=tail))
            tail = ran[-1][3]
        ran = [r[:3] for r in ran]
    else:
        ran = _run_rtl([c for c, _ in jobs], images, max_cycles=max_cycles, fast_compile=fast_compile, seed=seed)
    results = []
    for (compiled, _), (tiles, image, log) in zip(jobs, ran):
        outputs = {name: compiled.read_output(image, name) for name in compiled.outputs}
        results.append(RunResult(engine, outputs, tiles, image, log))
    return results


def _run_model(compiled, image, *, fetch_tail=-1):
    cfg = compiled.config
    timing = Timing(cfg, read_latency=int(os.environ.get("SCOVILLE_MEM_LATENCY", "20")), fetch_tail=fetch_tail)
    m = Machine(cfg, tiles=compiled.tiles, memory=Memory(cfg.hbm_bytes, size=len(image), data=image),
                timing=timing)
    results = m.run({p.tile: p.base for p in compiled.programs})
    tiles = [TileRun(**{f.name: getattr(r, f.name) for f in fields(r)}, cycles=timing.cycles(r.tile))
             for r in results]
    tail = timing.fetch_tail_after(0) if len(results) == 1 and results[0].state == "done" else -1
    return tiles, m.memory.data, None, tail


def _run_rtl(compileds, images, *, max_cycles, fast_compile, seed):
    # imported here: the model engine needs neither the block registry nor a simulator
    from scoville.sim.blocks import get_block
    from scoville.sim.runner import run as run_block

    for compiled in compileds:
        if len(compiled.programs) != 1:
            raise ParameterError(f"engine rtl: {len(compiled.programs)} tiles (accepted: 1, the accel_tile "
                                 "block, until the multi-tile top exists; compile with tiles=1)")
        if compiled.config != compileds[0].config:
            raise ParameterError("engine rtl: the jobs of one batch need one configuration (one build)")
    block = get_block("accel_tile")
    params = block.configure(**compileds[0].config.to_tile_params().as_dict()).as_dict()
    arrays = {"count": np.array(len(compileds))}
    for k, (compiled, image) in enumerate(zip(compileds, images)):
        arrays.update({f"{k}/name": np.array(f"compiled{k}"), f"{k}/before": image,
                       f"{k}/prog": np.array(compiled.programs[0].base),
                       f"{k}/errors": np.zeros((0, 3), np.int64), f"{k}/max_cycles": np.array(max_cycles)})
    with tempfile.TemporaryDirectory(prefix="scoville-accel-") as tmp:
        jobs, out = Path(tmp) / "jobs.npz", Path(tmp) / "out.npz"
        np.savez(jobs, **arrays)
        result = run_block(block, params, module="scoville.verif.tb_accel_tile", testcase=r"\.programs$",
                           env={"SCOVILLE_JOBS": str(jobs), "SCOVILLE_JOBS_OUT": str(out)},
                           fast_compile=fast_compile, seed=seed)
        ran = []
        with np.load(out) as back:
            for k, compiled in enumerate(compileds):
                state, code = int(back[f"{k}/state"]), int(back[f"{k}/err_code"])
                tile = TileRun(compiled.programs[0].tile, _SEQ_STATES.get(state, f"state {state}"), ErrCode(code),
                               int(back[f"{k}/err_pc"]), int(back[f"{k}/retired"]), cycles=int(back[f"{k}/cycles"]))
                ran.append(([tile], back[f"{k}/image"].copy(), result.log))
    return ran
