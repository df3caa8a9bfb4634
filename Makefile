# Two commands do everything on a fresh machine (Python 3.11, pip, gcc):
#   make run   - create .venv, install the project, `dvc repro` the whole comparison, print the leaderboard
#   make test  - create/update the same .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# one pytest-xdist worker per CPU (tests/conftest.py schedules them: a module whose tests share
# module-scoped fixtures runs on one worker)
PYTEST_WORKERS ?= logical
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-fast docs bench install install-test clean-outputs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Two stamps: `make run` installs the pipeline only; `make test` adds the test extras
# (pytest, and JAX to check the Keras code on a second backend).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	dvc repro
	@echo
	@cat reports/leaderboard.md

test: install-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load --durations=15 $(PYTEST_ARGS)

# The documentation site (docs/, mkdocs.yml) -> site/; --strict: a broken link or missing page fails.
$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@ $(VENV)/.installed

docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test-fast: install-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_classical.py
	$(BIN)/python benchmarks/bench_cnn.py
	$(BIN)/python benchmarks/bench_pipeline.py

clean-outputs:
	rm -rf data/prepared data/features artifacts metrics plots reports
