# collsim — the two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-all lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/collsim demo --out demo_output

test: setup
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q -n 2

lint: setup
	$(BIN)/ruff check collsim tests benchmarks
	$(BIN)/mypy collsim

bench: setup
	$(BIN)/python benchmarks/bench_sim.py

clean:
	rm -rf demo_output runs .pytest_cache .mypy_cache .ruff_cache
