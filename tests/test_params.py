"""Parameter validation of the shared vocabulary: one-line errors naming parameter and range."""

import pytest
from amaranth.lib import wiring

from scoville.hw.arbiter import RoundRobinArbiter
from scoville.hw.axi import AXI4LiteSignature, AXI4Signature, AXIStreamSignature
from scoville.hw.csr import CSRBankParams, CSRBlock, Register
from scoville.hw.params import ParameterError
from scoville.hw.skid_buffer import SkidBuffer, SkidBufferParams


@pytest.mark.parametrize("make, name", [
    (lambda: SkidBufferParams(width=0), "width"),
    (lambda: SkidBufferParams(width=True), "width"),
    (lambda: RoundRobinArbiter(n=0), "n"),
    (lambda: RoundRobinArbiter(n=65), "n"),
    (lambda: AXI4Signature(addr_width=32, data_width=24), "data_width"),
    (lambda: AXI4Signature(addr_width=0, data_width=64), "addr_width"),
    (lambda: AXI4Signature(addr_width=32, data_width=64, id_width=33), "id_width"),
    (lambda: AXI4LiteSignature(addr_width=12, data_width=128), "data_width"),
    (lambda: AXIStreamSignature(data_width=12), "data_width"),
    (lambda: CSRBankParams(rw_registers=0, ro_registers=0), "rw_registers"),
    (lambda: CSRBankParams(data_width=16), "data_width"),
    (lambda: Register("ctrl", access="wo"), "ctrl.access"),
    (lambda: Register("ctrl", width=8, init=256), "ctrl.init"),
    (lambda: CSRBlock(registers=[Register("a"), Register("a")]), "registers"),
    (lambda: CSRBlock(registers=[Register(f"r{k}") for k in range(5)], addr_width=4), "addr_width"),
    (lambda: SkidBuffer(shape="wide"), "shape"),
])
def test_bad_parameter_names_itself(make, name):
    with pytest.raises(ParameterError) as error:
        make()
    message = str(error.value)
    assert message.startswith(name) and "\n" not in message, message


def test_axi_signatures_have_spec_names():
    sig = AXI4Signature(addr_width=32, data_width=128, id_width=4)
    names = set(sig.members)
    for required in ("awid", "awaddr", "awlen", "awsize", "awburst", "wdata", "wstrb", "wlast",
                     "bid", "bresp", "arid", "araddr", "rid", "rdata", "rresp", "rlast", "rready"):
        assert required in names, required
    assert sig.members["wstrb"].shape == 16 and sig.members["rdata"].flow == wiring.In
    assert "awid" not in AXI4Signature(addr_width=32, data_width=32).members
    axis = AXIStreamSignature(data_width=64, user_width=3)
    assert set(axis.members) == {"tdata", "tkeep", "tlast", "tuser", "tvalid", "tready"}
    assert axis == AXIStreamSignature(data_width=64, user_width=3) != AXIStreamSignature(data_width=64)


def test_params_parse_and_describe():
    assert SkidBufferParams.parse("width", "0x10") == 16
    with pytest.raises(ParameterError, match="width: 'x' is not an integer"):
        SkidBufferParams.parse("width", "x")
    (row,) = SkidBufferParams.describe()
    assert row[0] == "width" and row[1] == 32 and "1..4096" in row[2]


def test_float_parameters_parse_and_validate():
    from scoville.hw.noc.mesh import NoCBenchParams
    assert NoCBenchParams.parse("rate", "0.25") == 0.25 and NoCBenchParams(rate=1).rate == 1.0
    with pytest.raises(ParameterError, match=r"rate: 'abc' is not a number \(accepted: a number in 0.0..1.0\)"):
        NoCBenchParams.parse("rate", "abc")
    with pytest.raises(ParameterError, match=r"rate: 1.5 is out of range"):
        NoCBenchParams(rate=1.5)
    with pytest.raises(ParameterError, match=r"rate: '0.1' is not a number"):
        NoCBenchParams(rate="0.1")
