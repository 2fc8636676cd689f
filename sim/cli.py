"""``scoville``: one command-line shape for every block.

    scoville COMMAND [BLOCK] [--PARAM VALUE ...] [options]

(`scoville --help` prints every command's usage, kept once in ``COMMAND_HELP``.)

Exit status: 0 success; 2 bad input (unknown block or parameter, missing or out-of-range value:
one line on stderr naming the parameter and its accepted range); 1 a tool failure (synthesis,
place and route, simulation, a missing simulator: one paragraph on stderr). With ``--json`` the
last line on stdout is one JSON object; on any failure it is the only one,
``{"error": ..., "kind": "bad input" | "tool failure" | "internal error", "exit_status": 2}``,
and the exit status is 2 whatever the kind (``kind`` keeps the distinction).
"""

import difflib
import json
import os
import sys
import threading
import time
from pathlib import Path

from scoville.hw.params import ParameterError




class UsageError(Exception):
    """Bad command line: reported as one line, exit status 2."""


def _split_params(args):
    """``["--m", "64", "--dataflow", "ws"]`` -> ``{"m": "64", "dataflow": "ws"}``."""
    out, k = {}, 0
    while k < len(args):
        arg = args[k]
        if not arg.startswith("--") or arg == "--":
            raise UsageError(f"unexpected argument {arg!r} (parameters are given as --NAME VALUE)")
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if k + 1 >= len(args) or (args[k + 1].startswith("--") and not _is_number(args[k + 1])):
                raise UsageError(f"{name}: missing value (give it as --{name.replace('_', '-')} VALUE)")
            value = args[k + 1]
            k += 1
        if name in out:
            raise UsageError(f"{name}: given twice")
        out[name] = value
        k += 1
    return out


def _is_number(text):
    try:
        int(text, 0)
        return True
    except ValueError:
        return False


def _take_flag(args, flag):
    if flag in args:
        args.remove(flag)
        return True
    return False


def _take_option(args, option, default=None, choices=None):
    for k, arg in enumerate(args):
        if arg == option or arg.startswith(option + "="):
            if "=" in arg:
                value = arg.split("=", 1)[1]
                del args[k]
            else:
                if k + 1 >= len(args):
                    raise UsageError(f"{option.lstrip('-')}: missing value")
                value = args[k + 1]
                del args[k:k + 2]
            if choices is not None and value not in choices:
                raise UsageError(f"{option.lstrip('-')}: {value!r} is not accepted "
                                 f"(accepted: one of {', '.join(choices)})")
            return value
    return default


def _writable(option, path):
    """Check, before any build starts, that ``path`` can be written as an output file."""
    if path == "-":
        return path
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{option}: {path!r} is a directory (accepted: a file path in a writable directory)")
    if not parent.is_dir():
        raise UsageError(f"{option}: directory {str(parent)!r} does not exist "
                         "(accepted: a file path in an existing, writable directory)")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"{option}: {path!r} is not writable (accepted: a file path in a writable directory)")
    return path


def _flag(name):
    return "--" + name.replace("_", "-")


def _configure(block, raw, *, workload_allowed=True, command_options=()):
    """Split raw ``--NAME VALUE`` pairs between hardware and workload parameters. An unknown
    name is answered with the options this command accepts for this block (and the closest)."""
    hw_names = {name for name, *_ in block.params.describe()}
    bench_names = {name for name, *_ in block.bench_params.describe()} if block.bench_params else set()
    hw, bench = {}, {}
    for name, text in raw.items():
        if name in hw_names:
            hw[name] = block.params.parse(name, text)
        elif name in bench_names:
            if not workload_allowed:
                raise ParameterError(f"{_flag(name)}: a bench workload parameter; "
                                     "it only applies to `scoville bench`")
            bench[name] = block.bench_params.parse(name, text)
        else:
            accepted = [_flag(a) for a in sorted(hw_names | (bench_names if workload_allowed else set()))]
            accepted += list(command_options)
            close = difflib.get_close_matches(_flag(name), accepted, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ParameterError(f"unknown parameter {_flag(name)} for block {block.name} "
                                 f"({hint}accepted: {', '.join(accepted)})")
    params = block.configure(**hw).as_dict()
    workload = block.bench_params(**bench).as_dict() if block.bench_params else {}
    return params, workload


class _Progress:
    """Elapsed-time ticker on stderr while a long step runs, only on a terminal."""

    def __init__(self, what):
        self.what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True) if sys.stderr.isatty() else None

    def _tick(self):
        start = time.monotonic()
        while not self._stop.wait(0.5):
            sys.stderr.write(f"\r{self.what} ... {time.monotonic() - start:5.1f} s")
            sys.stderr.flush()
        sys.stderr.write("\r" + " " * (len(self.what) + 16) + "\r")

    def __enter__(self):
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread:
            self._stop.set()
            self._thread.join()


def cmd_blocks(args):
    from .blocks import BLOCKS
    as_json = _take_flag(args, "--json")
    if args:
        raise UsageError(f"unexpected argument {args[0]!r}")
    rows = {name: {"summary": b.summary, "status": b.status,
                   "params": [dict(zip(("name", "default", "accepted", "doc"), r)) for r in b.params.describe()],
                   "bench_params": [dict(zip(("name", "default", "accepted", "doc"), r))
                                    for r in (b.bench_params.describe() if b.bench_params else [])]}
            for name, b in BLOCKS.items()}
    if as_json:
        print(json.dumps(rows))
        return 0
    for name, row in rows.items():
        print(f"{name:14s} [{row['status']}] {row['summary']}")
        for kind in ("params", "bench_params"):
            for p in row[kind]:
                flag = "--" + p["name"].replace("_", "-")
                tag = " (bench)" if kind == "bench_params" else ""
                print(f"    {flag:22s} default {str(p['default']):10s} {p['accepted']}{tag}  {p['doc']}")
    return 0


def _block_and_params(args, command, *, workload_allowed=False):
    from .blocks import get_block
    if not args or args[0].startswith("-"):
        raise UsageError(f"missing BLOCK (see `scoville blocks` or `scoville {command} --help`)")
    block = get_block(args.pop(0))
    options = [o.split(" ")[0] for o, _ in COMMAND_HELP[command][2]]
    return block, *_configure(block, _split_params(args), workload_allowed=workload_allowed,
                              command_options=options)


def cmd_verilog(args):
    from .elaborate import elaborate
    out = _take_option(args, "-o") or _take_option(args, "--output")
    block, params, _ = _block_and_params(args, "verilog")
    if out is None:
        raise UsageError("-o: missing output file (scoville verilog BLOCK ... -o FILE.v)")
    _writable("-o", out)
    text = elaborate(block.name, params, block.rtl_factory).read_text()
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)
        print(f"wrote {out}: module {block.name} {json.dumps(params)}", file=sys.stderr)
    return 0


def cmd_synth(args):
    from .synth import FMAX_TARGETS, TARGETS, synthesize
    as_json = _take_flag(args, "--json")
    fmax = _take_flag(args, "--fmax")
    target = _take_option(args, "--target", "generic", TARGETS)
    if fmax and target not in FMAX_TARGETS:
        raise UsageError(f"fmax: not available for target {target} (accepted: --target {' or '.join(FMAX_TARGETS)})")
    block, params, _ = _block_and_params(args, "synth")
    with _Progress(f"synthesising {block.name} for {target}"):
        result = synthesize(block, params, target, fmax=fmax)
    if as_json:
        print(json.dumps(result))
        return 0
    print(f"{block.name} {json.dumps(params)} on {target}:")
    keys = ["transistors", "ffs", "cells"] if target == "generic" else \
        ["luts", "carry", "ffs", "dsps", "brams", "lutram", "cells"]
    for key in keys + (["fmax_mhz"] if fmax else []):
        print(f"  {key:12s} {result[key]}")
    return 0


# Blocks with a load sweep: module providing sweep(params, workload, rates, ...), plot(results,
# path), saturation(results) and DEFAULT_RATES.
SWEEPS = {"noc": "scoville.sim.noc_sweep"}


def _parse_rates(text):
    try:
        rates = [float(r) for r in text.split(",") if r]
    except ValueError:
        rates = []
    if not rates or not all(0 < r <= 1 for r in rates):
        raise UsageError(f"rates: {text!r} is not accepted (accepted: comma-separated loads in (0, 1])")
    return rates


def cmd_sweep(block, params, workload, *, rates, plot_path, sim, seed, as_json):
    import importlib
    if block.name not in SWEEPS:
        raise UsageError(f"sweep: block {block.name} has no load sweep (accepted: {', '.join(SWEEPS)})")
    sweeps = importlib.import_module(SWEEPS[block.name])
    rates = _parse_rates(rates) if rates else list(sweeps.DEFAULT_RATES)
    progress = None if as_json else (lambda r: print(json.dumps(r), flush=True))
    with _Progress(f"sweeping {block.name} over {len(rates)} loads on {sim}"):
        results = sweeps.sweep(params, workload, rates, sim=sim, seed=seed, progress=progress)
    if plot_path:
        sweeps.plot(results, plot_path)
    summary = {"block": block.name, "params": params, "workload": workload, "sim": sim,
               "rates": rates, "saturation": sweeps.saturation(results), "plot": plot_path,
               "points": results}
    if as_json:
        print(json.dumps(summary))
    else:
        print(f"saturation: {json.dumps(summary['saturation'])}" + (f"; plot written to {plot_path}" if plot_path else ""))
    return 0


def cmd_bench(args):
    from .runner import SIMULATORS
    as_json = _take_flag(args, "--json")
    sim = _take_option(args, "--sim", "verilator", SIMULATORS)
    seed = _take_option(args, "--seed")
    if seed is not None and not _is_number(seed):
        raise UsageError(f"seed: {seed!r} is not an integer (accepted: 0..2**32-1)")
    sweep = _take_flag(args, "--sweep")
    rates = _take_option(args, "--rates")
    plot_path = _take_option(args, "--plot")
    if (rates or plot_path) and not sweep:
        raise UsageError("rates/plot: only with --sweep")
    if plot_path:
        _writable("--plot", plot_path)
    block, params, workload = _block_and_params(args, "bench", workload_allowed=True)
    if sweep:
        return cmd_sweep(block, params, workload, rates=rates, plot_path=plot_path, sim=sim,
                         seed=int(seed, 0) if seed else None, as_json=as_json)
    with _Progress(f"building and simulating {block.name} on {sim}"):
        from .bench import run_bench
        result = run_bench(block, params, workload, sim=sim, seed=int(seed, 0) if seed else None)
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22s} {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return 0


def cmd_demo(args):
    from .demo import main as demo
    if args:
        raise UsageError(f"unexpected argument {args[0]!r}")
    return demo()


COMMANDS = {"blocks": cmd_blocks, "verilog": cmd_verilog, "synth": cmd_synth, "bench": cmd_bench,
            "demo": cmd_demo}

# command -> (usage, what it does, [(option, meaning)], example with {block}).
COMMAND_HELP = {
    "blocks": ("scoville blocks [--json]",
               "List every block with its parameters: default and accepted range.",
               [("--json", "print one JSON object instead of the table")],
               "scoville blocks"),
    "verilog": ("scoville verilog BLOCK [--PARAM VALUE ...] -o FILE.v",
                "Elaborate the block's deliverable RTL (no simulation-only parts) to one Verilog file.",
                [("-o FILE", "output file; - writes to stdout (also --output)"),
                 ("--output FILE", "same as -o")],
                "scoville verilog {block} -o {block}.v"),
    "synth": ("scoville synth BLOCK [--PARAM VALUE ...] [--target T] [--fmax] [--json]",
              "Synthesise the deliverable with Yosys (YoWASP): cells, LUTs, FFs, RAMs; --fmax adds "
              "place-and-route with nextpnr behind a register-wrapped harness.",
              [("--target T", "generic (default), ice40, ecp5 or xilinx"),
               ("--fmax", "also place and route and report Fmax (ice40, ecp5)"),
               ("--json", "print one JSON object (on failure: an 'error' field, exit 2)")],
              "scoville synth {block} --target ecp5 --fmax"),
    "bench": ("scoville bench BLOCK [--PARAM VALUE ...] [--sim S] [--seed N] [--json]\n"
              "       scoville bench noc [--PARAM VALUE ...] --sweep [--rates R1,R2,...] [--plot FILE.png]",
              "Run the block's cycle-accurate benchmark; cycle counts depend on design, workload "
              "and seed only, never on the machine.",
              [("--sim S", "verilator (default) or icarus"),
               ("--seed N", "random seed of the workload (default 1; recorded in the result)"),
               ("--json", "print one JSON object as the last line (on failure: the only one, an 'error' field, exit 2)"),
               ("--sweep", "noc only: sweep the offered load"),
               ("--rates R1,R2", "loads of the sweep, each in (0, 1]"),
               ("--plot FILE", "write the sweep's latency/throughput plot")],
              "scoville bench {block} --json"),
    "demo": ("scoville demo",
             "Run every block end to end (Verilog, simulation, bench, synthesis) and write "
             "build/demo/summary.md and a plot.",
             [], "scoville demo"),
}


def _param_lines(title, rows):
    if not rows:
        return []
    lines = [title]
    for name, default, accepted, doc in rows:
        lines.append(f"  {_flag(name):22s} default {str(default):10s} accepted {accepted}")
        if doc:
            lines.append(f"  {'':22s} {doc}")
    return lines


def command_help(command, block_name=None):
    """Text of ``scoville COMMAND [BLOCK] --help``: usage, options, the block's parameters
    with defaults and ranges (workload parameters too for ``bench``), an example."""
    from .blocks import BLOCKS, get_block
    usage, what, options, example = COMMAND_HELP[command]
    lines = [f"usage: {usage}", "", what]
    if options:
        lines += ["", "options:"] + [f"  {o:22s} {d}" for o, d in options]
    if block_name is None:
        if "BLOCK" in usage:
            lines += ["", "blocks (scoville " + command + " BLOCK --help for its parameters):"]
            lines += [f"  {n:14s} {b.summary}" for n, b in BLOCKS.items()]
            example = example.format(block=next(iter(BLOCKS)))
    else:
        block = get_block(block_name)
        lines += ["", f"{block.name}: {block.summary}", ""]
        lines += _param_lines("parameters:", block.params.describe())
        if command == "bench" and block.bench_params:
            lines += [""] + _param_lines("workload parameters (bench only):", block.bench_params.describe())
        example = example.format(block=block.name)
        first = block.params.describe()[:1]
        if first and command != "blocks":
            name, default, *_ = first[0]
            example = example.replace(f" {block.name} ", f" {block.name} {_flag(name)} {str(default).lower() if isinstance(default, bool) else default} ", 1)
    lines += ["", f"example: {example}"]
    return "\n".join(lines)


JSON_FAILURE_STATUS = 2


def _json_error(message, kind):
    """With --json, a failure is one JSON object on stdout and exit status 2."""
    print(json.dumps({"error": message, "kind": kind, "exit_status": JSON_FAILURE_STATUS}), flush=True)
    return JSON_FAILURE_STATUS


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        usages = [line.strip() for usage, *_ in COMMAND_HELP.values() for line in usage.splitlines()]
        print("usage:\n" + "\n".join("    " + u for u in usages) +
              "\n\n`scoville COMMAND --help` and `scoville COMMAND BLOCK --help` describe each "
              "command and a block's parameters.")
        return 0 if argv else 2
    command = argv.pop(0)
    as_json = "--json" in argv
    try:
        if command not in COMMANDS:
            raise UsageError(f"unknown command {command!r} (accepted: {', '.join(COMMANDS)})")
        if "-h" in argv or "--help" in argv:
            block = argv[0] if argv and not argv[0].startswith("-") and command != "blocks" else None
            print(command_help(command, block))
            return 0
        return COMMANDS[command](argv)
    except (UsageError, ParameterError) as exc:
        print(f"scoville: error: {exc}", file=sys.stderr)
        return _json_error(str(exc), "bad input") if as_json else 2
    except KeyboardInterrupt:
        print("scoville: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `scoville ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # tool failures: one readable paragraph, no traceback
        from .synth import SynthError
        from .runner import SimulationFailed, SimulatorMissing
        if isinstance(exc, (SynthError, SimulationFailed, SimulatorMissing)):
            print(f"scoville: {command} failed: {exc}", file=sys.stderr)
            return _json_error(f"{command} failed: {exc}", "tool failure") if as_json else 1
        if not as_json:
            raise
        # A bug, not a tool: the traceback on stderr, and still one JSON object on stdout.
        import traceback
        traceback.print_exc()
        return _json_error(f"{command}: internal error: {type(exc).__name__}: {exc}", "internal error")


if __name__ == "__main__":
    sys.exit(main())
