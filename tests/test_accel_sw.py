"""The accelerator's software (scoville.sim.accel): assembler and disassembler, HBM allocator
and the functional machine model, against the golden models of the units. Pure Python."""

import random

import numpy as np
import pytest

from scoville.hw.accel.isa import (ADDR_BITS, INSTR_BYTES, ErrCode, Instr, LoadPort, Opcode,
                                   StorePort, Unit)
from scoville.hw.gemm import Op as GemmOp, QParam
from scoville.hw.kvdma.descriptors import Op as KvOp, pack_descriptor
from scoville.hw.params import ParameterError
from scoville.hw.vpu.layouts import ChannelParam, Fmt, Op as VpuOp
from scoville.sim.accel import asm
from scoville.sim.accel.alloc import AllocationError, HBMAllocator
from scoville.sim.accel.config import TileConfig

CFG = TileConfig(hbm_bytes=1 << 20, channel_shift=19)


# ---- assembler ---------------------------------------------------------------------------------

MAX_ADDR = (1 << ADDR_BITS) - 32

#: (function, arguments) covering every opcode and every field at its extremes.
EVERY = [
    (asm.load, dict(port="gemm_a", addr=0, rows=1, row_bytes=1, stride=0, beat_log2=0)),
    (asm.load, dict(port=LoadPort.VPU_P, addr=MAX_ADDR, rows=65535, row_bytes=(1 << 24) - 1,
                    stride=(1 << 32) - 32, beat_log2=6, iter_stride=-(1 << 31))),
    (asm.load, dict(port="vpu_b", addr=0x40, rows=1, row_bytes=(1 << 24) - 1, stride=0, beat_log2=3,
                    iter_stride=(1 << 31) - 32)),
    (asm.store, dict(port="gemm_c", addr=0x1000, rows=2, row_bytes=32, stride=32, beat_log2=4)),
    (asm.store, dict(port=StorePort.VPU_S, addr=MAX_ADDR, rows=65535, row_bytes=8, stride=32,
                     beat_log2=3, iter_stride=-32)),
    *[(asm.gemm, dict(op=op, m=65535, k=65535, n=65535, accumulate=True, bias=True, requant=True))
      for op in GemmOp],
    (asm.gemm, dict(op="compute", m=1, k=1, n=1)),
    (asm.gemm, dict(op=0)),             # undefined engine opcodes travel as they are
    (asm.gemm, dict(op=7, m=3)),
    *[(asm.vpu, dict(op=op, n=65535, rows=65535, in_fmt=Fmt.INT32, out_fmt="int16", causal=True,
                     halves=True, len=65535, mult_a=-32768, shift_a=63, mult_b=32767, shift_b=63))
      for op in VpuOp],
    (asm.vpu, dict(op=31, n=1, rows=1, in_fmt=3, out_fmt=3)),
    (asm.kv, dict(descriptor=pack_descriptor(KvOp.GATHER, pool=3, flags=0x1F, layer0=255, layers=0,
                                             count=(1 << 32) - 1, a=1, b=2, c=3, d=4, e=5, status=8))),
    (asm.kv, dict(op="copy", count=64, a=0x100, b=0x200)),
    (asm.kv, dict(descriptor=(1 << 256) - 1)),
    (asm.signal, dict(sem=0, count=0)),
    (asm.signal, dict(sem=15, count=255)),
    (asm.wait, dict(sem=15, count=255, timeout=(1 << 32) - 1)),
    (asm.wait, dict(sem=0, count=1, timeout=0)),
    (asm.fence, dict(units=0)),
    (asm.fence, dict(units=Unit.LOAD | Unit.STORE | Unit.GEMM | Unit.VPU | Unit.KV)),
    (asm.fence, dict(units="gemm|kv")),
    (asm.repeat, dict(count=0, length=1)),
    (asm.nop, {}),
    (asm.end, {}),
]


@pytest.mark.parametrize("fn,args", EVERY, ids=lambda v: getattr(v, "__name__", ""))
def test_every_instruction_round_trips(fn, args):
    words = fn(**args)
    assert len(words) == (2 if fn is asm.kv else 1)
    assert all(0 <= w < 1 << 256 for w in words)
    body = asm.nop() if fn is asm.repeat else []        # a REPEAT needs its body
    # words -> bytes -> words, and the opcode is the low byte of each little-endian word
    blob = asm.to_bytes(words)
    assert len(blob) == INSTR_BYTES * len(words) and blob[0] == asm.decode(words)[0][1].op
    assert asm.from_bytes(blob) == words
    # words -> text -> words (one line, not a raw word)
    text = asm.disassemble(words + body)
    assert text.count("\n") == 1 + len(body) and "word" not in text, text
    assert asm.assemble(text) == words + body
    # the decoded fields are the ones given
    (_, ins), = asm.decode(words + body)[:1]
    for name, value in args.items():
        if name == "descriptor":
            assert asm.pack(asm._KV_DESC, ins.fields) == value
        elif isinstance(value, str) and name in ("units",):
            continue
        elif isinstance(value, (int, bool)):
            assert ins.fields[name] == int(value), name
        elif hasattr(value, "value"):
            assert ins.fields[name] == value.value, name


def test_repeat_extremes_and_the_longest_body():
    words = asm.repeat(65535, 4095) + asm.nop() * 4095
    assert asm.assemble(asm.disassemble(words)) == words
    assert asm.decode(words)[0][1].fields == {"count": 65535, "length": 4095}


def test_brief_example_text_and_api_agree():
    text = "load gemm_b addr=0x1000 rows=16 row_bytes=16 stride=32 beat=16\n"
    words = asm.assemble(text)
    assert words == asm.load("gemm_b", 0x1000, 16, 16, 32, 4)
    assert asm.disassemble(words) == text
    assert asm.assemble("LOAD GEMM_B addr=4096 rows=16 row_bytes=16 stride=32 beat_log2=4  # comment") == words


def test_words_pack_through_the_isa_layouts():
    from amaranth.lib import data
    w, = asm.load("vpu_a", addr=0x2000, rows=3, row_bytes=40, stride=64, beat_log2=3, iter_stride=-64)
    view = data.Const(Instr, w)
    assert view.op == Opcode.LOAD.value
    mv = view.body.move
    assert (mv.port, mv.addr, mv.rows, mv.row_bytes, mv.stride, mv.beat_log2, mv.iter_stride) == \
        (LoadPort.VPU_A.value, 0x2000, 3, 40, 64, 3, -64)


def test_any_word_list_round_trips_through_text():
    rng = random.Random(5)
    ops = [o.value for o in Opcode] + [0, 12, 255]
    words = []
    for _ in range(300):
        w = rng.getrandbits(256)
        if rng.random() < 0.5:          # mostly-canonical words: only the body's low bits random
            w &= (1 << rng.choice([16, 40, 72, 136, 256])) - 1
        words.append((w & ~0xFF) | rng.choice(ops))
    text = asm.disassemble(words)
    assert asm.assemble(text) == words
    assert "word " in text and "# reserved bits set" in text


def test_program_builder_addresses_loop_and_text():
    p = asm.Program(base=0x400, config=CFG)
    assert p.nop() == 0x400
    with p.loop(3) as at:
        assert at == 0x420
        p.load("vpu_a", addr=0, rows=1, row_bytes=8, stride=0, beat_log2=3, iter_stride=32)
        p.kv(op="fence")
    assert p.end() == 0x4A0
    words = p.words
    assert asm.decode(words, base=0x400)[1] == (0x420, asm.decode(words)[1][1])
    assert asm.decode(words)[1][1].fields == {"count": 3, "length": 3}
    assert asm.assemble(p.text(), base=0x400) == words
    assert "0x00420:  repeat count=3 length=3" in asm.disassemble(words, base=0x400, addresses=True)


@pytest.mark.parametrize("call,message", [
    (lambda: asm.load("gemm_a", 0, 0, 16, 32, 4), "rows: 0 is out of range (accepted: an integer in 1..65535)"),
    (lambda: asm.load("gemm_a", 0, 2, 64, 32, 4), "row_bytes: 64 is out of range (accepted: an integer in 1..32, the stride, when rows > 1)"),
    (lambda: asm.load("gemm_a", 0, 1, 0, 32, 4), "row_bytes: 0 is out of range"),
    (lambda: asm.load("gemm_a", 0x1010, 1, 16, 32, 4), "addr: 0x1010 is not a multiple of 32"),
    (lambda: asm.store("gemm_c", 0, 2, 16, 48, 4), "stride: 48 is not a multiple of 32"),
    (lambda: asm.load("gemm_a", 0, 1, 16, 32, 7), "beat_log2: 7 is out of range (accepted: an integer in 0..6)"),
    (lambda: asm.load("gemm_c", 0, 1, 16, 32, 4), "port: 'gemm_c' is not accepted (accepted: one of gemm_a, gemm_b, gemm_q, vpu_a, vpu_b, vpu_p)"),
    (lambda: asm.store(7, 0, 1, 16, 32, 4), "port: 7 is not accepted (accepted: one of gemm_c, vpu_y, vpu_s)"),
    (lambda: asm.load("gemm_a", 0, 1, 16, 32, 4, iter_stride=16), "iter_stride: 16 is not a multiple of 32"),
    (lambda: asm.load("gemm_a", 0, 70000, 16, 32, 4), "rows: 70000 is out of range (accepted: an integer in 0..65535)"),
    (lambda: asm.load("gemm_a", 1 << 40, 1, 16, 32, 4), "addr: 1099511627776 is out of range"),
    (lambda: asm.load("gemm_a", 0, 1, 16, 32, 3, config=CFG), "beat: 8 is not a beat of port gemm_a (accepted: 16 bytes)"),
    (lambda: asm.store("gemm_c", 0, 1, 16, 32, 5, config=CFG), "beat: 32 is not a beat of port gemm_c (accepted: 16 or 64 bytes)"),
    (lambda: asm.gemm("compute", m=65536), "m: 65536 is out of range (accepted: an integer in 0..65535)"),
    (lambda: asm.gemm("multiply"), "op: 'multiply' is not accepted (accepted: one of load_a, load_b, load_q, compute, store)"),
    (lambda: asm.vpu("silu", n=4, rows=1, shift_a=64), "shift_a: 64 is out of range (accepted: an integer in 0..63)"),
    (lambda: asm.vpu("silu", n=4, rows=1, mult_a=40000), "mult_a: 40000 is out of range (accepted: an integer in -32768..32767)"),
    (lambda: asm.signal(16, 1), "sem: 16 is out of range (accepted: an integer in 0..15)"),
    (lambda: asm.wait(0, 256), "count: 256 is out of range (accepted: an integer in 0..255)"),
    (lambda: asm.fence("load|dma"), "units: 'dma' is not accepted (accepted: names among load, store, gemm, vpu, kv)"),
    (lambda: asm.repeat(1, 0), "length: 0 is out of range (accepted: an integer in 1..4095)"),
    (lambda: asm.repeat(1, 4096), "length: 4096 is out of range (accepted: an integer in 0..4095)"),
    (lambda: asm.kv(op="gather", pool=16), "pool: 16 is out of range (accepted: an integer in 0..15)"),
    (lambda: asm.encode("load", port="gemm_a", bogus=1), "bogus: not a field of load (accepted: port, addr"),
])
def test_validation_messages_name_the_field_and_its_range(call, message):
    with pytest.raises(ParameterError) as e:
        call()
    text = str(e.value)
    assert message in text and "\n" not in text, text


@pytest.mark.parametrize("text,message", [
    ("nop\nload gemm_a addr=0 rows=0 row_bytes=16 stride=32 beat=16\n",
     "line 2: load: rows: 0 is out of range (accepted: an integer in 1..65535)"),
    ("jump 4\n", "line 1: 'jump' is not an instruction (accepted: one of end, load"),
    ("load gemm_a addr=0 rows=1 row_bytes=16 stride=32 beat=24\n", "line 1: beat: 24 is not a power of two"),
    ("gemm compute m=x\n", "line 1: m: 'x' is not a number"),
    ("repeat count=2 length=2\nrepeat count=2 length=1\nnop\n",
     "line 2: repeat: inside the body of the REPEAT at 0x0 (accepted: no REPEAT in a REPEAT body)"),
    ("repeat count=2 length=1\nkv fence\n", "line 2: kv: its descriptor would be outside the body of the REPEAT at 0x0"),
    ("repeat count=2 length=3\nnop\n", "repeat: the body of the REPEAT at 0x0 runs past the end of the program"),
    ("nop extra\n", "line 1: 'extra': expected name=value"),
])
def test_text_errors_name_the_line(text, message):
    with pytest.raises(ParameterError) as e:
        asm.assemble(text)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_check_false_keeps_only_the_field_widths():
    words = asm.assemble("load gemm_a addr=0x10 rows=0 row_bytes=0 stride=3 beat_log2=7\nrepeat count=1 length=0\n",
                         check=False)
    assert len(words) == 2
    # the disassembler shows what the assembler would refuse as raw words, with the reason
    text = asm.disassemble(words)
    assert text.splitlines()[0].startswith("word ") and "load: port" not in text and "rows: 0" not in text
    assert "beat_log2: 7" in text and "length: 0" in text
    assert asm.assemble(text) == words
    with pytest.raises(ParameterError, match="rows: 70000"):
        asm.load("gemm_a", 0, 70000, 1, 0, 0, check=False)


def test_bytes_must_be_whole_words():
    with pytest.raises(ParameterError, match="bytes: 33 is not a multiple of 32"):
        asm.from_bytes(bytes(33))


# ---- allocator ---------------------------------------------------------------------------------

def test_allocator_alignment_and_padding():
    a = HBMAllocator(1 << 16)
    r1 = a.alloc("x", 1)
    r2 = a.alloc("y", 40, align=256)
    r3 = a.alloc("z", 8, align=4)           # below an atom: raised to 32
    assert (r1.addr, r2.addr % 256, r3.align, r3.addr % 32) == (0, 0, 32, 0)
    assert r3.addr == 32, "x occupies one whole atom"
    m = a.matrix("m", 5, 20)
    assert (m.stride, m.size, m.row(4)) == (32, 160, m.addr + 128)
    assert len({r1.addr, r2.addr, r3.addr, m.addr}) == 4
    spans = sorted((r.addr, r.addr + -(-r.size // 32) * 32) for r in a)
    assert all(e <= s for (_, e), (s, _) in zip(spans, spans[1:])), "regions overlap"
    with pytest.raises(ParameterError, match="align: 48 is out of range .*power of two"):
        a.alloc("w", 8, align=48)


def test_allocator_refuses_when_full_and_reuses_freed_space():
    a = HBMAllocator(1024)
    a.alloc("a", 512)
    b = a.alloc("b", 256)
    with pytest.raises(AllocationError) as e:
        a.alloc("c", 512)
    msg = str(e.value)
    assert msg.startswith("'c': 512 bytes (align 32) do not fit") and "largest free block 256 bytes" in msg
    assert "256 bytes free there" in msg and "\n" not in msg
    a.free("b")
    assert a.alloc("c", 512).addr == b.addr
    with pytest.raises(AllocationError, match="'c': already allocated"):
        a.alloc("c", 32)
    with pytest.raises(AllocationError, match="'nope': no such region"):
        a.free("nope")


def test_allocator_channel_affinity_and_spread():
    a = HBMAllocator(4 << 12, channel_shift=12)         # 4 channels of 4 KiB
    assert a.channels == 4 and a.window(2) == [0x2000, 0x3000]
    r = a.alloc("w2", 1000, channel=2)
    assert r.channel == 2 and 0x2000 <= r.addr and r.end <= 0x3000
    assert a.channel_of(r.addr) == 2
    a.alloc("fill0", 4096, channel=0)
    r = a.alloc("any", 100)             # channel 0 is full: the first channel that fits
    assert r.channel == 1
    with pytest.raises(AllocationError, match="do not fit channel 0"):
        a.alloc("more0", 32, channel=0)
    with pytest.raises(AllocationError, match="needs channel='spread'"):
        a.alloc("huge", 5000)
    # channel 0 is full, so a spread fails as a whole and leaves nothing behind
    before = a.free_bytes()
    with pytest.raises(AllocationError, match=r"'act\[0\]': 192 bytes"):
        a.matrix("act", 10, 40, channel="spread")
    assert a.free_bytes() == before and "act" not in a
    a.free("fill0")
    free_before = a.free_bytes()
    s = a.matrix("act2", 10, 40, channel="spread")
    assert [p.channel for p in s.parts] == [0, 1, 2, 3] and [p.rows for p in s.parts] == [3, 3, 3, 1]
    assert s.row(4) == s.parts[1].addr + 64 and s.parts[3].first_row == 9
    assert all(a.window(p.channel)[0] <= p.addr < a.window(p.channel)[1] for p in s.parts)
    a.free(s)
    assert a.free_bytes() == free_before
    big = a.alloc("big", 8000, channel="spread")
    assert [p.size for p in big.parts] == [2016, 2016, 2016, 1952]


def test_allocator_reserve_and_config():
    a = HBMAllocator.for_config(CFG)
    assert (a.channels, a.capacity) == (2, 1 << 20)
    prog = a.reserve("prog", 0, 4096)
    assert a.alloc("x", 32).addr == 4096 and prog.channel == 0
    with pytest.raises(AllocationError, match="is not free in one channel"):
        a.reserve("again", 0, 32)
