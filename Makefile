# EdgeQuant. `make run` and `make test` set everything up on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint protos baseline bench clean

install: $(INSTALLED)

# Reinstalls when the dependencies change; generated code is committed (see README).
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The whole stack under supervisord, paper venue, offline, in the foreground.
run: $(INSTALLED)
	$(PY) -m common.stack

test: $(INSTALLED)
	$(PY) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/buf lint

# Regenerates protos/**/_pb2*.py(i) after a .proto change; commit the result.
protos: $(INSTALLED)
	$(PY) scripts/generate_protos.py --vendor

# Accepts the current contract as the compatibility baseline for `buf breaking`.
baseline: $(INSTALLED)
	$(VENV)/bin/buf build -o protos/baseline.binpb

bench: $(INSTALLED)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
