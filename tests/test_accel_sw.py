"""The accelerator's software (scoville.sim.accel): assembler and disassembler, HBM allocator
and the functional machine model, against the golden models of the units. Pure Python."""

import random
import time
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.lib import data

from scoville.hw.accel.isa import (ADDR_BITS, INSTR_BYTES, ErrCode, Instr, LoadPort, Opcode,
                                   StorePort, Unit)
from scoville.hw.gemm import GEMMParams, Op as GemmOp, QParam
from scoville.hw.kvdma.descriptors import Err as KvErr, Op as KvOp, pack_descriptor, status_word
from scoville.hw.params import ParameterError
from scoville.hw.vpu.layouts import ChannelParam, Fmt, Op as VpuOp
from scoville.hw.vpu.vpu import VPUParams
from scoville.sim.accel import asm
from scoville.sim.accel.alloc import AllocationError, HBMAllocator
from scoville.sim.accel.compiler import Graph, compile
from scoville.sim.accel.config import TileConfig
from scoville.sim.accel.model import CycleModel, GemmEngine, Machine, Memory, run_program
from scoville.sim.accel.runtime import run
from scoville.sim.accel.timing import Timing
from scoville.verif.gemm_model import gemm_ref, requant_ref
from scoville.verif.vpu_model import VPUModel, reference

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
            assert asm.pack(asm.KV_LAYOUT, ins.fields) == value
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


# ---- machine model -----------------------------------------------------------------------------

T = CFG.gemm.rows           # the 16 x 16 array
LANES = CFG.vpu.lanes


def _qparams(bias, mult, shift):
    return b"".join(asm.pack(QParam, {"bias": int(b), "mult": int(m), "shift": int(s)}).to_bytes(8, "little")
                    for b, m, s in zip(bias, mult, shift))


def _noisy_machine(seed, **kw):
    """A machine whose HBM holds random bytes (so padding and guards are not zeros)."""
    m = Machine(CFG, **kw)
    m.memory.data[:] = np.random.default_rng(seed).integers(0, 256, len(m.memory.data), dtype=np.uint8)
    return m


def _unchanged_outside(before, after, windows):
    """Bytes outside ``windows`` ([(addr, rows, row_bytes, stride)]) are as they were."""
    keep = np.ones(len(before), bool)
    for addr, rows, rb, stride in windows:
        for r in range(rows):
            keep[addr + r * stride:addr + r * stride + rb] = False
    return bool((before[keep] == after[keep]).all())


@pytest.mark.parametrize("M,K,N,requant", [(20, 40, 36, True), (5, 17, 33, True), (33, 16, 7, False)])
def test_gemm_tiled_by_hand_matches_the_golden_model(M, K, N, requant):
    rng = np.random.default_rng(M * K * N)
    A, B = rng.integers(-128, 128, (M, K)), rng.integers(-128, 128, (K, N))
    bias, mult, shift = rng.integers(-5000, 5000, N), rng.integers(1, 1 << 14, N), rng.integers(10, 20, N)
    kt_n, nt_n, mt_n = -(-K // T), -(-N // T), -(-M // T)
    # every 16-wide tile of a row in its own 32-byte slot, so each tile's window is aligned;
    # the rest of each slot is garbage (the random background), which the engine must ignore
    a_stride, b_stride = kt_n * 32, nt_n * 32
    c_slot = 32 if requant else 64
    c_stride = nt_n * c_slot
    alloc = HBMAllocator.for_config(CFG)
    prog, a_r, b_r = alloc.alloc("prog", 16384), alloc.matrix("A", M, a_stride), alloc.matrix("B", K, b_stride)
    q_r, c_r = alloc.alloc("Q", 8 * N), alloc.matrix("C", M, c_stride)
    m = _noisy_machine(1)
    mem = m.memory
    for X, r, tiles, stride in ((A, a_r, kt_n, a_stride), (B, b_r, nt_n, b_stride)):
        for i in range(X.shape[0]):
            for t in range(tiles):
                mem.write(r.addr + i * stride + 32 * t, X[i, t * T:(t + 1) * T].astype(np.int8).tobytes())
    mem.write(q_r.addr, _qparams(bias, mult, shift))

    p = asm.Program(base=prog.addr, config=CFG)
    out_windows = []
    for mt in range(mt_n):
        mm = min(T, M - mt * T)
        for nt in range(nt_n):
            nn = min(T, N - nt * T)
            for kt in range(kt_n):
                kk = min(T, K - kt * T)
                # whole 16-byte beats: lanes past K come from the garbage and must not count
                p.load("gemm_a", addr=a_r.addr + mt * T * a_stride + 32 * kt, rows=mm, row_bytes=16,
                       stride=a_stride, beat_log2=4)
                p.gemm("load_a", m=mm, k=kk)
                p.load("gemm_b", addr=b_r.addr + kt * T * b_stride + 32 * nt, rows=kk, row_bytes=16,
                       stride=b_stride, beat_log2=4)
                p.gemm("load_b", k=kk, n=nn)
                p.gemm("compute", m=mm, k=kk, n=nn, accumulate=kt > 0)
            p.load("gemm_q", addr=q_r.addr + 8 * T * nt, rows=1, row_bytes=8 * nn, stride=0, beat_log2=3)
            p.gemm("load_q", n=nn)
            p.gemm("store", m=mm, n=nn, bias=True, requant=requant)
            window = (c_r.addr + mt * T * c_stride + c_slot * nt, mm, nn if requant else 4 * nn, c_stride)
            p.store("gemm_c", addr=window[0], rows=mm, row_bytes=window[2], stride=c_stride,
                    beat_log2=4 if requant else 6)
            out_windows.append(window)
    p.end()
    m.load(prog.addr, p.words)
    before = mem.data.copy()
    res, = m.run(prog.addr)
    assert res.ok and res.retired == len(p) - 1 and not res.leftover and not res.hazards, res

    want = requant_ref(gemm_ref(A, B), bias, mult, shift, bias_en=True, requant_en=requant)
    dtype = np.dtype(np.int8 if requant else "<i4")
    got = np.zeros((M, N), np.int64)
    for i in range(M):
        for t in range(nt_n):
            nn = min(T, N - t * T)
            got[i, t * T:t * T + nn] = mem.read(c_r.addr + i * c_stride + c_slot * t, nn * dtype.itemsize).view(dtype)
    assert (got == want).all()
    # guard bytes: nothing outside the C windows (and the program) changed
    assert _unchanged_outside(before, mem.data, out_windows)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_gemm_engine_buffers_word_for_word(dataflow):
    """The engine model alone: accumulation, and C lanes past N keep what they held."""
    R = C = 4
    eng = GemmEngine(GEMMParams(rows=R, cols=C, dataflow=dataflow, a_depth=64, b_depth=64, c_depth=64, max_n=8))
    rng = np.random.default_rng(7)
    A, B, A2 = rng.integers(-128, 128, (6, 5)), rng.integers(-128, 128, (5, 6)), rng.integers(-128, 128, (6, 5))
    queues = {}

    def take(port, n):
        got = queues[port][:n]
        del queues[port][:n]
        assert len(got) == n
        return got
        yield

    out = []

    def words_of(X, lanes):
        rows = -(-X.shape[1] // lanes)
        pad = np.zeros((X.shape[0], rows * lanes), np.int8)
        pad[:, :X.shape[1]] = X
        return [bytes(w) for w in pad.reshape(-1, lanes).view(np.uint8)]

    def run(**f):
        f = {"m": 0, "k": 0, "n": 0, "accumulate": 0, "bias": 0, "requant": 0, **f}
        f["op"] = getattr(f["op"], "value", f["op"])          # the engine takes raw fields
        gen = eng.run(f, take, lambda port, words: out.extend(words))
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            return stop.value

    def load_a(X):
        queues[LoadPort.GEMM_A] = words_of(X if dataflow == "ws" else X.T, R)
        assert run(op=GemmOp.LOAD_A, m=6, k=5).name == "OK"

    load_a(A)
    queues[LoadPort.GEMM_B] = words_of(B, C)
    run(op=GemmOp.LOAD_B, k=5, n=6)
    run(op=GemmOp.COMPUTE, m=6, k=5, n=6)
    load_a(A2)
    run(op=GemmOp.COMPUTE, m=6, k=5, n=6, accumulate=1)
    want = gemm_ref(A2, B, gemm_ref(A, B), accumulate=True)
    assert (eng.c[:12].reshape(6, 8)[:, :6] == want).all()
    old = eng.c.copy()
    queues[LoadPort.GEMM_B] = words_of(B[:, :3], C)
    run(op=GemmOp.LOAD_B, k=5, n=3)
    run(op=GemmOp.COMPUTE, m=6, k=5, n=3)   # N = 3: one word a row, lane 3 of each left alone
    assert (eng.c[:6, :3] == gemm_ref(A2, B)[:, :3]).all()
    assert (eng.c[:6, 3] == old[:6, 3]).all() and (eng.c[6:] == old[6:]).all()
    assert run(op=GemmOp.STORE, m=6, n=6).name == "OK" and len(out) == 12
    assert run(op=GemmOp.COMPUTE, m=6, k=5, n=100).name == "BAD_SIZE"
    assert run(op=6).name == "BAD_OP"


VPU_CASES = [
    ("silu", dict(mult_a=64, shift_a=0, mult_b=1, shift_b=6), Fmt.INT8, (-128, 128), 1.0),
    ("rmsnorm", dict(mult_b=1, shift_b=4), Fmt.INT16, (-3000, 3000), 2.0),
    ("softmax", dict(mult_a=3000, shift_a=12, len=3, causal=True), Fmt.INT32, (-20000, 20000), 2.0),
]


@pytest.mark.parametrize("op,fields,in_fmt,span,lsb", VPU_CASES, ids=[c[0] for c in VPU_CASES])
def test_vpu_op_matches_the_golden_model(op, fields, in_fmt, span, lsb):
    rng = np.random.default_rng(3)
    rows, n = 5, 45                         # n not a multiple of the lanes: a ragged last beat
    w = {Fmt.INT8: 1, Fmt.INT16: 2, Fmt.INT32: 4}[in_fmt]
    x = rng.integers(*span, (rows, n))
    params = np.stack([rng.integers(-8, 8, n), rng.integers(1 << 10, 1 << 11, n), np.full(n, 2)], axis=1)
    m = _noisy_machine(4)
    mem = m.memory
    x_at, y_at, p_at, s_at, stride = 0x10000, 0x20000, 0x30000, 0x40000, 256
    for r in range(rows):
        mem.write(x_at + r * stride, x[r].astype(f"<i{w}").tobytes())
    mem.write(p_at, b"".join(asm.pack(ChannelParam, {"offset": int(o), "mult": int(mu), "shift": int(s)})
                             .to_bytes(8, "little") for o, mu, s in params))
    cmd = dict(op=op, n=n, rows=rows, in_fmt=in_fmt, out_fmt=Fmt.INT8, **fields)
    p = asm.Program(config=CFG)
    if op == "rmsnorm":
        p.load("vpu_p", addr=p_at, rows=1, row_bytes=8 * n, stride=0, beat_log2=3)
        p.vpu("load_p", n=n, rows=1)
    p.load("vpu_a", addr=x_at, rows=rows, row_bytes=w * n, stride=stride, beat_log2=(LANES * w).bit_length() - 1)
    p.vpu(**cmd)
    p.store("vpu_y", addr=y_at, rows=rows, row_bytes=n, stride=stride, beat_log2=LANES.bit_length() - 1)
    p.load("vpu_a", addr=x_at, rows=rows, row_bytes=w * n, stride=stride, beat_log2=(LANES * w).bit_length() - 1)
    p.vpu("argmax", n=n, rows=rows, in_fmt=in_fmt)
    p.store("vpu_s", addr=s_at, rows=rows, row_bytes=8, stride=32, beat_log2=3)
    p.end()
    m.load(0, p.words)
    before = mem.data.copy()
    res, = m.run(0)
    assert res.ok and not res.leftover, res

    y = np.stack([mem.read(y_at + r * stride, n).view(np.int8) for r in range(rows)]).astype(np.int64)
    model = VPUModel(lanes=LANES, buffer=CFG.vpu.buffer, channels=CFG.vpu.channels)
    model.run({"op": VpuOp.LOAD_P, "n": n, "rows": 1}, p=params)
    golden = {k: (v.value if hasattr(v, "value") else int(v)) for k, v in cmd.items() if k != "op"}
    golden["op"] = VpuOp[op.upper()]
    status, want, _ = model.run(golden, x)
    assert (y == want).all(), "bit-exact with verif.vpu_model"
    ref = np.clip(reference(golden, x, params=params), -128, 127)
    assert np.abs(y - ref).max() <= lsb
    s = np.stack([mem.read(s_at + 32 * r, 8).view("<i4") for r in range(rows)])
    assert (s[:, 0] == x.max(axis=1)).all() and (s[:, 1] == x.argmax(axis=1)).all()
    assert _unchanged_outside(before, mem.data, [(y_at, rows, n, stride), (s_at, rows, 8, 32)])


def test_repeat_with_iter_stride_and_a_skipped_body():
    rng = np.random.default_rng(8)
    blocks, rows, n, stride = 4, 3, 20, 32
    x = rng.integers(-128, 128, (blocks * rows, n))
    m = _noisy_machine(9)
    x_at, y_at = 0x8000, 0x9000
    for r in range(blocks * rows):
        m.memory.write(x_at + r * stride, x[r].astype(np.int8).tobytes())
    p = asm.Program(config=CFG)
    with p.loop(blocks):
        p.load("vpu_a", addr=x_at, rows=rows, row_bytes=n, stride=stride, beat_log2=3, iter_stride=rows * stride)
        p.vpu("scale", n=n, rows=rows, mult_a=3, shift_a=1)
        # blocks land in reverse order: a negative iteration stride
        p.store("vpu_y", addr=y_at + (blocks - 1) * rows * stride, rows=rows, row_bytes=n, stride=stride,
                beat_log2=3, iter_stride=-rows * stride)
    p.repeat(0, 2)                      # skipped: the two undefined words never run
    p.word(0)
    p.word(0)
    p.end()
    m.load(0, p.words)
    before = m.memory.data.copy()
    res, = m.run(0)
    assert res.ok and res.retired == 1 + blocks * 3 + 1, res   # END is not counted
    model = VPUModel(lanes=LANES)
    for b in range(blocks):
        _, want, _ = model.run({"op": VpuOp.SCALE, "n": n, "rows": rows, "mult_a": 3, "shift_a": 1},
                               x[b * rows:(b + 1) * rows])
        at = y_at + (blocks - 1 - b) * rows * stride
        got = np.stack([m.memory.read(at + r * stride, n).view(np.int8) for r in range(rows)])
        assert (got == want).all(), b
    assert _unchanged_outside(before, m.memory.data, [(y_at, blocks * rows, n, stride)])


def _scale_program(base, src, dst, *, sem_wait=None, sem_signal=None, fence=True, barrier=None):
    """LOAD rows of int8 at src, SCALE them by 2, STORE at dst; optional WAIT before, SIGNAL
    after (with a FENCE on the store), and a two-tile barrier at the end."""
    p = asm.Program(base=base, config=CFG)
    if sem_wait is not None:
        p.wait(sem_wait, 1, timeout=0)
    p.load("vpu_a", addr=src, rows=2, row_bytes=24, stride=32, beat_log2=3)
    p.vpu("scale", n=24, rows=2, mult_a=2)
    p.store("vpu_y", addr=dst, rows=2, row_bytes=24, stride=32, beat_log2=3)
    if fence:
        p.fence("store")
    if sem_signal is not None:
        p.signal(sem_signal, 1)
    if barrier is not None:
        mine, theirs = barrier
        p.signal(mine, 1)
        p.wait(theirs, 1, timeout=1000)
    p.end()
    return p


@pytest.mark.parametrize("fence", [True, False])
def test_two_tiles_synchronise_through_semaphores(fence):
    m = Machine(CFG, tiles=2)
    x = np.arange(48).reshape(2, 24) - 20
    for r in range(2):
        m.memory.write(0x4000 + 32 * r, x[r].astype(np.int8).tobytes())
    # tile 0 consumes what tile 1 produces; tile 0 steps first, so it must wait
    consumer = _scale_program(0x0, 0x5000, 0x6000, sem_wait=0, barrier=(2, 3))
    producer = _scale_program(0x1000, 0x4000, 0x5000, sem_signal=0, fence=fence, barrier=(3, 2))
    m.load(0x0, consumer.words)
    m.load(0x1000, producer.words)
    results = m.run([0x0, 0x1000])
    assert [r.state for r in results] == ["done", "done"], results
    got = np.stack([m.memory.read(0x6000 + 32 * r, 24).view(np.int8) for r in range(2)])
    assert (got == x * 4).all()
    assert m.semaphores == [0] * 16
    if fence:
        assert not results[0].hazards
    else:
        h, = results[0].hazards
        assert h == ("LOAD at 0x20 reads 0x5000, written by the STORE at 0x1040 of tile 1 "
                     "with no FENCE store since"), h


def test_a_barrier_never_met_times_out_and_one_without_timeout_hangs():
    m = Machine(CFG, tiles=2)
    p0 = asm.Program(config=CFG)
    p0.signal(0, 1)
    at0 = p0.wait(1, 2, timeout=50)         # tile 1 posts only once
    p0.end()
    p1 = asm.Program(base=0x400, config=CFG)
    p1.signal(1, 1)
    at1 = p1.wait(0, 2, timeout=0)          # waits for ever
    p1.end()
    m.load(0, p0.words)
    m.load(0x400, p1.words)
    r0, r1 = m.run([0, 0x400])
    assert (r0.state, r0.err_code, r0.err_pc) == ("error", ErrCode.TIMEOUT, at0)
    assert r1.state == "hung" and r1.hung == f"WAIT at {at1:#x}: semaphore 0 = 1 < 2"
    r1 = m.abort(1)
    assert (r1.state, r1.err_code, r1.err_pc) == ("error", ErrCode.ABORT, at1)


def _errors_cases():
    """name -> (instructions, expected ErrCode, index of the faulting instruction (or an
    address), memory error ranges, program base)."""
    hbm = CFG.hbm_bytes
    nop, end = ("nop", (), {}), ("end", (), {})
    return {
        "opcode 0": ([nop, ("word", (0,), {})], ErrCode.BAD_OPCODE, 1, (), 0),
        "opcode 12": ([("word", (12,), {})], ErrCode.BAD_OPCODE, 0, (), 0),
        "rows 0": ([nop, ("load", ("gemm_a", 0x8000, 0, 16, 32, 4), {})], ErrCode.BAD_OPERAND, 1, (), 0),
        "beat of another port": ([("load", ("gemm_a", 0x8000, 1, 16, 32, 3), {})], ErrCode.BAD_OPERAND, 0, (), 0),
        "row_bytes > stride": ([("store", ("vpu_y", 0x8000, 2, 64, 32, 3), {})], ErrCode.BAD_OPERAND, 0, (), 0),
        "nested repeat": ([("repeat", (2, 2), {}), ("repeat", (2, 1), {}), nop], ErrCode.BAD_OPERAND, 1, (), 0),
        "repeat length 0": ([("repeat", (2, 0), {})], ErrCode.BAD_OPERAND, 0, (), 0),
        "fetch past the HBM": ([nop, nop], ErrCode.FETCH, hbm, (), hbm - 64),
        "fetch error": ([nop, end], ErrCode.FETCH, 1, [(0x20, 0x21)], 0),
        # the status follows the last beat: the unit must take them
        "load error": ([("load", ("vpu_a", 0x8000, 4, 64, 64, 3), {}), ("vpu", ("sum",), {"n": 64, "rows": 4}),
                        end], ErrCode.LOAD, 0,
                       [(0x8000 + 3 * 64 + 40, 0x8000 + 3 * 64 + 41)], 0),
        # the effective address is checked: iteration 1's 0x8010 is refused before any access
        "unaligned iteration": ([("repeat", (2, 2), {}), ("load", ("gemm_q", 0x8000, 1, 8, 0, 3), {"iter_stride": 16}),
                                 ("gemm", ("load_q",), {"n": 1})], ErrCode.BAD_OPERAND, 1, (), 0),
        # the KV is the body's last word: its descriptor would be outside the body (no wrap)
        "kv ending a body": ([("repeat", (2, 1), {}), ("kv", (), {"op": "copy", "count": 8, "a": 0x8000,
                                                                   "b": 0x9000, "status": 0xA000}), end],
                             ErrCode.BAD_OPERAND, 1, (), 0),
        "store error": ([("load", ("vpu_a", 0x8000, 1, 8, 0, 3), {}),
                         ("vpu", ("scale",), {"n": 8, "rows": 1, "mult_a": 1}),
                         ("store", ("vpu_y", 0x9000, 1, 8, 0, 3), {})], ErrCode.STORE, 2, [(0x9004, 0x9005)], 0),
        "gemm status": ([("gemm", ("compute",), {"m": 0, "k": 1, "n": 1})], ErrCode.UNIT, 0, (), 0),
        "gemm bad op": ([nop, ("gemm", (6,), {})], ErrCode.UNIT, 1, (), 0),
        "vpu status": ([("vpu", ("mul",), {"n": 8, "rows": 1, "in_fmt": "int32"})], ErrCode.UNIT, 0, (), 0),
        "timeout": ([nop, ("wait", (5, 1, 10), {})], ErrCode.TIMEOUT, 1, (), 0),
        "kv": ([("kv", (), {"op": 9, "status": 0xA000}), end], ErrCode.KV, 0, (), 0),
        "range": ([("load", ("vpu_a", hbm - 64, 2, 64, 64, 3), {})], ErrCode.RANGE, 0, (), 0),
        "range below 0": ([("repeat", (2, 1), {}), ("store", ("vpu_y", 0, 1, 8, 0, 3), {"iter_stride": -32})],
                          ErrCode.RANGE, 1, (), 0),
    }


ERRORS = _errors_cases()


@pytest.mark.parametrize("name", list(ERRORS))
def test_each_error_code_names_the_faulting_instruction(name):
    calls, code, at, errors, base = ERRORS[name]
    p = asm.Program(base=base, check=False)
    pcs = [getattr(p, f)(*a, **kw) for f, a, kw in calls]
    want_pc = pcs[at] if at < len(pcs) else at
    m = Machine(CFG, memory=Memory(CFG.hbm_bytes, size=CFG.hbm_bytes, errors=errors))
    m.load(base, p.words)
    before = m.memory.data.copy()
    res, = m.run(base)
    assert (res.state, res.err_code, hex(res.err_pc)) == ("error", code, hex(want_pc)), res
    assert not res.leftover, "the units are reset after an error"
    if name == "kv":                # the descriptor's status word tells the KV-cache DMA's error
        word = int.from_bytes(m.memory.read(0xA000, 8).tobytes(), "little")
        assert word == status_word(9, KvErr.BAD_OPCODE, 0)
        before[0xA000:0xA008] = m.memory.data[0xA000:0xA008]
    if name == "store error":       # the atom with the error is not written, nothing else changes
        before[0x9000:0x9008] = 0
    assert (m.memory.data == before).all(), "nothing written (RANGE: refused before any access)"


def test_an_unaligned_iteration_is_refused_at_its_store_before_any_access():
    """Iteration 0 (0x9000) stores its row; iteration 1 (0x9030) is BAD_OPERAND at the STORE,
    and nothing of its window is written."""
    p = asm.Program(check=False)
    p.load("vpu_a", addr=0x8000, rows=2, row_bytes=8, stride=32, beat_log2=3)
    p.vpu("scale", n=8, rows=2, mult_a=1)
    with p.loop(2):
        at = p.store("vpu_y", addr=0x9000, rows=1, row_bytes=8, stride=0, beat_log2=3, iter_stride=48)
    p.end()
    m = Machine(CFG)
    m.memory.write(0x8000, bytes(range(1, 9)) + bytes(24) + bytes(range(11, 19)))
    m.memory.write(0x9000, b"\xee" * 0x60)
    m.load(0, p.words)
    res, = m.run(0)
    assert (res.state, res.err_code, res.err_pc) == ("error", ErrCode.BAD_OPERAND, at)
    assert bytes(m.memory.read(0x9000, 8)) == bytes(range(1, 9))
    assert bytes(m.memory.read(0x9008, 0x58)) == b"\xee" * 0x58
    assert asm.move_problem(Opcode.STORE, asm.decode(p.words)[3][1].fields, CFG, addr=0x9030) == \
        "iteration address: 0x9030 is not a multiple of 32 (accepted: a multiple of 32)"


def test_a_unit_waiting_for_data_that_never_comes_hangs_and_says_why():
    p = asm.Program(config=CFG)
    at = p.gemm("load_a", m=16, k=16)
    end = p.end()
    res, _ = run_program(p, config=CFG)
    assert res.state == "hung"
    assert res.hung == (f"END at {end:#x}: gemm (1 pending; the command at {at:#x} waits for 16 beats on "
                        "gemm_a (has 0))"), res.hung


def test_the_sequencer_stops_at_outstanding_commands_and_beats_nobody_takes_hang():
    p = asm.Program(config=CFG)
    for _ in range(CFG.outstanding + 1):            # one more than the sequencer tracks
        at = p.load("vpu_a", addr=0x8000, rows=1, row_bytes=8, stride=0, beat_log2=3)
    p.vpu("scale", n=8, rows=CFG.outstanding + 1, mult_a=1)
    p.end()
    res, _ = run_program(p, config=CFG)
    assert res.state == "hung" and res.hung == f"LOAD at {at:#x}: {CFG.outstanding} commands outstanding"
    # the vector unit takes a command once the previous one has its inputs (the GEMM engine
    # once the previous LOAD_*/STORE is done): a second command ahead of the data hangs
    p = asm.Program(config=CFG)
    first = p.vpu("scale", n=8, rows=1, mult_a=1)
    at = p.vpu("scale", n=8, rows=1, mult_a=1)
    p.load("vpu_a", addr=0x8000, rows=2, row_bytes=8, stride=32, beat_log2=3)
    p.end()
    res, _ = run_program(p, config=CFG)
    assert res.state == "hung" and res.hung == (f"VPU at {at:#x}: the vector unit has not taken all the inputs "
                                                f"of its previous command (at {first:#x})")
    p = asm.Program(config=CFG)
    first = p.gemm("load_a", m=2, k=16)
    at = p.gemm("load_b", k=16, n=16)
    p.end()
    res, _ = run_program(p, config=CFG)
    assert res.state == "hung" and res.hung == f"GEMM at {at:#x}: the GEMM engine is busy with LOAD_A (at {first:#x})"
    # a LOAD is answered after its unit has taken its last beat: one beat too many hangs it
    p = asm.Program(config=CFG)
    at = p.load("gemm_a", addr=0x8000, rows=3, row_bytes=16, stride=32, beat_log2=4)
    p.gemm("load_a", m=2, k=16)
    end = p.end()
    res, _ = run_program(p, config=CFG)
    assert res.state == "hung" and res.leftover == {"gemm_a": 1}
    assert res.hung == f"END at {end:#x}: load (1 pending; the command at {at:#x} waits for gemm_a to take 1 more beats)"
    # and a unit answers once its output has been taken: a result nobody stores hangs it
    p = asm.Program(config=CFG)
    p.load("vpu_a", addr=0x8000, rows=1, row_bytes=8, stride=0, beat_log2=3)
    at = p.vpu("scale", n=8, rows=1, mult_a=1)
    end = p.end()
    res, _ = run_program(p, config=CFG)
    assert res.state == "hung" and res.leftover == {"vpu_y": 1}
    assert res.hung == f"END at {end:#x}: vpu (1 pending; the command at {at:#x} waits for its 1 beats on vpu_y to be taken)"


def test_the_vector_unit_takes_b_from_its_row_buffer_so_b_goes_first():
    """ADD takes a beat of a and of b at once, and the tile DMA delivers one LOAD's beats after
    the other's: b's rows wait in the row buffer (buffer / lanes beats), so loading b, then a
    works, while a first hangs (its beats wait for b, which waits behind them), and so does a
    b LOAD beyond the buffer."""
    cfg = TileConfig(vpu=VPUParams(lanes=8, buffer=32, channels=32), hbm_bytes=1 << 20, channel_shift=19)
    depth = cfg.vpu.buffer // cfg.vpu.lanes
    for order, rows, b_rows in (("ba", 3, 1), ("ab", 3, 1), ("ba", depth + 1, depth + 1)):
        p = asm.Program(config=cfg)
        at = p.vpu("add", n=8, rows=rows, mult_a=1, mult_b=1)
        p.store("vpu_y", addr=0x9000, rows=rows, row_bytes=8, stride=32, beat_log2=3)
        loads = {"a": dict(port="vpu_a", addr=0x8000), "b": dict(port="vpu_b", addr=0xA000)}
        with p.loop(rows // b_rows):
            first = [p.load(**loads[x], rows=b_rows, row_bytes=8, stride=32, beat_log2=3, iter_stride=32 * b_rows)
                     for x in order][0]
        end = p.end()
        m = Machine(cfg)
        m.memory.write(0x8000, np.arange(32 * rows, dtype=np.uint8).tobytes())
        m.memory.write(0xA000, np.full(32 * rows, 3, np.uint8).tobytes())
        m.load(0, p.words)
        res, = m.run(0)
        if order == "ba" and b_rows == 1:
            assert res.ok and not res.leftover, res
            y = np.stack([m.memory.read(0x9000 + 32 * r, 8).view(np.int8) for r in range(rows)])
            assert (y == np.arange(32 * rows).reshape(rows, 32)[:, :8].astype(np.int8) + 3).all()
        elif order == "ab":
            assert res.hung == (f"END at {end:#x}: load ({2 * rows} pending; the command at {first:#x} waits "
                                f"for vpu_a to take 1 more beats); store (1 pending; the command at {at + 32:#x} "
                                f"waits for 1 beats on vpu_y (has 0)); vpu (1 pending; the command at {at:#x} "
                                "waits for 1 beats on vpu_a and vpu_b together (has 0; 1 and 0 waiting))"), res.hung
        else:
            assert res.state == "hung" and f"waits for room in the vpu_b row buffer for 1 more beats (holds {depth})" \
                in res.hung, res.hung


def test_kv_copy_then_load_through_a_fence():
    rng = np.random.default_rng(11)
    src = rng.integers(-100, 100, 40)
    for fence in (True, False):
        p = asm.Program(config=CFG)
        kv_at = p.kv(op="copy", count=40, a=0x8000, b=0x9000, status=0xA000)
        if fence:
            p.fence("kv")
        load_at = p.load("vpu_a", addr=0x9000, rows=1, row_bytes=40, stride=0, beat_log2=3)
        p.vpu("sum", n=40, rows=1)
        p.store("vpu_s", addr=0xB000, rows=1, row_bytes=8, stride=0, beat_log2=3)
        p.end()
        m = Machine(CFG)
        m.memory.write(0x8000, src.astype(np.int8).tobytes())
        m.load(0, p.words)
        res, = m.run(0)
        assert res.ok and res.retired == len(p) - 1        # END is not counted
        assert int(m.memory.read(0xB000, 8).view("<i8")[0]) == src.sum()
        assert int.from_bytes(m.memory.read(0xA000, 8).tobytes(), "little") == status_word(KvOp.COPY, 0, 0)
        assert res.hazards == ([] if fence else [f"LOAD at {load_at:#x} reads 0x9000, written by the KV at "
                                                 f"{kv_at:#x} of tile 0 with no FENCE kv since"])


def test_text_programs_run_and_the_cycle_model_hooks_see_every_event():
    text = """
        load vpu_a addr=0x8000 rows=2 row_bytes=16 stride=32 beat=8
        vpu max n=16 rows=2
        store vpu_s addr=0x9000 rows=2 row_bytes=8 stride=32 beat=8
        fence store
        end
    """

    class Recorder(CycleModel):
        def __init__(self):
            self.events = []

        def issue(self, tile, pc, opcode, fields):
            self.events.append(("issue", pc))

        def unit_start(self, tile, unit, pc, cmd):
            self.events.append(("start", unit.name, pc))

        def unit_done(self, tile, unit, pc):
            self.events.append(("done", unit.name, pc))

    rec = Recorder()
    m = Machine(CFG, timing=rec)
    m.memory.write(0x8000, bytes(range(64)))
    m.load(0, asm.assemble(text, config=CFG))
    res, = m.run(0)
    assert res.ok
    assert [e for e in rec.events if e[0] == "issue"] == [("issue", 32 * i) for i in range(5)]
    for unit, pc in (("LOAD", 0), ("VPU", 32), ("STORE", 64)):
        assert ("start", unit, pc) in rec.events and ("done", unit, pc) in rec.events
    assert m.memory.read(0x9000, 8).view("<i8")[0] == 15 and m.memory.read(0x9020, 8).view("<i8")[0] == 47


def test_tile_config_from_tile_params_and_beat_sizes():
    p = SimpleNamespace(rows=8, cols=16, a_depth=1024, b_depth=1024, c_depth=1024, max_n=256, lanes=4,
                        vpu_buffer=1024, vpu_channels=1024, addr_width=34, hbm_bytes=0, outstanding=4)
    cfg = TileConfig.from_tile_params(p)
    assert (cfg.gemm.rows, cfg.gemm.cols, cfg.vpu.lanes, cfg.hbm_bytes, cfg.outstanding) == (8, 16, 4, 1 << 34, 4)
    assert cfg.channels == 64
    assert cfg.beat_sizes(LoadPort.GEMM_A) == (8,) and cfg.beat_sizes(StorePort.GEMM_C) == (16, 64)
    assert cfg.beat_sizes(LoadPort.VPU_A) == (4, 8, 16) and cfg.port_bytes(StorePort.VPU_Y) == 16
    with pytest.raises(ParameterError, match="gemm rows: 12 is not a power of two"):
        TileConfig(gemm=GEMMParams(rows=12, cols=16))


# ---- the cycle model (sim/accel/timing.py) ----------------------------------------------------

def _timed(program, cfg, **timing):
    tm = Timing(cfg, **timing)
    tm.trace = []
    m = Machine(cfg, timing=tm)
    m.memory.write(0x8000, bytes(range(256)) * 16)
    m.load(0, program.words)
    res, = m.run(0)
    assert res.ok, res
    return tm


def test_the_cycle_model_issues_as_the_rtl_did():
    """A 16 x 16 x 16 GEMM on the small tile, int32 out: every handshake the RTL waveform showed
    (accel_tile, Verilator, memory read latency 20), cycle for cycle: the LOADs at 26 and 29,
    the GEMM commands at 27 (LOAD_A), 119 (LOAD_B, once LOAD_A's 64 beats are in), 189 (COMPUTE),
    194 (STORE), the STORE move at 196, 554 cycles in all (the GEMM STORE runs at 5 beats in 6)."""
    cfg = TileConfig.from_tile_params(SimpleNamespace(
        rows=4, cols=4, lanes=2, a_depth=64, b_depth=64, c_depth=64, max_n=16, vpu_buffer=32,
        vpu_channels=32, addr_width=16, hbm_bytes=1 << 16, outstanding=8))
    p = asm.Program(config=cfg)
    p.load("gemm_a", addr=0x8000, rows=16, row_bytes=16, stride=32, beat_log2=2)
    p.gemm("load_a", m=16, k=16)
    p.load("gemm_b", addr=0x8200, rows=16, row_bytes=16, stride=32, beat_log2=2)
    p.gemm("load_b", k=16, n=16)
    p.gemm("compute", m=16, k=16, n=16)
    p.gemm("store", m=16, n=16)
    p.store("gemm_c", addr=0x9000, rows=16, row_bytes=64, stride=64, beat_log2=4)
    p.end()
    tm = _timed(p, cfg)
    issued = {}
    for _, what, t, *_ in tm.trace:
        issued.setdefault(what, []).append(t)
    assert issued["LOAD"] == [26, 29] and issued["GEMM"] == [27, 119, 189, 194] and issued["STORE"] == [196]
    assert tm.cycles(0) == 554


def test_a_repeat_iteration_costs_a_fetch_round_trip():
    """Each iteration redirects the fetch: the burst in flight drains, then a new round trip;
    the cycles grow with the memory's read latency, and the same run gives the same count."""
    p = asm.Program(config=CFG)
    p.vpu("scale", n=8, rows=6, mult_a=1)
    p.store("vpu_y", addr=0x9000, rows=6, row_bytes=8, stride=32, beat_log2=3)
    with p.loop(6):
        p.load("vpu_a", addr=0x8000, rows=1, row_bytes=8, stride=0, beat_log2=3, iter_stride=32)
    p.end()
    runs = {lat: _timed(p, CFG, read_latency=lat).cycles(0) for lat in (5, 20, 20, 50)}
    assert runs[5] < runs[20] < runs[50]
    per_iteration = (_timed(p, CFG, read_latency=50).cycles(0) - runs[20]) / 30
    assert 6 < per_iteration < 8        # about two latencies per iteration, plus the first fetch


def test_a_wait_ends_when_the_other_tile_signals():
    p0, p1 = asm.Program(config=CFG, base=0), asm.Program(config=CFG, base=0x1000)
    p0.load("vpu_a", addr=0x8000, rows=40, row_bytes=64, stride=64, beat_log2=5)
    p0.vpu("sum", n=16, rows=40, in_fmt=2)
    p0.store("vpu_s", addr=0x9000, rows=40, row_bytes=8, stride=32, beat_log2=3)
    p0.fence("store")
    p0.signal(1, 1)
    p0.end()
    p1.wait(1, 1)
    p1.end()
    tm = Timing(CFG)
    m = Machine(CFG, tiles=2, timing=tm)
    m.load(0, p0.words)
    m.load(0x1000, p1.words)
    assert all(r.ok for r in m.run([0, 0x1000]))
    assert tm.cycles(0) - 10 < tm.cycles(1) < tm.cycles(0) + 10
    assert tm.cycles(1) > 200


def test_the_cycle_model_is_fast_on_a_decode_sized_gemv():
    cfg = TileConfig(gemm=GEMMParams(rows=16, cols=16, a_depth=4096, b_depth=16384, c_depth=4096, max_n=512),
                     vpu=VPUParams(lanes=8, buffer=4096, channels=2048), hbm_bytes=1 << 30)
    rng = np.random.default_rng(1)
    g = Graph()
    g.output("h", g.gemv(g.input("x", (1, 576)), g.weight("w", rng.integers(-128, 128, (576, 1536))),
                         bias=0, mult=1, shift=8))
    compiled = compile(g, cfg)
    start = time.perf_counter()
    cycles = [run(compiled, {"x": rng.integers(-128, 128, (1, 576))}).cycles for _ in range(2)]
    assert time.perf_counter() - start < 5
    assert cycles[0] == cycles[1] > 576 * 1536 / 16         # the weights at C bytes a cycle, at least
