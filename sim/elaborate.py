"""Elaboration of Amaranth components to Verilog / RTLIL, cached by parameters and source.

Port names: a component's signature path is joined with a single underscore, so member
``s_axi`` of an :class:`hw.axi.AXI4Signature` becomes ``s_axi_awaddr`` and a stream ``o``
becomes ``o_valid``/``o_ready``/``o_payload`` — the conventional names third-party VIP binds to.
"""

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path

import amaranth
from amaranth.back import rtlil, verilog
from amaranth.hdl import ValueCastable, Value
from amaranth.hdl._ir import PortDirection
from amaranth.lib import wiring


__all__ = ["REPO", "build_root", "source_digest", "verilog_ports", "to_verilog", "to_rtlil",
           "elaborate", "file_lock"]

REPO = Path(__file__).resolve().parents[1]


def build_root() -> Path:
    """Where generated files go: ``$SCOVILLE_BUILD`` or ``<repo>/build``."""
    return Path(os.environ.get("SCOVILLE_BUILD", REPO / "build")).resolve()


_digest_cache = {}


def source_digest(*packages: str) -> str:
    """Hash of every ``.py`` file under the named top-level packages (default ``hw``) plus the
    Amaranth version: any change to the gateware invalidates every cached artefact built from it."""
    packages = packages or ("hw",)
    if packages not in _digest_cache:
        h = hashlib.sha256(amaranth.__version__.encode())
        for pkg in packages:
            for path in sorted((REPO / pkg).rglob("*.py")):
                h.update(str(path.relative_to(REPO)).encode())
                h.update(path.read_bytes())
        _digest_cache[packages] = h.hexdigest()
    return _digest_cache[packages]


def verilog_ports(component: wiring.Component) -> dict:
    """``{port name: (value, direction)}`` for a component, with paths joined by ``_``."""
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if not isinstance(value, Value):
            continue
        name = "_".join(map(str, path))
        if name in ports:
            raise ValueError(f"port name {name!r} is produced by two members; rename one of them")
        ports[name] = (value, PortDirection.Input if member.flow == wiring.In else PortDirection.Output)
    return ports


def to_verilog(component, name):
    return verilog.convert(component, name=name, ports=verilog_ports(component), emit_src=False)


def to_rtlil(component, name, **kwargs):
    return rtlil.convert(component, name=name, ports=verilog_ports(component), emit_src=False, **kwargs)


def params_key(name: str, params: dict) -> str:
    blob = json.dumps({"block": name, "params": params}, sort_keys=True)
    return hashlib.sha256((blob + source_digest()).encode()).hexdigest()[:12]


@contextlib.contextmanager
def file_lock(path: Path):
    """Exclusive lock on ``path`` (created if needed); makes caches safe under ``pytest -n``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def elaborate(name: str, params: dict, factory, *, kind="verilog") -> Path:
    """Write ``factory(**params)`` as ``<build>/verilog/<name>-<key>/<name>.v`` (or ``.il``) once
    per (parameters, gateware source) and return its path."""
    out_dir = build_root() / "verilog" / f"{name}-{params_key(name, params)}"
    out = out_dir / (f"{name}.v" if kind == "verilog" else f"{name}.il")
    if out.exists():
        return out
    with file_lock(out_dir / ".lock"):
        if not out.exists():
            component = factory(**params)
            text = to_verilog(component, name) if kind == "verilog" else to_rtlil(component, name)
            ports = {port: {"direction": "in" if direction == PortDirection.Input else "out",
                            "width": len(value)}
                     for port, (value, direction) in verilog_ports(component).items()}
            (out_dir / "ports.json").write_text(json.dumps(ports, indent=1))
            tmp = out.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, out)
            (out_dir / "params.json").write_text(json.dumps({"block": name, "params": params},
                                                            indent=2, sort_keys=True))
    return out
