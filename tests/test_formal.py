"""Formal checks (yowasp-sby + yices) of the shared blocks, each paired with a broken variant."""

import pytest

from scoville.sim.formal import run_check


def _summary(workdir):
    lines = (workdir / "sby.out").read_text().splitlines()
    return "\n".join(line for line in lines if "summary" in line or "failed" in line.lower())


@pytest.mark.formal
@pytest.mark.parametrize("name", ["skid_buffer", "rr_arbiter"])
def test_property_holds(name):
    code, workdir = run_check(name)
    assert code == 0, f"formal check {name} failed (sby exit {code}), see {workdir}:\n{_summary(workdir)}"


@pytest.mark.formal
@pytest.mark.parametrize("name", ["skid_buffer_broken", "rr_arbiter_broken"])
def test_broken_variant_is_caught(name):
    code, workdir = run_check(name)
    assert code == 2, (f"formal check {name} should find a counterexample (sby exit 2), got exit {code}; "
                       f"see {workdir}:\n{_summary(workdir)}")
    assert list(workdir.glob("job/engine_*/trace*.vcd")), "no counterexample trace written"
