# Two commands set everything up from a fresh clone (only Python 3.11+ needed):
#   make demo   - create .venv, install, run the main job on its built-in default
#   make test   - create .venv, install, run the fast test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all verify clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,hf]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m reflex_jax.compare
	$(BIN)/python -m hrm_jax.demo

verify: $(STAMP)
	$(BIN)/python -m reflex_jax.verify all

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m ""

clean:
	rm -rf $(VENV) .pytest_cache
