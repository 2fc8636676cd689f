"""One compute tile on Verilator: programs from the assembler, results against numpy.

The jobs are built here (the assembler in ``scoville.sim.accel.asm``, expected images with numpy
and ``verif.gemm_model``) and run back to back by ``verif/tb_accel_tile.py`` on one reset, so
every job after an error also checks that the tile takes the next program.
"""

import numpy as np
import pytest

from conftest import run_block

from scoville.hw.accel.isa import ErrCode
from scoville.hw.gemm import QParam
from scoville.sim.accel import asm
from scoville.verif.gemm_model import gemm_ref, requant_ref


SMALL = {"rows": 4, "cols": 4, "lanes": 2, "a_depth": 64, "b_depth": 64, "c_depth": 64, "max_n": 16,
         "vpu_buffer": 32, "vpu_channels": 32, "addr_width": 16, "hbm_bytes": 1 << 16}
MEM = 1 << 16
DONE, ERROR = 2, 3


def _up(x, a=32):
    return -(-x // a) * a


def _log2(x):
    return x.bit_length() - 1


class Job:
    """A memory image, a program in it, and what the program must leave."""

    def __init__(self, name, rng, *, mem=MEM, prog=0xF000):
        self.name, self.rng = name, rng
        self.before = rng.integers(0, 256, mem, dtype=np.uint8)   # noise everywhere: guard bytes
        self.after = self.before.copy()
        self.words, self.prog = [], prog
        self.state, self.err_code, self.err_pc = DONE, 0, 0
        self.errors = np.zeros((0, 3), dtype=np.int64)

    def put(self, addr, array, stride=None):
        """Write a 2-D uint8 array at ``addr`` with row ``stride`` into both images."""
        array = np.atleast_2d(array)
        stride = stride or array.shape[1]
        for r, row in enumerate(array):
            self.before[addr + r * stride: addr + r * stride + len(row)] = row
            self.after[addr + r * stride: addr + r * stride + len(row)] = row

    def emit(self, words):
        self.words += words
        return self.prog + 32 * (len(self.words) - len(words))   # address of the instruction

    def arrays(self, k):
        blob = np.frombuffer(asm.to_bytes(self.words), dtype=np.uint8)
        self.before[self.prog:self.prog + len(blob)] = blob
        self.after[self.prog:self.prog + len(blob)] = blob
        return {f"{k}/name": np.array(self.name), f"{k}/before": self.before, f"{k}/after": self.after,
                f"{k}/prog": np.array(self.prog), f"{k}/state": np.array(self.state),
                f"{k}/err_code": np.array(self.err_code), f"{k}/err_pc": np.array(self.err_pc),
                f"{k}/errors": self.errors, f"{k}/max_cycles": np.array(200_000)}


def gemm_job(name, rng, m, k, n, *, R=4, C=4, base=0x0000, job=None, a=None, b=None, end=True,
             a_at=None, a_stride=None):
    """C = requant(A.B + bias) from HBM to HBM: every operand and the result in HBM (``job``:
    append to that job's program; ``a``/``b``: given operands; ``a_at``/``a_stride``: A is
    already in HBM there, e.g. another program's result). Returns the job; ``job.c_at`` and
    ``job.c`` are the result's address and value."""
    job = job or Job(name, rng)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8) if a is None else a
    b = rng.integers(-128, 128, (k, n), dtype=np.int8) if b is None else b
    bias = rng.integers(-5000, 5000, n)
    mult = rng.integers(1, 1 << 14, n)
    shift = rng.integers(10, 20, n)
    placed = a_at is not None
    sa, sb, sc = a_stride or _up(k), _up(n), _up(n)
    a_at = a_at if placed else base
    b_at = base if placed else base + m * sa
    q_at = _up(b_at + k * sb)
    c_at = _up(q_at + 8 * n)
    if not placed:
        job.put(a_at, a.view(np.uint8), sa)
    job.put(b_at, b.view(np.uint8), sb)
    q = b"".join(QParam.const({"bias": int(bias[j]), "mult": int(mult[j]), "shift": int(shift[j])})
                 .as_value().value.to_bytes(8, "little") for j in range(n))
    job.put(q_at, np.frombuffer(q, dtype=np.uint8))
    job.emit(asm.load("gemm_a", a_at, m, k, sa, _log2(R)))
    job.emit(asm.gemm("LOAD_A", m=m, k=k))
    job.emit(asm.load("gemm_b", b_at, k, n, sb, _log2(C)))
    job.emit(asm.gemm("LOAD_B", k=k, n=n))
    job.emit(asm.load("gemm_q", q_at, 1, 8 * n, _up(8 * n), 3))
    job.emit(asm.gemm("LOAD_Q", n=n))
    job.emit(asm.gemm("COMPUTE", m=m, k=k, n=n))
    job.emit(asm.gemm("STORE", m=m, n=n, bias=True, requant=True))
    job.emit(asm.store("gemm_c", c_at, m, n, sc, _log2(C)))
    if end:
        job.emit(asm.end())
    c = requant_ref(gemm_ref(a, b), bias, mult, shift, bias_en=True, requant_en=True)
    for r in range(m):
        job.after[c_at + r * sc: c_at + r * sc + n] = c[r].astype(np.int8).view(np.uint8)
    job.a_at, job.c_at, job.c, job.c_stride = a_at, c_at, c.astype(np.int8), sc
    return job


def _jobs(rng):
    jobs = [gemm_job("gemm_5x20x12", rng, 5, 20, 12)]

    job = Job("bad_opcode", rng)                    # a program running into zeroed memory
    job.emit(asm.nop())
    job.err_pc = job.emit(asm.word(0))
    job.state, job.err_code = ERROR, ErrCode.BAD_OPCODE.value
    jobs.append(job)

    jobs.append(gemm_job("gemm_after_error", rng, 3, 7, 9))

    job = Job("range", rng)                         # a window past the end of HBM: refused
    job.emit(asm.nop())
    job.err_pc = job.emit(asm.store("gemm_c", MEM - 64, 2, 64, 64, 4, check=False))
    job.emit(asm.end())
    job.state, job.err_code = ERROR, ErrCode.RANGE.value
    jobs.append(job)

    job = gemm_job("load_slverr", rng, 4, 8, 4)      # A answers SLVERR: the LOAD is at fault
    job.errors = np.array([[job.a_at, job.a_at + 32, 2]], dtype=np.int64)
    job.after = job.before.copy()                   # the program stops before its STORE writes
    job.state, job.err_code, job.err_pc = ERROR, ErrCode.LOAD.value, job.prog
    jobs.append(job)

    jobs.append(gemm_job("gemm_last", rng, 8, 16, 16))
    return jobs


def save_jobs(jobs, directory):
    """The jobs' arrays (``Job.arrays``) in ``directory/jobs.npz``, the testbenches' job file."""
    arrays = {"count": np.array(len(jobs))}
    for k, job in enumerate(jobs):
        arrays.update(job.arrays(k))
    path = directory / "jobs.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def job_file(tmp_path_factory):
    return save_jobs(_jobs(np.random.default_rng(7)), tmp_path_factory.mktemp("accel_tile"))


def test_tile_programs(job_file):
    run_block("accel_tile", SMALL, "scoville.verif.tb_accel_tile", fast_compile=True,
              env={"SCOVILLE_JOBS": str(job_file)})
