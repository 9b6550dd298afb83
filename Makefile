# The two commands: `make run` (the whole thing, live) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test bench stop clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "driftline needs Python >= 3.11: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(INSTALLED)

# The stack, fresh demo topics, ingest + evaluate workers, the incident service with a local
# webhook receiver, a producer that injects drift after 30 s and a few malformed events, and the
# alerts and incident deliveries as they arrive. Ctrl-C stops what it started.
run: install
	$(BIN)/driftline demo

test: install
	$(BIN)/pytest

# Every benchmark at full size (~15-20 min; the first run also installs Evidently and whylogs
# into .run/bench-venv): benchmarks/results/*.json and SUMMARY.md. `make test` runs a smoke version.
bench: install
	$(BIN)/python benchmarks/run_all.py

stop:
	@if [ -x $(BIN)/driftline ]; then $(BIN)/driftline stack down; fi

clean: stop
	rm -rf $(VENV) .run
