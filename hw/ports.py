"""A component's interface as flat, named ports: the names its Verilog ports get.

One definition shared by elaboration (``scoville verilog``), the Fmax harness and formal
harnesses, so a port is named the same everywhere.
"""

from amaranth.hdl import Value, ValueCastable
from amaranth.lib import wiring


__all__ = ["flat_ports"]


def flat_ports(component):
    """``{name: (value, is_input)}`` for every port of ``component``, with paths joined by ``_``
    (``s_axi.ar.valid`` -> ``s_axi_ar_valid``). Raises ``ValueError`` when two members would get
    the same name."""
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value):
            continue
        name = "_".join(map(str, path))
        if name in ports:
            raise ValueError(f"port name {name!r} is produced by two members; rename one of them")
        ports[name] = (value, member.flow == wiring.In)
    return ports
