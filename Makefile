# The two commands of the README: `make run` (ingest the local data, then serve) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export ECARTO_DATA ?= $(abspath ../shared/data)
export ECARTO_DATABASE ?= var/ecarto.gpkg

.PHONY: setup system run ingest serve test lint bench

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

system:
	bash scripts/system-packages.sh

ingest: setup
	$(BIN)/ecarto ingest --sources sources/local.toml

serve: setup
	$(BIN)/ecarto serve --bind 127.0.0.1:8000

run: ingest serve

lint: setup
	$(BIN)/ruff check .

test: system setup lint
	$(BIN)/pytest -q

bench: system setup
	$(BIN)/python -m bench
