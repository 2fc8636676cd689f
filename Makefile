# Scoville: two commands set everything up on a fresh machine (Python 3.11+, a C++ compiler):
#   make demo   - create .venv, install, run every block end to end (Verilog, sim, synthesis)
#   make test   - create .venv if missing, run the test suite (Verilator + Icarus + formal)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.scoville-installed
# pytest-xdist workers; each Verilator build also uses the cores, so more does not help.
JOBS   ?= auto

.PHONY: help demo test test-fast bench lint clean distclean

help:
	@sed -n '1,3p' Makefile | sed 's/^# \{0,1\}//'
	@echo "other targets: test-fast (Verilator only), bench (every block's benchmarks -> build/bench/BLOCK.json), lint, clean, distclean"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Scoville needs Python 3.11 or newer (found %d.%d); set PYTHON=python3.11" % sys.version_info[:2])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

demo: $(STAMP)
	$(BIN)/scoville demo

test: $(STAMP)
	$(BIN)/pytest -n $(JOBS) -m "not slow" --durations=15 tests

# Verilator only, no formal or Icarus: the quick loop while editing.
test-fast: $(STAMP)
	$(BIN)/pytest -n $(JOBS) -m "not slow and not icarus and not formal" tests

bench: $(STAMP)
	$(BIN)/python -m scoville.scripts.bench_all

lint: $(STAMP)
	$(BIN)/pytest -q tests/test_lint.py

clean:
	rm -rf build .pytest_cache

distclean: clean
	rm -rf $(VENV)
