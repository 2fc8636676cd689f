"""Running compiled work on the whole accelerator (block ``accel``): every tile, the mesh, the HBM
channels, driven through the host ports as a driver would (``verif/tb_accel.py``).

``accel_config(params)`` is the compiler's configuration of an :class:`~scoville.hw.accel.accel.
AccelParams` (its tiles and its channel-windowed HBM); ``run_on_accel(compiled, inputs, params)``
loads the image through the host AXI4 port, launches every tile's program through the CSRs,
waits for the interrupt and reads HBM back; it returns a :class:`~.runtime.RunResult` whose
``cycles`` is the ``cycles`` CSR (launch to the last tile's end).
"""

import tempfile
from pathlib import Path

import numpy as np

from scoville.hw.accel.accel import AccelParams
from scoville.hw.accel.isa import ErrCode
from scoville.hw.params import ParameterError

from .config import TileConfig
from .runtime import RunResult, TileRun


__all__ = ["accel_config", "run_on_accel"]

def accel_config(params):
    """The :class:`~.config.TileConfig` the compiler needs for ``params`` (an AccelParams)."""
    return TileConfig.from_tile_params(params.tile_params(), channel_shift=params.channel_shift)


def run_on_accel(compiled, inputs=None, params=None, *, max_cycles=5_000_000, fast_compile=True, seed=None):
    """Run ``compiled`` (compiled for ``accel_config(params)``) on the ``accel`` RTL."""
    from scoville.sim.blocks import get_block
    from scoville.sim.runner import run as run_block

    params = params if params is not None else AccelParams()
    if len(compiled.programs) > params.tiles:
        raise ParameterError(f"tiles: the work has {len(compiled.programs)} tile programs, the "
                             f"accelerator {params.tiles} tiles (accepted: compile with tiles <= {params.tiles})")
    image = np.zeros(params.hbm_bytes, dtype=np.uint8)
    before = compiled.memory_image(inputs)
    if len(before) > params.hbm_bytes:
        raise ParameterError(f"hbm_rows: the image needs {len(before)} bytes, the HBM has "
                             f"{params.hbm_bytes} (accepted: a larger --hbm-rows or --hbm-channels)")
    image[:len(before)] = before
    progs = np.full(params.tiles, -1, dtype=np.int64)
    for p in compiled.programs:
        progs[p.tile] = p.base
    block = get_block("accel")
    hw = block.configure(**params.as_dict()).as_dict()
    with tempfile.TemporaryDirectory(prefix="scoville-accel-") as tmp:
        jobs, out = Path(tmp) / "jobs.npz", Path(tmp) / "out.npz"
        np.savez(jobs, count=np.array(1), **{"0/name": np.array("compiled"), "0/before": image,
                                            "0/progs": progs, "0/max_cycles": np.array(max_cycles)})
        ran = run_block(block, hw, module=block.testbench, testcase=r"\.programs$", seed=seed,
                        env={"SCOVILLE_JOBS": str(jobs), "SCOVILLE_JOBS_OUT": str(out)},
                        fast_compile=fast_compile)
        res = dict(np.load(out))
    image = res["0/image"]
    cycles = int(res["0/cycles"])
    tiles = []
    for p in compiled.programs:
        code = int(res["0/err_code"][p.tile])
        tiles.append(TileRun(tile=p.tile, state="error" if code else "done", err_code=ErrCode(code),
                             err_pc=int(res["0/err_pc"][p.tile]) if code else 0, cycles=cycles))
    outputs = {name: compiled.read_output(image, name) for name in compiled.outputs}
    return RunResult("rtl", outputs, tiles, image, ran.log if hasattr(ran, "log") else None)
