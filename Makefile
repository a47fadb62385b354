# EdgeQuant. `make run` and `make test` set everything up on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run test lint protos baseline bench clean audit lock fuzz soak

install: $(INSTALLED)

LOCK := requirements.lock

# Reinstalls when the dependencies change; generated code is committed (see README).
# The lock is a constraints file: exactly its versions, whatever PyPI has published since.
$(INSTALLED): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $@

# The whole stack under supervisord, paper venue, offline, in the foreground.
run: $(INSTALLED)
	$(PY) -m common.stack

test: $(INSTALLED)
	$(PY) -m pytest

# Known vulnerabilities of the locked versions (PyPI's advisory data). Not --strict: a
# package the advisory service does not know is reported, not fatal.
audit: $(INSTALLED)
	$(VENV)/bin/pip-audit --requirement $(LOCK) --no-deps --disable-pip --progress-spinner off

# Re-resolves pyproject.toml's ranges in a scratch venv and rewrites the lock; review the
# diff, then `make audit test`.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	head -3 $(LOCK) > $(LOCK).new
	.lock-venv/bin/python -m pip freeze --exclude-editable >> $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

# The gRPC fuzz test at full size: every boundary case of every RPC, more random input,
# and schemathesis with more examples per operation (make test runs a sample).
fuzz: $(INSTALLED)
	EDGEQUANT_FUZZ_CASES=0 EDGEQUANT_SCHEMATHESIS_EXAMPLES=100 $(PY) -m pytest tests/fuzz tests/gateway/test_openapi.py

# One hour of mixed load against the stack as `make run` runs it (temp dir, free ports);
# fails on RSS over budget, a restart, an error a healthy stack does not give, a stream
# cut, a crossed paper book or a GOAWAY in its logs. SOAK_SECONDS=180 for a short check.
# Not part of make test (.ci/run runs ten minutes of it).
soak: $(INSTALLED)
	$(PY) -m bench.soak

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

# Every section on its own paper account and var dir; a section that cannot complete is
# marked FAILED in the table and the exit status is 1. `make test` runs every section at a
# tiny size (BENCH_SIZE=tiny, the `bench` marker).
bench: $(INSTALLED)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .lock-venv build *.egg-info .pytest_cache .mypy_cache .ruff_cache
