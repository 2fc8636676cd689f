"""Cocotb testbench of the whole accelerator (block ``accel``) as its host sees it.

Jobs come from ``$SCOVILLE_JOBS`` (an ``.npz`` from ``tests/test_accel.py`` or the runtime): for
each, the HBM image is written through the host AXI4 port ``s_axi`` (bursts, as a driver would),
each tile's ``prog_base`` and the launch mask through the AXI4-Lite CSRs ``s_axil``, and the
testbench waits for ``irq``; then every tile's state, error code and faulting address are read
from the CSRs and the whole HBM is read back through ``s_axi`` and compared byte for byte with
the job's ``after`` image (when it has one). With ``$SCOVILLE_JOBS_OUT`` the read-back images,
states and the ``cycles`` CSR are written there. The protocol checker watches both host ports.
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiMaster

from scoville.hw.accel.accel import csr_registers

from .axi_mem import compare_bytes
from .tb import TB, block_params


def _jobs():
    data = np.load(os.environ["SCOVILLE_JOBS"], allow_pickle=False)
    for k in range(int(data["count"])):
        yield {name.split("/", 1)[1]: data[name] for name in data.files if name.startswith(f"{k}/")}


@cocotb.test()
async def programs(dut):
    """Every job: load through s_axi, launch through s_axil, wait for irq, check, read back."""
    p = block_params()
    tiles = p["tiles"]
    tb = TB(dut, stall="none", timeout=50000)
    tb.check_axi("s_axi")
    tb.check_axi("s_axil")
    host = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk, dut.rst)
    csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    offset = {r.name: 4 * k for k, r in enumerate(csr_registers(tiles))}
    await tb.reset()
    results = {}
    jobs = list(_jobs())
    results["count"] = np.array(len(jobs))
    for k, job in enumerate(jobs):
        name = str(job["name"])
        image = job["before"]
        await host.write(0, image.tobytes())
        progs = job["progs"]
        mask = 0
        for t in range(tiles):
            if progs[t] >= 0:
                await csr.write_dword(offset[f"prog_base{t}"], int(progs[t]))
                mask |= 1 << t
        await csr.write_dword(offset["irq_enable"], 1)
        await csr.write_dword(offset["launch"], mask)
        start = tb.cycle
        tb.expecting = f"job {name}: the interrupt"
        while dut.irq.value:               # the previous job's, until the launch clears it
            await RisingEdge(dut.clk)
            assert tb.cycle - start < 100, f"job {name}: the launch did not clear irq_status"
        while not dut.irq.value:
            await RisingEdge(dut.clk)
            assert tb.cycle - start < int(job["max_cycles"]), f"job {name}: no interrupt after {job['max_cycles']} cycles"
        tb.expecting = None
        cycles = await csr.read_dword(offset["cycles"])
        done, error = await csr.read_dword(offset["done"]), await csr.read_dword(offset["error"])
        codes = [await csr.read_dword(offset[f"err_code{t}"]) for t in range(tiles)]
        pcs = [await csr.read_dword(offset[f"err_pc{t}"]) for t in range(tiles)]
        dut._log.info("job %s: done %#x error %#x codes %s pcs %s in %d cycles", name, done, error,
                      codes, [hex(x) for x in pcs], cycles)
        got = np.frombuffer((await host.read(0, len(image))).data, dtype=np.uint8)
        results.update({f"{k}/image": got, f"{k}/cycles": np.array(cycles), f"{k}/done": np.array(done),
                        f"{k}/error": np.array(error), f"{k}/err_code": np.array(codes),
                        f"{k}/err_pc": np.array(pcs)})
        if "after" in job:
            want_err = [t for t in range(tiles) if progs[t] >= 0 and job["err_code"][t] != 0]
            assert error == sum(1 << t for t in want_err), f"job {name}: error mask {error:#x}"
            assert done == mask & ~error, f"job {name}: done mask {done:#x}, launched {mask:#x}"
            for t in range(tiles):
                if progs[t] >= 0:
                    assert codes[t] == int(job["err_code"][t]), f"job {name}: tile {t} err_code {codes[t]}"
                    if codes[t]:
                        assert pcs[t] == int(job["err_pc"][t]), f"job {name}: tile {t} err_pc {pcs[t]:#x}"
            compare_bytes(got, job["after"], what=f"job {name}: HBM")
    out = os.environ.get("SCOVILLE_JOBS_OUT")
    if out:
        np.savez(out, **results)
