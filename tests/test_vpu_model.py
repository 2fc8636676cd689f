"""The vector unit's golden model against the real functions it approximates (the accuracy
targets of docs/vpu.md), and its command checks. Pure numpy: no simulator."""

import numpy as np
import pytest

from scoville.hw.vpu.layouts import Fmt, Op, Status
from scoville.verif.vpu_model import VPUModel, accuracy_table, check_command, rshr

ELEMENTWISE = ("GELU", "SILU", "SCALE", "ADD", "MUL", "ROPE", "REQUANT")
ROW_OPS = ("REQUANT_DYN", "SOFTMAX", "SOFTMAX causal", "RMSNORM", "LAYERNORM")


@pytest.fixture(scope="module")
def table():
    # fewer rows than the documented 10 000 (docs/vpu.md gives the command): same bounds
    return accuracy_table(rows=1000)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_within_one_lsb(table, name):
    assert table[name] <= 1.0, f"{name}: {table[name]} LSB"


@pytest.mark.parametrize("name", ROW_OPS)
def test_row_ops_within_two_lsb(table, name):
    assert table[name] <= 2.0, f"{name}: {table[name]} LSB"


def test_rshr_rounds_half_up_and_large_shifts_give_zero():
    assert rshr(np.array([5, -5, 6, -6, 7]), 1).tolist() == [3, -2, 3, -3, 4]
    assert rshr(np.array([1 << 40, -(1 << 40)]), 80).tolist() == [0, 0]
    assert rshr(np.array([-3]), 0).tolist() == [-3]


def test_softmax_rows_sum_to_qmax_and_masks_give_zero():
    rng = np.random.default_rng(3)
    m = VPUModel(lanes=8)
    a = rng.integers(-5000, 5000, size=(6, 40))
    cmd = {"op": Op.SOFTMAX, "n": 40, "rows": 6, "in_fmt": Fmt.INT32.value, "mult_a": 3000,
           "shift_a": 12, "len": 0, "causal": 1}
    status, y, _ = m.run(cmd, a)
    assert status is Status.OK
    assert (y[0] == 0).all(), "row 0 keeps len + 0 = 0 elements: a fully masked row is zeros"
    for r in range(1, 6):
        assert (y[r, r:] == 0).all()
        assert abs(int(y[r].sum()) - 127) <= r, y[r]


@pytest.mark.parametrize("cmd,code", [
    ({"op": 0, "n": 4, "rows": 1}, Status.BAD_OP),
    ({"op": Op.ADD, "n": 4, "rows": 1, "in_fmt": 3}, Status.BAD_FMT),
    ({"op": Op.MUL, "n": 4, "rows": 1, "in_fmt": 2}, Status.BAD_FMT),
    ({"op": Op.SCALE, "n": 0, "rows": 1}, Status.BAD_SIZE),
    ({"op": Op.SOFTMAX, "n": 4097, "rows": 1}, Status.BAD_SIZE),
    ({"op": Op.ARGMAX, "n": 49152, "rows": 1, "in_fmt": 2}, Status.OK),
    ({"op": Op.ROPE, "n": 18, "rows": 1, "halves": 1}, Status.BAD_SIZE),
    ({"op": Op.ROPE, "n": 18, "rows": 1}, Status.OK),
])
def test_command_checks(cmd, code):
    assert check_command(cmd, lanes=8, buffer=4096, channels=2048, rope_max=256) is code
