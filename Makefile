# Two set-up commands work on a fresh machine with only Python 3.11+ and make:
#   make demo   - the simulator and the receiver on loopback, with a mixed workload
#   make test   - the whole suite (starts PostgreSQL / S3 / simulator as the tests need them)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check
# One stamp per set of packages, so each target installs only what it needs and only once:
# `make demo` and `make serve` need the service (runtime dependencies), the rest the test and
# dev tools as well. Installing the tools installs the service too, hence both stamps.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
TOOLS_STAMP   := $(VENV)/.tools-stamp

.PHONY: test serve demo lint bench soak clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@echo "==> creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing aurous-receiver and its runtime dependencies into $(VENV) (no test tools)"
	$(PIP) -e .
	@touch $@

$(TOOLS_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing aurous-receiver with the test and dev tools (Playwright, moto, schemathesis, mypy, ruff, ...)"
	$(PIP) -e '.[test,dev]'
	@touch $@ $(RUNTIME_STAMP)

test: $(TOOLS_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(RUNTIME_STAMP)
	$(BIN)/aurous-receiver serve

demo: $(RUNTIME_STAMP)
	@echo "==> starting the demo: the Aurous simulator and the receiver on loopback (Ctrl-C stops both)"
	$(BIN)/aurous-receiver demo

lint: $(TOOLS_STAMP)
	$(BIN)/ruff check receiver storage simulator tests bench
	$(BIN)/mypy --strict receiver storage simulator

bench: $(TOOLS_STAMP)
	$(BIN)/python bench/run_all.py bench

soak: $(TOOLS_STAMP)
	$(BIN)/python bench/run_all.py soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
