# Two set-up commands work on a fresh machine with only Python 3.11+ and make:
#   make demo   - the simulator and the receiver on loopback, with a mixed workload
#   make test   - the whole suite (starts PostgreSQL / S3 / simulator as the tests need them)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test serve demo lint bench soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP)
	$(BIN)/aurous-receiver serve

demo: $(STAMP)
	$(BIN)/aurous-receiver demo

lint: $(STAMP)
	$(BIN)/ruff check receiver storage simulator tests bench
	$(BIN)/mypy --strict receiver storage simulator

bench: $(STAMP)
	$(BIN)/python bench/run_all.py bench

soak: $(STAMP)
	$(BIN)/python bench/run_all.py soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
