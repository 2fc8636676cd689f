"""Validated, frozen parameter sets shared by the gateware, the CLI and the testbenches.

Every configurable block has one frozen dataclass deriving from :class:`Params`. Its fields carry
their accepted range in metadata (see :func:`param`), so the same declaration validates Python
construction, lists the block in ``scoville blocks`` and parses ``--PARAM VALUE`` on the command
line. A violation raises :class:`ParameterError` whose message is one line naming the parameter and
its accepted range.
"""

from dataclasses import dataclass, field, fields, asdict
from typing import Any


__all__ = ["ParameterError", "Params", "param", "check_int", "check_number", "check_choice"]


class ParameterError(ValueError):
    """A parameter is missing, of the wrong type, out of range, or inconsistent with another."""


def param(default, *, lo=None, hi=None, choices=None, power_of_two=False, doc=""):
    """Declare a dataclass field of a :class:`Params` set with its accepted range.

    ``lo``/``hi`` bound integers (inclusive); ``choices`` lists the accepted values of a string
    field; ``power_of_two`` additionally restricts an integer to powers of two.
    """
    return field(default=default, metadata={
        "lo": lo, "hi": hi, "choices": tuple(choices) if choices is not None else None,
        "power_of_two": power_of_two, "doc": doc,
    })


def _range_text(meta, kind="an integer"):
    if meta["choices"] is not None:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    lo, hi = meta["lo"], meta["hi"]
    text = f"{kind} in {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
    if meta["power_of_two"]:
        text = "a power of two in " + text.removeprefix("an integer in ")
    return text


def check_int(name, value, lo=None, hi=None, *, power_of_two=False):
    """Return ``value`` if it is an ``int`` within ``lo..hi``; raise :class:`ParameterError`."""
    meta = {"lo": lo, "hi": hi, "choices": None, "power_of_two": power_of_two}
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name}: {value!r} is not an integer (accepted: {_range_text(meta)})")
    if ((lo is not None and value < lo) or (hi is not None and value > hi) or
            (power_of_two and (value <= 0 or value & (value - 1)))):
        raise ParameterError(f"{name}: {value} is out of range (accepted: {_range_text(meta)})")
    return value


def check_number(name, value, lo=None, hi=None):
    """Return ``value`` as a ``float`` if it is a real number within ``lo..hi``; raise
    :class:`ParameterError`."""
    meta = {"lo": lo, "hi": hi, "choices": None, "power_of_two": False}
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ParameterError(f"{name}: {value!r} is not a number (accepted: {_range_text(meta, 'a number')})")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParameterError(f"{name}: {value} is out of range (accepted: {_range_text(meta, 'a number')})")
    return float(value)


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``; raise :class:`ParameterError`."""
    if value not in choices:
        raise ParameterError(f"{name}: {value!r} is not accepted (accepted: one of "
                             + ", ".join(str(c) for c in choices) + ")")
    return value


@dataclass(frozen=True)
class Params:
    """Base of every block's parameter set: validates each field on construction.

    Subclasses declare fields with :func:`param` and may override :meth:`check` for rules that
    relate several fields (raise :class:`ParameterError` naming them).
    """

    def __post_init__(self):
        for f in fields(self):
            meta, value = f.metadata, getattr(self, f.name)
            if not meta:
                continue
            if meta["choices"] is not None:
                check_choice(f.name, value, meta["choices"])
            elif isinstance(f.default, bool):
                if not isinstance(value, bool):
                    raise ParameterError(f"{f.name}: {value!r} is not accepted (accepted: true or false)")
            elif isinstance(f.default, int):
                check_int(f.name, value, meta["lo"], meta["hi"], power_of_two=meta["power_of_two"])
            elif isinstance(f.default, float):
                object.__setattr__(self, f.name, check_number(f.name, value, meta["lo"], meta["hi"]))
        self.check()

    def check(self):
        """Cross-field consistency rules; the default accepts every combination."""

    @classmethod
    def describe(cls):
        """``[(name, default, accepted-range text, doc)]`` for ``scoville blocks``."""
        rows = []
        for f in fields(cls):
            if not f.metadata:
                continue
            if isinstance(f.default, bool):
                accepted = "true or false"
            elif isinstance(f.default, str) and f.metadata["choices"] is None:
                accepted = "text"
            elif isinstance(f.default, float):
                accepted = _range_text(f.metadata, "a number")
            else:
                accepted = _range_text(f.metadata)
            rows.append((f.name, f.default, accepted, f.metadata["doc"]))
        return rows

    @classmethod
    def parse(cls, name, text):
        """Convert the command-line string ``text`` for field ``name`` to the field's type."""
        by_name = {f.name: f for f in fields(cls)}
        if name not in by_name:
            raise ParameterError(f"unknown parameter --{name.replace('_', '-')} (accepted: "
                                 + ", ".join("--" + n.replace("_", "-") for n in by_name) + ")")
        f = by_name[name]
        if isinstance(f.default, bool):
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ParameterError(f"{name}: {text!r} is not accepted (accepted: true or false)")
        if isinstance(f.default, int):
            try:
                return int(text, 0)
            except ValueError:
                raise ParameterError(f"{name}: {text!r} is not an integer "
                                     f"(accepted: {_range_text(f.metadata)})") from None
        if isinstance(f.default, float):
            try:
                return float(text)
            except ValueError:
                raise ParameterError(f"{name}: {text!r} is not a number "
                                     f"(accepted: {_range_text(f.metadata, 'a number')})") from None
        return text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
