# One command to run the service, one to run every test. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install run test lint bench

$(BIN)/bulkops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/bulkops

run: install
	$(BIN)/bulkops serve

test: install
	$(BIN)/ruff check bulkops tests bench
	$(BIN)/ruff format --check bulkops tests bench
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/search.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/processing.py
