# The two commands from a fresh checkout: `make lab` (open the lab) and `make test` (the fast tests).
# Both create the virtual environment when it is missing and install into it only when pyproject.toml
# changed since the last install (a stamp file in the environment).
#
#   make lab        the lab (dllab)
#   make test       the fast tests (slow ones deselected: pyproject.toml's addopts)
#   make test-all   the whole suite, every preset's claims too: what CI runs (.ci/run)
#   make lint       ruff and the import contracts (lint-imports)
#
# VENV=.ci-venv picks another environment, PYTHON=python3.12 another interpreter, TORCH=... another
# torch requirement (e.g. TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu").

VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.dllab-installed

# The test commands the README names; .ci/run runs `make lint test-all`.
PYTEST_FAST := python -m pytest -n 2 -q
PYTEST_ALL := python -m pytest -m "" -n 2 -q

.PHONY: lab test test-all lint setup

lab: $(STAMP)
	$(BIN)/dllab

test: $(STAMP)
	. $(BIN)/activate && $(PYTEST_FAST)

test-all: $(STAMP)
	. $(BIN)/activate && $(PYTEST_ALL)

lint: $(STAMP)
	. $(BIN)/activate && ruff check engine tui_lab tests bench && lint-imports

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, always: `pip install -e .` alone would pick whatever torch build the index offers.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@
