"""The ``kvdma`` AR channel: fixed-priority choice among requesters, locked while one waits."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .links import address_layout


__all__ = ["AddressMux"]


class AddressMux(wiring.Component):
    """Multiplexes address requests onto one AXI address channel by fixed priority.

    Requesters hold ``valid`` and their payload until accepted (registered requests); once the
    channel shows a request that is not accepted, the choice is locked until it is, so the
    channel's payload never changes under ``valid``. Latency 0 (combinational), one request per
    cycle.

    Parameters
    ----------
    addr_width : int
        Address width.
    ids : sequence of int
        AXI ID of each requester, in priority order (requester 0 first).
    id_width : int
        Width of the ``id`` output.

    Members
    -------
    i : In(stream.Signature(address_layout(addr_width))).array(len(ids))
        Requests ``{addr, len}``; ``i[k].ready`` is high only when ``i[k]`` is shown and accepted.
    o : Out(stream.Signature({addr, len, id}))
        The channel: ``valid``/``ready`` are AXI ``AxVALID``/``AxREADY``.
    """

    def __init__(self, *, addr_width, ids, id_width):
        self._ids = tuple(ids)
        self._id_width = id_width
        super().__init__({
            "i": In(stream.Signature(address_layout(addr_width))).array(len(self._ids)),
            "o": Out(stream.Signature(data.StructLayout({"addr": unsigned(addr_width), "len": unsigned(8),
                                                         "id": unsigned(id_width)}))),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self._ids)
        lock, lock_sel = Signal(), Signal(range(n))
        # Port-facing multiplexers are plain expressions, not If/Switch processes (Icarus and
        # comb processes fed only by initialised registers).
        choice = n - 1
        for k in reversed(range(n - 1)):
            choice = Mux(self.i[k].valid, k, choice)
        sel = Signal(range(n))
        m.d.comb += sel.eq(Mux(lock, lock_sel, choice))

        def pick(values):
            out = values[n - 1]
            for k in reversed(range(n - 1)):
                out = Mux(sel == k, values[k], out)
            return out

        ids = [Const(i, self._id_width) for i in self._ids]
        m.d.comb += [
            self.o.valid.eq(pick([r.valid for r in self.i])),
            self.o.payload.eq(Cat(pick([r.payload.as_value() for r in self.i]), pick(ids))),
        ]
        for k, r in enumerate(self.i):
            m.d.comb += r.ready.eq(self.o.ready & (sel == k))
        m.d.sync += [lock.eq(self.o.valid & ~self.o.ready), lock_sel.eq(sel)]
        return m
