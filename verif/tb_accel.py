"""Cocotb testbench of the whole accelerator (block ``accel``) as its host sees it.

Jobs come from ``$SCOVILLE_JOBS`` (an ``.npz`` from ``tests/test_accel.py`` or the runtime): for
each, the HBM image is written through the host AXI4 port ``s_axi`` (bursts, as a driver would),
each tile's ``prog_base`` and the launch mask through the AXI4-Lite CSRs ``s_axil``, and the
testbench waits for ``irq``; then every tile's state, error code and faulting address are read
from the CSRs and the whole HBM is read back through ``s_axi`` and compared byte for byte with
the job's ``after`` image (when it has one). With ``$SCOVILLE_JOBS_OUT`` the read-back images,
states and the ``cycles`` CSR are written there. The protocol checker watches both host ports.
"""

import itertools
import logging
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiMaster

from scoville.hw.accel.accel import csr_registers

from .axi_mem import compare_bytes
from .stream import random_pause
from .tb import TB, block_params


def _jobs():
    data = np.load(os.environ["SCOVILLE_JOBS"], allow_pickle=False)
    for k in range(int(data["count"])):
        yield {name.split("/", 1)[1]: data[name] for name in data.files if name.startswith(f"{k}/")}


class Host:
    """The host's view: the AXI4 port to HBM, the CSRs, the interrupt."""

    def __init__(self, dut, tb):
        self.dut, self.tb = dut, tb
        self.tiles = block_params()["tiles"]
        # No reset handle: the host is not reset with the chip (host_stalls_and_reset resets
        # the chip while the host is idle, as a driver resetting its device would).
        self.axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi"), dut.clk)
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk)
        for port in (self.axi, self.csr):
            for side in (port.write_if, port.read_if):
                side.log.setLevel(logging.WARNING)      # one line per burst otherwise
        self.offset = {r.name: 4 * k for k, r in enumerate(csr_registers(self.tiles))}

    def stall(self, probability):
        """Random pauses on every channel of both host ports (the host side's stalls)."""
        channels = [self.axi.write_if.aw_channel, self.axi.write_if.w_channel, self.axi.write_if.b_channel,
                    self.axi.read_if.ar_channel, self.axi.read_if.r_channel,
                    self.csr.write_if.aw_channel, self.csr.write_if.w_channel, self.csr.write_if.b_channel,
                    self.csr.read_if.ar_channel, self.csr.read_if.r_channel]
        for ch in channels:
            # never None: cocotbext-axi keeps a channel paused if its generator is removed
            # while it pauses
            ch.set_pause_generator(random_pause(probability) if probability else itertools.repeat(False))

    async def launch(self, job):
        """Write the job's image and programs, launch its tiles; the launch mask."""
        self.tb.expecting = f"job {job['name']}: the host's writes"      # the watchdog names what hangs
        await self.axi.write(0, job["before"].tobytes())
        mask = 0
        for t in range(self.tiles):
            if job["progs"][t] >= 0:
                await self.csr.write_dword(self.offset[f"prog_base{t}"], int(job["progs"][t]))
                mask |= 1 << t
        await self.csr.write_dword(self.offset["irq_enable"], 1)
        await self.csr.write_dword(self.offset["launch"], mask)
        return mask

    async def run(self, job):
        """Run one job to its interrupt; check it if it has an ``after`` image; its results."""
        dut, tb, name = self.dut, self.tb, str(job["name"])
        mask = await self.launch(job)
        start = tb.cycle
        # The chip works on its own now, out of the host ports' sight: max_cycles bounds it
        # (the watchdog, which sees only the host ports, rests until the reads).
        tb.expecting = None
        while dut.irq.value:               # the previous job's, until the launch clears it
            await RisingEdge(dut.clk)
            assert tb.cycle - start < 100, f"job {name}: the launch did not clear irq_status"
        while not dut.irq.value:
            await RisingEdge(dut.clk)
            assert tb.cycle - start < int(job["max_cycles"]), f"job {name}: no interrupt after {job['max_cycles']} cycles"
        tb.expecting = f"job {name}: the host's reads"
        read = self.csr.read_dword
        cycles = await read(self.offset["cycles"])
        done, error = await read(self.offset["done"]), await read(self.offset["error"])
        codes = [await read(self.offset[f"err_code{t}"]) for t in range(self.tiles)]
        pcs = [await read(self.offset[f"err_pc{t}"]) for t in range(self.tiles)]
        dut._log.info("job %s: done %#x error %#x codes %s pcs %s in %d cycles", name, done, error,
                      codes, [hex(x) for x in pcs], cycles)
        got = np.frombuffer((await self.axi.read(0, len(job["before"]))).data, dtype=np.uint8)
        tb.expecting = None
        if "after" in job:
            progs = job["progs"]
            want_err = [t for t in range(self.tiles) if progs[t] >= 0 and job["err_code"][t] != 0]
            assert error == sum(1 << t for t in want_err), f"job {name}: error mask {error:#x}"
            assert done == mask & ~error, f"job {name}: done mask {done:#x}, launched {mask:#x}"
            for t in range(self.tiles):
                if progs[t] >= 0:
                    assert codes[t] == int(job["err_code"][t]), f"job {name}: tile {t} err_code {codes[t]}"
                    if codes[t]:
                        assert pcs[t] == int(job["err_pc"][t]), f"job {name}: tile {t} err_pc {pcs[t]:#x}"
            compare_bytes(got, job["after"], what=f"job {name}: HBM")
        return {"image": got, "cycles": np.array(cycles), "done": np.array(done), "error": np.array(error),
                "err_code": np.array(codes), "err_pc": np.array(pcs)}


def _start(dut):
    tb = TB(dut, stall="none", timeout=50000)
    tb.check_axi("s_axi")
    tb.check_axi("s_axil")
    return tb, Host(dut, tb)


@cocotb.test()
async def programs(dut):
    """Every job: load through s_axi, launch through s_axil, wait for irq, check, read back."""
    tb, host = _start(dut)
    await tb.reset()
    jobs = list(_jobs())
    results = {"count": np.array(len(jobs))}
    for k, job in enumerate(jobs):
        for key, value in (await host.run(job)).items():
            results[f"{k}/{key}"] = value
    out = os.environ.get("SCOVILLE_JOBS_OUT")
    if out:
        np.savez(out, **results)


@cocotb.test()
async def host_stalls_and_reset(dut):
    """The first job with every host channel stalling at random; then that job launched again
    and the chip reset in the middle of it; then the job once more, which must be correct."""
    tb, host = _start(dut)
    await tb.reset()
    job = next(_jobs())
    host.stall(0.3)
    await host.run(job)
    host.stall(0)
    await host.launch(job)
    await ClockCycles(dut.clk, 200)
    assert int(await host.csr.read_dword(host.offset["running"])) != 0, "the job ended before the reset"
    await tb.reset(5)
    await host.run(job)
