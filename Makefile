# Two entry points on a fresh machine:  `make serve`  and  `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip

.PHONY: install install-dev serve test lint typecheck clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24"

# The install of the Dockerfile too (scripts/install.sh); pins in constraints.txt.
install: $(BIN)/python
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/install.sh --editable .

install-dev: install
	$(PIP) install -c constraints.txt -e ".[dev]"

serve: install
	$(BIN)/culturesafe serve

# ruff and mypy read their rules from pyproject.toml ([tool.ruff], [tool.mypy]).
lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

test: install-dev
	$(MAKE) lint typecheck
	bash scripts/test.sh $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
