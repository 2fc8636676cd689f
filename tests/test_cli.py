"""The `scoville` command line: listing, elaboration, errors (one line, exit 2; with --json one
JSON object and exit 2 for every failure), synth, bench."""

import json
import os
import subprocess
import sys

import pytest


def scoville(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "scoville.sim.cli", *args], cwd=cwd,
                          env={**os.environ, **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_blocks_lists_parameters_and_ranges():
    result = scoville("blocks", "--json")
    assert result.returncode == 0, result.stderr
    blocks = json.loads(result.stdout.splitlines()[-1])
    for name in ("skid_buffer", "rr_arbiter", "csr"):
        assert blocks[name]["params"], name
    width = next(p for p in blocks["skid_buffer"]["params"] if p["name"] == "width")
    assert width["default"] == 32 and "1..4096" in width["accepted"]


def test_verilog_writes_module(tmp_path):
    out = tmp_path / "x.v"
    result = scoville("verilog", "skid_buffer", "--width", "8", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "module skid_buffer(" in text
    for port in ("i_valid", "i_ready", "i_payload", "o_valid", "o_ready", "o_payload", "clk", "rst"):
        assert port in text


def test_axi_lite_port_names(tmp_path):
    out = tmp_path / "csr.v"
    assert scoville("verilog", "csr", "-o", str(out)).returncode == 0
    text = out.read_text()
    for port in ("s_axil_awaddr", "s_axil_wstrb", "s_axil_bresp", "s_axil_araddr", "s_axil_rdata", "s_axil_rready"):
        assert f"{port}," in text or f"{port})" in text or f" {port};" in text, port


@pytest.mark.parametrize("args, names", [
    (["verilog", "nosuchblock", "-o", "x.v"], "nosuchblock"),
    (["verilog", "skid_buffer", "--width"], "width"),
    (["verilog", "skid_buffer", "--width", "0", "-o", "x.v"], "width"),
    (["verilog", "skid_buffer", "--width", "wide", "-o", "x.v"], "width"),
    (["verilog", "skid_buffer", "--depth", "3", "-o", "x.v"], "depth"),
    (["verilog", "csr", "--rw-registers", "0", "--ro-registers", "0", "-o", "x.v"], "rw_registers"),
    (["verilog", "csr", "--data-width", "48", "-o", "x.v"], "data_width"),
    (["synth", "skid_buffer", "--target", "asic"], "target"),
    (["synth", "skid_buffer", "--target", "generic", "--fmax"], "fmax"),
    (["bench", "skid_buffer", "--sim", "vcs"], "sim"),
    (["bench", "skid_buffer", "--stall", "sometimes"], "stall"),
    (["frobnicate"], "frobnicate"),
    (["verilog", "skid_buffer", "-o", "/no/such/dir/x.v"], "/no/such/dir"),
    (["verilog", "skid_buffer", "-o", "."], "is a directory"),
    (["bench", "noc", "--sweep", "--plot", "/no/such/dir/sweep.png"], "--plot"),
    (["bench", "noc", "--rate", "abc"], "not a number"),
    (["bench", "noc", "--rate", "1.5"], "out of range"),
    (["bench", "skid_buffer", "--seed", "abc"], "not an integer"),
    (["bench", "hbm", "--trace", "missing.trc"], "'missing.trc' does not exist"),
    (["bench", "hbm_stack", "--trace", "missing.trc"], "'missing.trc' does not exist"),
])
def test_bad_input_is_one_line_exit_2(args, names, tmp_path):
    # The build directory inside tmp_path: a command that started a build would leave it.
    result = scoville(*args, cwd=tmp_path, env={"SCOVILLE_BUILD": str(tmp_path / "build")})
    assert result.returncode == 2, (args, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert names in lines[0] and "Traceback" not in result.stderr
    assert "accepted" in lines[0] or names in ("frobnicate",) or "missing" in lines[0], lines[0]
    assert not list(tmp_path.iterdir()), "a failed command wrote files"


@pytest.mark.parametrize("text, where", [
    ("0x40 READ 0\n0x80 RAED 3\n", "bad.trc:2: '0x80 RAED 3'"),
    ("# a comment only\n\n", "holds no request"),
    ("0x40 WRITE 0\n0x80 READ\n", "bad.trc:2: '0x80 READ'"),
    ("0x40 READ soon\n", "bad.trc:1: '0x40 READ soon'"),
])
def test_malformed_trace_names_line_before_any_build(text, where, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "bad.trc").write_text(text)
    build = tmp_path / "build"
    result = scoville("bench", "hbm", "--trace", str(inputs / "bad.trc"), env={"SCOVILLE_BUILD": str(build)})
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and where in lines[0] and "accepted" in lines[0], result.stderr
    assert not build.exists(), "the bad trace was found only after a build started"


def test_synth_ecp5_and_generic_json():
    ecp5 = scoville("synth", "skid_buffer", "--width", "16", "--target", "ecp5", "--json")
    assert ecp5.returncode == 0, ecp5.stderr
    area = json.loads(ecp5.stdout.splitlines()[-1])
    assert area["ffs"] >= 2 * 16 + 2 and area["luts"] > 0, area
    generic = scoville("synth", "skid_buffer", "--width", "16", "--target", "generic", "--json")
    assert generic.returncode == 0, generic.stderr
    assert json.loads(generic.stdout.splitlines()[-1])["transistors"] > 0


def test_synth_fmax_ecp5():
    result = scoville("synth", "rr_arbiter", "--target", "ecp5", "--fmax", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["fmax_mhz"] > 50, report


def test_bench_json_is_last_line():
    result = scoville("bench", "skid_buffer", "--stall", "none", "--beats", "500", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["correct"] and report["cycles"] == 503, report
    assert report["seed"] == 1 and report["sim"] == "verilator", report


def test_sweep_is_refused_for_blocks_without_one():
    result = scoville("bench", "skid_buffer", "--sweep")
    assert result.returncode == 2 and "no load sweep" in result.stderr


@pytest.mark.parametrize("args, wanted", [
    (["--help"], ["scoville bench", "COMMAND BLOCK --help"]),
    (["blocks", "--help"], ["usage: scoville blocks", "--json"]),
    (["verilog", "--help"], ["usage: scoville verilog", "-o FILE", "kvdma", "example: scoville verilog"]),
    (["synth", "-h"], ["usage: scoville synth", "--target", "--fmax"]),
    (["bench", "--help"], ["usage: scoville bench", "--seed", "--sweep", "hbm_stack"]),
    (["bench", "gemm", "--help"], ["--dataflow", "default ws", "one of ws, os", "workload parameters", "example: scoville bench gemm --rows 8"]),
    (["verilog", "csr", "--help"], ["--data-width", "one of 32, 64", "example: scoville verilog csr"]),
    (["synth", "hbm", "--help"], ["--mapping", "--xor-bank", "example: scoville synth hbm"]),
])
def test_help_prints_usage_parameters_and_example(args, wanted):
    result = scoville(*args)
    assert result.returncode == 0, (result.stdout, result.stderr)
    for text in wanted:
        assert text in result.stdout, (text, result.stdout)
    if args[-2:-1] == ["verilog"] or (len(args) == 3 and args[0] == "verilog"):
        assert "workload parameters" not in result.stdout


def test_mistyped_option_suggests_only_this_commands_options(tmp_path):
    result = scoville("verilog", "skid_buffer", "--widht", "8", "-o", "x.v", cwd=tmp_path)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "did you mean --width?" in line and "-o" in line, line
    assert "--beats" not in line and "--stall" not in line, line     # bench-only workload options


def _only_json_object(stdout):
    """stdout of a failed --json command: exactly one JSON object and nothing else."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stdout, got:\n{stdout}"
    report = json.loads(lines[0])
    assert isinstance(report, dict) and report["error"], report
    return report


def test_json_failure_is_one_json_object(tmp_path):
    result = scoville("bench", "skid_buffer", "--sim", "vcs", "--json", cwd=tmp_path)
    assert result.returncode == 2
    report = _only_json_object(result.stdout)
    assert "sim" in report["error"] and report["exit_status"] == 2 and report["kind"] == "bad input", report


def test_json_tool_failure_is_one_json_object_exit_2(tmp_path):
    # A real nextpnr failure in about 5 s: a 3x3 array's 9 multipliers map to SB_MAC16 and the
    # UP5K has 8 ("no BELs remaining"). Without --json the same failure exits 1.
    args = ("synth", "systolic", "--rows", "3", "--cols", "3", "--target", "ice40", "--fmax")
    env = {"SCOVILLE_BUILD": str(tmp_path / "build")}
    result = scoville(*args, "--json", env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    report = _only_json_object(result.stdout)
    assert report["exit_status"] == 2 and report["kind"] == "tool failure", report
    assert "synth failed" in report["error"] and "no BELs remaining" in report["error"], report
    assert "Traceback" not in result.stderr
    plain = scoville(*args, env=env)
    assert plain.returncode == 1 and not plain.stdout.strip(), (plain.stdout, plain.stderr)
    assert "no BELs remaining" in plain.stderr


@pytest.mark.parametrize("exc_name, message, kind", [
    ("SimulationFailed", "1 of 1 cocotb tests failed (seed 1)", "tool failure"),
    ("SimulatorMissing", "icarus: iverilog not found", "tool failure"),
    ("ValueError", "a bug", "internal error"),
])
def test_json_bench_failure_is_one_json_object_exit_2(exc_name, message, kind, monkeypatch, capsys):
    # In-process, run_bench replaced: the failure without building or simulating anything.
    import builtins
    import scoville.sim.bench
    import scoville.sim.runner
    from scoville.sim.cli import main
    exc_type = getattr(scoville.sim.runner, exc_name, None) or getattr(builtins, exc_name)

    def failing_bench(*args, **kwargs):
        raise exc_type(message)
    monkeypatch.setattr(scoville.sim.bench, "run_bench", failing_bench)
    assert main(["bench", "skid_buffer", "--json"]) == 2
    report = _only_json_object(capsys.readouterr().out)
    assert report["kind"] == kind and report["exit_status"] == 2 and message in report["error"], report
    if kind == "tool failure":          # without --json: exit 1, nothing on stdout
        assert main(["bench", "skid_buffer"]) == 1
        assert not capsys.readouterr().out
