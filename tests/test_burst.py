"""BurstSplitter: parameter validation, and the cocotb split/timing/flush tests on Verilator."""

import pytest

from conftest import run_block
from scoville.hw.burst import BurstSplitter
from scoville.hw.params import ParameterError


# (data_width, max_beats, boundary, length_width, user_width): a 64-bit bus where both limits
# bite (256-beat bursts, 512 beats per 4 KiB page), the kvdma read/write shape (256-bit, 64
# beats, a 40-bit user tag), and a narrow bus with a non-power-of-two burst limit, a 64-byte
# boundary and short lengths, no user tag.
CONFIGS = [
    (64, 256, 4096, 32, 8),
    (256, 64, 4096, 32, 40),
    (32, 3, 64, 12, 0),
]


@pytest.mark.parametrize("data_width, max_beats, boundary, length_width, user_width", CONFIGS)
def test_burst_splitter(data_width, max_beats, boundary, length_width, user_width):
    run_block("burst_splitter", {"data_width": data_width, "max_beats": max_beats, "boundary": boundary,
                                 "length_width": length_width, "user_width": user_width},
              "scoville.verif.tb_burst")


def test_burst_splitter_seeds():
    for seed in (2, 3):
        run_block("burst_splitter", {"data_width": 32, "max_beats": 3, "boundary": 64, "length_width": 12},
                  "scoville.verif.tb_burst", seed=seed)


def test_burst_splitter_icarus(icarus):
    run_block("burst_splitter", {"data_width": 64, "max_beats": 16, "boundary": 256, "user_width": 4},
              "scoville.verif.tb_burst", sim=icarus, testcase="split_random")


@pytest.mark.parametrize("kwargs, message", [
    ({"max_beats": 257}, "max_beats: 257 is out of range (accepted: an integer in 1..256)"),
    ({"max_beats": 0}, "max_beats: 0 is out of range"),
    ({"boundary": 8192}, "boundary: 8192 is out of range (accepted: a power of two in 1..4096)"),
    ({"boundary": 1000}, "boundary: 1000 is out of range"),
    ({"data_width": 256, "boundary": 16}, "boundary: 16 is less than one beat of 32 bytes"),
    ({"data_width": 48}, "data_width: 48 is out of range"),
    ({"addr_width": 8}, "addr_width: 8 is out of range"),
    ({"user_width": -1}, "user_width: -1 is out of range"),
])
def test_burst_splitter_parameters(kwargs, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BurstSplitter(**kwargs)


def test_burst_splitter_ports():
    s = BurstSplitter(addr_width=24, data_width=128, max_beats=64, length_width=20, user_width=5)
    s._MustUse__silence = True      # signature only, never elaborated
    assert (s.i.payload.addr.shape().width, s.i.payload.length.shape().width, s.i.payload.user.shape().width) == (24, 20, 5)
    assert (s.o.payload.addr.shape().width, s.o.payload.beats.shape().width) == (24, 7)
    assert s.beat_bytes == 16 and s.boundary == 4096 and s.max_beats == 64
