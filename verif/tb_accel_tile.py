"""Cocotb testbench of one compute tile (block ``accel_tile``) on the AXI memory model.

Each test runs the jobs of the file ``$SCOVILLE_JOBS`` (an ``.npz`` written by
``tests/test_accel_tile.py``: programs built with the assembler, expected images from the machine
model and numpy). A job gives the memory image before, the program address, the image the
program must leave (every byte compared: what a program must not touch is compared too),
the state, error code and faulting address it must end with, and error ranges to inject. A job
without an ``after`` image is only run (the runtime's use); with ``$SCOVILLE_JOBS_OUT`` set, the
final image, state, error code, faulting address and cycles of every job of the first test are
written there (an ``.npz``).
Jobs run back to back on one reset, so each also checks that the tile takes the next program
after the previous one (an error included). The protocol checker watches every AXI channel,
the memory stalls at random, and the watchdog fails a job that stops making progress.
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiResp

from .axi_mem import AxiMemory, compare_bytes
from .tb import TB


STATE_DONE, STATE_ERROR = 2, 3


def _jobs():
    data = np.load(os.environ["SCOVILLE_JOBS"], allow_pickle=False)
    count = int(data["count"])
    for k in range(count):
        yield {name.split("/", 1)[1]: data[name] for name in data.files if name.startswith(f"{k}/")}


async def _run(dut, *, stall):
    tb = TB(dut, stall="none", timeout=20000)
    tb.check_axi("m_axi")
    jobs = list(_jobs())
    size = max(len(j["before"]) for j in jobs)
    mem = AxiMemory(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=size,
                    read_latency=int(os.environ.get("SCOVILLE_MEM_LATENCY", "20")), stall=stall,
                    full_width_incr=True)
    descriptors = []
    results = {"count": np.array(len(jobs))}

    async def kv_sink():
        dut.m_kv_ready.value = 1
        while True:
            await RisingEdge(dut.clk)
            if dut.m_kv_valid.value and dut.m_kv_ready.value:
                descriptors.append(int(dut.m_kv_payload.value))
    cocotb.start_soon(kv_sink())
    await tb.reset()

    for k, job in enumerate(jobs):
        name = str(job["name"])
        mem.image[:] = 0
        mem.image[:len(job["before"])] = job["before"]
        mem.clear_errors()
        for lo, hi, resp in job["errors"].reshape(-1, 3):
            mem.inject_error(int(lo), int(hi), AxiResp(int(resp)))
        dut.sem_reset.value = 1
        await RisingEdge(dut.clk)
        dut.sem_reset.value = 0
        dut.prog_base.value = int(job["prog"])
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        start = tb.cycle - 1
        await RisingEdge(dut.clk)          # the state leaves DONE/ERROR at the edge after start
        tb.expecting = f"job {name}: the program to end"
        while int(dut.state.value) not in (STATE_DONE, STATE_ERROR):
            await RisingEdge(dut.clk)
            assert tb.cycle - start < int(job["max_cycles"]), \
                f"job {name}: still running after {job['max_cycles']} cycles (pc of last error {int(dut.err_pc.value):#x})"
        cycles = tb.cycle - start
        state, code, pc = int(dut.state.value), int(dut.err_code.value), int(dut.err_pc.value)
        results.update({f"{k}/image": mem.image[:len(job["before"])].copy(), f"{k}/state": np.array(state),
                        f"{k}/err_code": np.array(code), f"{k}/err_pc": np.array(pc),
                        f"{k}/cycles": np.array(cycles), f"{k}/retired": np.array(int(dut.retired.value))})
        if "after" not in job:
            continue
        dut._log.info("job %s: state %d err %d pc %#x in %d cycles, %d instructions",
                      name, state, code, pc, cycles, int(dut.retired.value))
        assert (state, code) == (int(job["state"]), int(job["err_code"])), \
            f"job {name}: ended in state {state} with err_code {code} at {pc:#x}, expected " \
            f"state {int(job['state'])} err_code {int(job['err_code'])} at {int(job['err_pc']):#x}"
        if state == STATE_ERROR:
            assert pc == int(job["err_pc"]), f"job {name}: err_pc {pc:#x}, expected {int(job['err_pc']):#x}"
        compare_bytes(mem.image[:len(job["after"])], job["after"], what=f"job {name}: memory")
        if "kv" in job:
            want = [int.from_bytes(bytes(d), "little") for d in job["kv"].reshape(-1, 32)]
            assert descriptors == want, f"job {name}: KV descriptors {descriptors} != {want}"
        descriptors.clear()
        if "cycles" in job:
            dut._log.info("job %s: %d cycles (model %d)", name, cycles, int(job["cycles"]))
    return results


@cocotb.test()
async def programs(dut):
    """Every job on a memory that answers at once."""
    results = await _run(dut, stall=0.0)
    out = os.environ.get("SCOVILLE_JOBS_OUT")
    if out:
        np.savez(out, **results)


@cocotb.test()
async def programs_random_stalls(dut):
    """Every job again with every AXI channel of the memory stalling at random."""
    await _run(dut, stall=0.3)
