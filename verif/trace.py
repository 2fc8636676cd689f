"""DRAMsim3-format memory traces: the one parser, shared by the HBM testbench and the CLI.

A trace is text, one request per line: ``0xADDR READ|WRITE CYCLE`` (``R``/``W`` accepted; ``#``
starts a comment; blank lines ignored). ``ADDR`` and ``CYCLE`` are integers in any Python base.
"""

from pathlib import Path

from scoville.hw.params import ParameterError


__all__ = ["TraceError", "parse_trace", "FORMAT"]

FORMAT = "0xADDR READ|WRITE CYCLE"


class TraceError(ParameterError):
    """A trace file is missing, unreadable or malformed; the message names the file and line."""


def parse_trace(path, *, name="trace"):
    """``[(addr, is_write, cycle)]`` from the trace file ``path``.

    Raises :class:`TraceError` (one line: ``name``, the file, the line number and its text)
    for a missing or unreadable file, a malformed line, or a file with no request.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise TraceError(f"{name}: {str(path)!r} does not exist (accepted: a trace file of lines "
                         f"'{FORMAT}')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{name}: {str(path)!r} cannot be read as text ({exc.__class__.__name__})") from None
    out = []
    for number, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if not text:
            continue
        parts = text.split()
        try:
            if len(parts) != 3 or parts[1].upper() not in ("READ", "WRITE", "R", "W"):
                raise ValueError
            addr, cycle = int(parts[0], 0), int(parts[2], 0)
            if addr < 0 or cycle < 0:
                raise ValueError
        except ValueError:
            raise TraceError(f"{name}: {path}:{number}: {line.strip()!r} is not a request "
                             f"(accepted: '{FORMAT}', non-negative integers)") from None
        out.append((addr, parts[1].upper() in ("WRITE", "W"), cycle))
    if not out:
        raise TraceError(f"{name}: {path} holds no request (accepted: lines '{FORMAT}')")
    return out
