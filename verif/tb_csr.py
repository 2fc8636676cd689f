"""cocotb tests of the ``csr`` block through cocotbext-axi's AXI4-Lite master (third-party VIP).

The Python model is a dict of register values; every write (any byte-strobe pattern) and every
read is compared with it, the gateware-side register outputs are checked after each write, and
all five AXI4-Lite channels carry the protocol checker while the master and its response
channels stall at random.
"""

import random

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from .stream import random_pause
from .tb import TB, bench_args, write_bench_result


class CSRModel:
    def __init__(self, params):
        self.rw, self.ro = params["rw_registers"], params["ro_registers"]
        self.bytes = params["data_width"] // 8
        self.values = [0] * (self.rw + self.ro)

    def name(self, k):
        return f"scratch{k}" if k < self.rw else f"status{k - self.rw}"

    def write(self, k, offset, data):
        """Expected response of writing ``data`` at byte ``offset`` of register ``k``."""
        if k >= self.rw + self.ro:
            return AxiResp.DECERR
        if k >= self.rw:
            return AxiResp.SLVERR
        word = bytearray(self.values[k].to_bytes(self.bytes, "little"))
        word[offset:offset + len(data)] = data
        self.values[k] = int.from_bytes(word, "little")
        return AxiResp.OKAY


def _master(tb, stall):
    master = AxiLiteMaster(AxiLiteBus.from_prefix(tb.dut, "s_axil"), tb.clk, tb.rst)
    if stall:
        for channel in (master.write_if.aw_channel, master.write_if.w_channel, master.write_if.b_channel,
                        master.read_if.ar_channel, master.read_if.r_channel):
            channel.set_pause_generator(random_pause(0.3))
    return master


async def _random_accesses(tb, master, model, count):
    dut = tb.dut
    regs = model.rw + model.ro
    for _ in range(count):
        k = random.randrange(regs + 2)            # two past the end: DECERR
        offset = random.randrange(model.bytes)
        length = random.randint(1, model.bytes - offset)
        data = random.randbytes(length)
        status_values = {}
        for s in range(model.ro):                 # gateware-driven status changes under our feet
            value = random.getrandbits(8 * model.bytes)
            getattr(dut, f"status{s}").value = value
            model.values[model.rw + s] = value
        expected = model.write(k, offset, data)
        resp = await master.write(k * model.bytes + offset, data)
        assert resp.resp == expected, f"write reg {k} +{offset}: resp {resp.resp!r}, expected {expected!r}"
        tb.watchdog.kick()
        for r in range(model.rw):
            got = int(getattr(dut, model.name(r)).value)
            assert got == model.values[r], f"{model.name(r)} = {got:#x}, expected {model.values[r]:#x}"
        k = random.randrange(regs + 2)
        result = await master.read(k * model.bytes, model.bytes)
        if k < regs:
            assert result.resp == AxiResp.OKAY, f"read {model.name(k)}: {result.resp!r}"
            got = int.from_bytes(result.data, "little")
            assert got == model.values[k], f"read {model.name(k)} = {got:#x}, expected {model.values[k]:#x}"
        else:
            assert result.resp == AxiResp.DECERR, f"read past the end (reg {k}): {result.resp!r}"
        tb.watchdog.kick()


@cocotb.test()
@cocotb.parametrize(stall=[False, True])
async def register_access(dut, stall):
    """Random byte-strobed writes and reads against the model; SLVERR on read-only, DECERR past
    the end; protocol checkers on all channels."""
    tb = TB(dut)
    tb.check_axi("s_axil")
    master = _master(tb, stall)
    await tb.reset()
    await _random_accesses(tb, master, CSRModel(tb.params), 150)


@cocotb.test()
async def write_strobe_pulse(dut):
    """``scratch0_wstb`` pulses exactly once per write to scratch0, never for others."""
    tb = TB(dut)
    tb.check_axi("s_axil")
    master = _master(tb, False)
    await tb.reset()
    if tb.params["rw_registers"] == 0:
        return
    pulses = 0

    async def count():
        nonlocal pulses
        while True:
            await RisingEdge(dut.clk)
            pulses += int(dut.scratch0_wstb.value)

    cocotb.start_soon(count())
    nbytes = tb.params["data_width"] // 8
    for k in [0, 1, 0, 0] if tb.params["rw_registers"] > 1 else [0, 0, 0]:
        await master.write(k * nbytes, bytes(nbytes))
    for _ in range(3):
        await RisingEdge(dut.clk)
    assert pulses == 3, f"scratch0_wstb pulsed {pulses} times for 3 writes"


@cocotb.test()
async def reset_clears_registers(dut):
    tb = TB(dut)
    master = _master(tb, False)
    await tb.reset()
    model = CSRModel(tb.params)
    await _random_accesses(tb, master, model, 10)
    await tb.reset()
    for r in range(model.rw):
        assert int(getattr(dut, model.name(r)).value) == 0, f"{model.name(r)} survived reset"


@cocotb.test()
async def bench(dut):
    """``scoville bench csr``: cycles per write/read-back pair through the VIP."""
    accesses = bench_args().get("accesses", 200)
    tb = TB(dut)
    tb.check_axi("s_axil")
    master = _master(tb, False)
    await tb.reset()
    start = tb.cycle
    await _random_accesses(tb, master, CSRModel(tb.params), accesses)
    cycles = tb.cycle - start
    write_bench_result({"accesses": accesses, "cycles": cycles,
                        "cycles_per_access_pair": round(cycles / accesses, 2), "correct": True})
