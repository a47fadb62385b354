# EdgeQuant. `make run` and `make test` set everything up on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Two sets, each with its own stamp: `make run` installs what the stack runs (the
# runtime set), `make test` and the rest add the dev set on top.
INSTALLED := $(VENV)/.installed
RUNTIME_INSTALLED := $(VENV)/.installed-runtime

.PHONY: install install-runtime run test lint protos baseline bench clean audit lock fuzz soak cert web web-test web-lint

install: $(INSTALLED)
install-runtime: $(RUNTIME_INSTALLED)

# Everything (runtime, dev tools, the peers the bench compares with), as pip constraints.
LOCK := requirements.lock
# What the device runs, every package pinned, nothing else: the base dependencies, ccxt
# (always: a venue table can come from any config file or environment variable, and a
# device switched to a live venue must not need a reinstall), Dask's client (the cluster
# extra, for the same reason: `[backtest.cluster]`; only a sweep's driving worker imports
# it) and the tick engine as the
# backtest workers use it (hftbacktest with numba, without its plotting and dataframe
# dependencies, which it imports only for its stats reports). A subset of LOCK, same versions.
RUNTIME_LOCK := requirements-runtime.lock
RUNTIME_EXTRAS := ccxt,cluster
# hftbacktest is installed without its declared dependencies (see RUNTIME_LOCK); this is
# what its engine and its Binance converter import.
TICK_ENGINE := hftbacktest numba

# Reinstalls when the dependencies change; generated code is committed (see README).
# The runtime lock is installed as is (--no-deps: exactly its packages and versions).
$(RUNTIME_INSTALLED): pyproject.toml $(RUNTIME_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps --requirement $(RUNTIME_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The full lock is a constraints file: exactly its versions, whatever PyPI has published
# since. It holds the runtime set's versions too, so this also stands for the runtime set.
$(INSTALLED): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $(RUNTIME_INSTALLED) $@

# The whole stack under supervisord, paper venue, offline, in the foreground.
run: $(RUNTIME_INSTALLED)
	$(PY) -m common.stack

# The web UI (web/): its dependencies from the committed package-lock.json. `make run`
# never needs them: the build is committed in gateway/webui/ and installed with the package.
WEB_MODULES := web/node_modules/.package-lock.json
$(WEB_MODULES): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

# Rebuilds gateway/webui/ from web/ (commit the result; tests/web/test_build.py fails on a
# stale build).
web: $(WEB_MODULES)
	cd web && npm run build

web-test: $(WEB_MODULES)
	cd web && npm test

# vue-tsc type-checks the TypeScript and the Vue templates (no eslint: vue-tsc's strict mode
# with noUnused* covers what we need without a second toolchain).
web-lint: $(WEB_MODULES)
	cd web && npm run lint

# Vitest, then the Python suite (which drives Debian's chromium through the UI, tests/web).
test: $(INSTALLED) web-test
	$(PY) -m pytest

# A certificate for the gateway's HTTPS on the LAN, for this device's name and addresses:
# var/tls/ (ca.crt to trust on phones; README "HTTPS on the LAN"). Re-run when an address
# changes: the same CA signs the new one. Python's cryptography (in the runtime lock), else openssl.
cert: $(RUNTIME_INSTALLED)
	$(PY) scripts/make_cert.py

# Known vulnerabilities of the locked versions (PyPI's advisory data). Not --strict: a
# package the advisory service does not know is reported, not fatal.
audit: $(INSTALLED)
	$(VENV)/bin/pip-audit --requirement $(LOCK) --no-deps --disable-pip --progress-spinner off
	$(VENV)/bin/pip-audit --requirement $(RUNTIME_LOCK) --no-deps --disable-pip --progress-spinner off

# Re-resolves pyproject.toml's ranges in a scratch venv and rewrites both locks (the
# runtime one from a second venv constrained by the first: same versions); review the
# diff, then `make audit test`.
lock:
	rm -rf .lock-venv .lock-runtime-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	head -3 $(LOCK) > $(LOCK).new
	.lock-venv/bin/python -m pip freeze --exclude-editable >> $(LOCK).new
	mv $(LOCK).new $(LOCK)
	$(PYTHON) -m venv .lock-runtime-venv
	.lock-runtime-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-runtime-venv/bin/python -m pip install --quiet --constraint $(LOCK) -e '.[$(RUNTIME_EXTRAS)]' $(filter-out hftbacktest,$(TICK_ENGINE))
	.lock-runtime-venv/bin/python -m pip install --quiet --constraint $(LOCK) --no-deps hftbacktest
	head -6 $(RUNTIME_LOCK) > $(RUNTIME_LOCK).new
	.lock-runtime-venv/bin/python -m pip freeze --exclude-editable >> $(RUNTIME_LOCK).new
	mv $(RUNTIME_LOCK).new $(RUNTIME_LOCK)
	rm -rf .lock-venv .lock-runtime-venv

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

lint: $(INSTALLED) web-lint
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
	rm -rf web/node_modules $(VENV) .lock-venv .lock-runtime-venv build *.egg-info .pytest_cache .mypy_cache .ruff_cache
