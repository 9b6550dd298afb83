# The two commands: `make run` (the whole thing, live) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test stop clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "driftline needs Python >= 3.11: set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(INSTALLED)

run: install
	$(BIN)/driftline stack up

test: install
	$(BIN)/pytest

stop:
	@if [ -x $(BIN)/driftline ]; then $(BIN)/driftline stack down; fi

clean: stop
	rm -rf $(VENV) .run
