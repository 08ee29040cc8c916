# The two commands a newcomer needs:  make demo  and  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint setup browser clean

# A virtualenv with every pinned dependency; rebuilt when the requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

## Run the bot against the embedded sandbox and print a scripted incident as a transcript.
demo: setup
	$(BIN)/python -m demo

## Lint (ruff) and type-check (mypy) the whole tree; configured in pyproject.toml.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

## Chromium and its driver for the backstage's browser tests (installed with apt when missing).
browser:
	sh tests/browser/install-chromium.sh

## Lint, type-check, then run the whole test suite (a ruff or mypy error fails it).
test: lint browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis
