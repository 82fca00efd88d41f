# Two commands set everything up from a fresh clone (only Python 3.11+ needed):
#   make demo   - create .venv, install, run the main job on its built-in default
#   make test   - create .venv, install, run the fast test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all test-jax-latest verify clean

# The newest supported JAX (0.11.x, what accelerator images ship) in a venv of its own; jax 0.11
# needs Python ≥ 3.12.
LATEST := .venv-jax-latest
PYTHON_LATEST ?= $(shell for p in python3.13 python3.12 $$(pyenv root 2>/dev/null)/versions/3.1[23]*/bin/python3; \
  do "$$p" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && command -v "$$p" && break; done)
LATEST_STAMP := $(LATEST)/.installed
TFDS_STAMP := $(VENV)/.installed-tfds

CORE_STAMP := $(VENV)/.installed-core

# The demo and the CLIs need both halves ([rl] and [lm]) and nothing more (no torch,
# transformers or pytest).
$(CORE_STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints/cpu.txt -e ".[rl,lm]"
	touch $(CORE_STAMP)

# The tests: the test extra (both halves with it), and the hf extra (the transformers parity
# reference).
$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints/cpu.txt -e ".[test,hf]"
	touch $(STAMP)

# The tfds extra (tensorflow-datasets, no TensorFlow): only make test-all runs the slow test
# that needs it (tests/hrm/test_tfds_real.py); make test stays without it.
$(TFDS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c constraints/cpu.txt -e ".[test,hf,tfds]"
	touch $(TFDS_STAMP)

$(LATEST_STAMP): pyproject.toml constraints/jax-latest.txt
	@test -n "$(PYTHON_LATEST)" || { echo "jax 0.11 needs Python >= 3.12: none found; set PYTHON_LATEST=/path/to/python3.12"; exit 1; }
	$(PYTHON_LATEST) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet -c constraints/jax-latest.txt -e ".[test,hf]"
	touch $(LATEST_STAMP)

demo: $(CORE_STAMP)
	$(BIN)/python -m reflex_jax.compare
	$(BIN)/python -m hrm_jax.demo

verify: $(CORE_STAMP)
	$(BIN)/python -m reflex_jax.verify all

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

test-all: $(TFDS_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m ""

# The default suite on jax 0.11.x, then the air-gapped accelerator node emulated (slow tests of
# tests/launch/test_bundle.py: a Python 3.12 venv with jax 0.11.2 and the bundle installed offline).
test-jax-latest: $(LATEST_STAMP)
	$(LATEST)/bin/python -m pytest -q -n 2 --dist worksteal
	$(LATEST)/bin/python -m pytest -q -m slow tests/launch/test_bundle.py

clean:
	rm -rf $(VENV) $(LATEST) .pytest_cache
