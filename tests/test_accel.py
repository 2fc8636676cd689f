"""The whole accelerator on Verilator, driven as its host drives it (``verif/tb_accel.py``).

Two tiles, two HBM channels and the KV-cache DMA on the mesh; programs written through the host
AXI4 port and launched through the CSRs; results read back and compared byte for byte. The
jobs: a barrier between the tiles (tile 1 multiplies tile 0's result, read across the mesh), an
error on one tile while the other ends, a KV-cache DMA copy issued by a program and fenced
before the barrier, and the first job again.
"""

import numpy as np
import pytest

from conftest import run_block
from test_accel_tile import Job, gemm_job, save_jobs

from scoville.hw.accel.isa import ErrCode, Unit
from scoville.hw.kvdma.descriptors import Op as KVOp, pack_descriptor
from scoville.sim.accel import asm


SMALL = {"tiles": 2, "rows": 4, "cols": 4, "lanes": 2, "a_depth": 64, "b_depth": 64, "c_depth": 64,
         "max_n": 16, "vpu_buffer": 32, "vpu_channels": 32, "hbm_channels": 2, "hbm_rows": 8}
CHANNEL = 16 * 8 * 32 * 32          # bytes per channel at hbm_rows 8 (HBM2: 16 banks, 32 atoms per row)
MEM = 2 * CHANNEL


class SystemJob:
    """One job for every tile: a shared image and a program per tile."""

    def __init__(self, name, rng):
        self.name, self.rng = name, rng
        self.image = Job(name, rng, mem=MEM)          # the shared before/after images
        self.tiles = []                               # (Job holding the program, prog address)

    def program(self, prog):
        job = Job(self.name, self.rng, mem=0, prog=prog)
        self.tiles.append(job)
        return job

    def arrays(self, k):
        progs, codes, pcs = [], [], []
        for job in self.tiles:
            blob = np.frombuffer(asm.to_bytes(job.words), dtype=np.uint8)
            for img in (self.image.before, self.image.after):
                img[job.prog:job.prog + len(blob)] = blob
            progs.append(job.prog)
            codes.append(job.err_code)
            pcs.append(job.err_pc)
        return {f"{k}/name": np.array(self.name), f"{k}/before": self.image.before,
                f"{k}/after": self.image.after, f"{k}/progs": np.array(progs),
                f"{k}/err_code": np.array(codes), f"{k}/err_pc": np.array(pcs),
                f"{k}/max_cycles": np.array(400_000)}


def _barrier_job(rng):
    """Tile 0: C0 = A.B0 in channel 0, then SIGNAL; tile 1: WAIT, then D = C0.B1 with B1 and D in
    channel 1 (C0 read across the mesh from channel 0)."""
    sj = SystemJob("two_tiles_barrier", rng)
    img = sj.image
    t0 = sj.program(CHANNEL - 0x1000)
    gemm_job("t0", rng, 6, 24, 8, base=0x0000, job=img, end=False)
    t0.words, img.words = img.words, []
    t0.emit(asm.fence(Unit.STORE))
    t0.emit(asm.signal(0, 1))
    t0.emit(asm.end())
    t1 = sj.program(MEM - 0x1000)
    t1.emit(asm.wait(0, 1, timeout=200_000))
    gemm_job("t1", rng, 6, 8, 12, base=CHANNEL, job=img, a=img.c, a_at=img.c_at, a_stride=img.c_stride,
             end=False)
    t1.words += img.words
    img.words = []
    t1.emit(asm.end())
    return sj


def _kv_job(rng):
    """Tile 0: C0 = A.B0, then the KV-cache DMA copies C0 into channel 1 (a KV COPY descriptor
    from tile 0's program), FENCE KV, SIGNAL; tile 1: WAIT, then D = copy(C0).B1."""
    sj = SystemJob("kv_copy_barrier", rng)
    img = sj.image
    t0 = sj.program(CHANNEL - 0x1000)
    gemm_job("t0", rng, 5, 16, 8, base=0x0000, job=img, end=False)
    t0.words, img.words = img.words, []
    c0, c0_at, stride = img.c, img.c_at, img.c_stride
    dst = CHANNEL + 0x8000
    t0.emit(asm.fence(Unit.STORE))
    t0.emit(asm.kv(pack_descriptor(KVOp.COPY, count=stride, a=c0_at, b=dst, c=c0.shape[0], d=stride, e=stride)))
    t0.emit(asm.fence(Unit.KV))
    t0.emit(asm.signal(1, 1))
    t0.emit(asm.end())
    img.after[dst:dst + c0.shape[0] * stride] = img.after[c0_at:c0_at + c0.shape[0] * stride]
    t1 = sj.program(MEM - 0x1000)
    t1.emit(asm.wait(1, 1, timeout=200_000))
    gemm_job("t1", rng, 5, 8, 8, base=CHANNEL, job=img, a=c0, a_at=dst, a_stride=stride, end=False)
    t1.words += img.words
    img.words = []
    t1.emit(asm.end())
    return sj


def _error_job(rng):
    """Tile 0 runs into a zero word (BAD_OPCODE at its address); tile 1 ends normally."""
    sj = SystemJob("tile0_bad_opcode", rng)
    t0 = sj.program(CHANNEL - 0x1000)
    t0.emit(asm.nop())
    t0.err_pc = t0.emit(asm.word(0))
    t0.err_code = ErrCode.BAD_OPCODE.value
    t1 = sj.program(MEM - 0x1000)
    t1.emit(asm.nop())
    t1.emit(asm.end())
    return sj


@pytest.fixture(scope="module")
def job_file(tmp_path_factory):
    rng = np.random.default_rng(11)
    jobs = [_barrier_job(rng), _error_job(rng), _kv_job(rng), _barrier_job(rng)]
    return save_jobs(jobs, tmp_path_factory.mktemp("accel"))


def test_accel_programs(job_file):
    run_block("accel", SMALL, "scoville.verif.tb_accel", fast_compile=True,
              env={"SCOVILLE_JOBS": str(job_file)})
