# The two commands of the README: `make run` (ingest if needed, then serve) and `make test`.
# SOURCES picks the data: sample (the repository's own, default), national (../shared/data, or
# ECARTO_DATA) or official (the ministry's and Etalab's open data, downloaded: internet needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCES ?= sample
PORT ?= 8000
MANIFEST_sample := sources/sample.toml
MANIFEST_national := sources/local.toml
MANIFEST_official := ingest/sources.toml
MANIFEST = $(or $(MANIFEST_$(SOURCES)),$(error SOURCES is sample, national or official, not '$(SOURCES)'))
export ECARTO_DATA ?= $(abspath ../shared/data)
export ECARTO_DATABASE ?= var/ecarto.gpkg
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Tests needing none of ../shared/data, Chromium or QGIS: what a developer runs between two edits.
FAST := not slow and not national and not browser and not qgis

.PHONY: setup system run ingest serve test test-fast lint bench vendor settings-table

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

system:
	bash scripts/system-packages.sh

# Ingest only when the published version was not made from these sources and this ingest code.
run: setup
	$(BIN)/ecarto ingest --sources $(MANIFEST) --if-changed
	$(BIN)/ecarto serve --bind 127.0.0.1:$(PORT)

ingest: setup
	$(BIN)/ecarto ingest --sources $(MANIFEST)

serve: setup
	$(BIN)/ecarto serve --bind 127.0.0.1:$(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: system $(VENV)/.installed-test node_modules/.installed lint
	$(BIN)/pytest -q --served --durations=30

test-fast: $(VENV)/.installed-test node_modules/.installed lint
	$(BIN)/pytest -q -m '$(FAST)' -p no:cacheprovider

bench: system $(VENV)/.installed-test node_modules/.installed
	$(BIN)/python -m bench

# After upgrading maplibre-gl in package.json: copy the files the map serves (tests/test_maps.py checks).
vendor: node_modules/.installed
	cp node_modules/maplibre-gl/dist/maplibre-gl.mjs node_modules/maplibre-gl/dist/maplibre-gl-worker.mjs \
	   node_modules/maplibre-gl/dist/maplibre-gl.css node_modules/maplibre-gl/LICENSE.txt \
	   tileserver/web/static/vendor/maplibre-gl/

# After adding a setting to tileserver/core/settings.py: rewrite README's table (tests/test_readme.py checks).
settings-table: setup
	$(BIN)/python scripts/settings_table.py --write README.md
