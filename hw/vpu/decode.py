"""Command decoding shared by the VPU's front and back ends: opcode classes and the status a
command answers before any data moves (the rules of ``verif.vpu_model.check_command``)."""

from amaranth.hdl import Mux, Signal

from .layouts import (INT8_16_ONLY, REDUCTIONS, TWO_PASS, USES_B, USES_CHANNELS, Fmt, Op, Status)


__all__ = ["op_in", "command_status", "EPS_SHIFT_MAX"]

#: Largest eps exponent of a norm command (eps = mult_b << shift_b stays below 2**56).
EPS_SHIFT_MAX = 40


def op_in(op, ops):
    """1 when the 5-bit opcode value ``op`` is one of ``ops``."""
    hit = 0
    for o in ops:
        hit = hit | (op == o.value)
    return hit


def command_status(m, cmd, *, lanes, buffer, channels, rope_max):
    """A combinational :class:`Status` signal for the :data:`Command` view ``cmd``."""
    status = Signal(Status, name="cmd_status")
    op = cmd.op
    bad_op = ~op_in(op, list(Op))
    bad_fmt = ((cmd.in_fmt == 3) | (cmd.out_fmt == 3)
               | (op_in(op, INT8_16_ONLY) & (cmd.in_fmt == Fmt.INT32.value))
               | ((op == Op.REQUANT_DYN.value) & (cmd.out_fmt != Fmt.INT8.value))
               | ((op == Op.SOFTMAX.value) & (cmd.out_fmt == Fmt.INT32.value))
               | (op_in(op, (Op.RMSNORM, Op.LAYERNORM)) & (cmd.shift_b > EPS_SHIFT_MAX)))
    half = cmd.n[1:]
    bad_size = ((cmd.n == 0) | (cmd.rows == 0)
                | (op_in(op, TWO_PASS) & (cmd.n > buffer))
                | (op_in(op, USES_CHANNELS) & (cmd.n > channels))
                | ((op == Op.ROPE.value) & (cmd.n[0] | (cmd.halves & ((half % lanes != 0)
                                                                     | (cmd.n > rope_max))))))
    m.d.comb += status.eq(Mux(bad_op, Status.BAD_OP, Mux(bad_fmt, Status.BAD_FMT,
                                                         Mux(bad_size, Status.BAD_SIZE, Status.OK))))
    return status
