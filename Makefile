# Xietong: the one entry point for people and CI.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export XIETONG_DATA_DIR ?= var

.PHONY: run serve install migrate demo-data demo-province test test-pg lint format messages browser-deps bench-demo-data bench-uploads bench-imaging bench-viewer bench-live clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, load the demo network if the database is empty, serve :8000
## and the DICOM SCP XIETONG on :11112 in the same process (Ctrl-C stops both)
run: $(STAMP)
	$(BIN)/xietong migrate
	$(BIN)/xietong demo-data --if-empty
	$(BIN)/xietong serve

serve: $(STAMP)
	$(BIN)/xietong serve

migrate: $(STAMP)
	$(BIN)/xietong migrate

demo-data: $(STAMP)
	$(BIN)/xietong demo-data

demo-province: $(STAMP)
	$(BIN)/xietong demo-data --scale province

## make test: the whole suite (SQLite unless XIETONG_DATABASE_URL names PostgreSQL)
test: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -p no:cacheprovider

test-pg: $(STAMP)
	XIETONG_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test $(BIN)/pytest -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	XIETONG_DATABASE_URL=sqlite:///$$(mktemp -d)/check.sqlite3 sh -c '$(BIN)/xietong migrate >/dev/null && $(BIN)/alembic check'

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

## Extract translatable strings and merge them into the catalogs (then translate the .po)
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -o src/xietong/locale/messages.pot --no-location --sort-output src
	$(BIN)/pybabel update -i src/xietong/locale/messages.pot -d src/xietong/locale --no-fuzzy-matching --ignore-obsolete

bench-demo-data: $(STAMP)
	$(PY) bench/demo_data_province.py

## Vetting uploaded photos, scans and PDFs against the bare Pillow/pypdf work
bench-uploads: $(STAMP)
	$(PY) bench/uploads.py

## The imaging archive against Orthanc (installs orthanc, orthanc-dicomweb, dcmtk when missing)
## BENCH_ARGS="--quick" for smaller data, "--pg" for PostgreSQL, "--json out.json" for figures
bench-imaging: $(STAMP)
	$(PY) bench/imaging.py $(BENCH_ARGS)

## Time to the first image in the viewer (demo CT, chromium) against one rendered JPEG
bench-viewer: $(STAMP)
	$(PY) bench/viewer.py $(BENCH_ARGS)

## 1,000 WebSockets in rooms of 10: fan-out latency and messages/s, in-process and through
## Redis (two app processes), against a bare Starlette broadcast; BENCH_ARGS="--quick",
## "--pg" (also PostgreSQL), "--json out.json"
bench-live: $(STAMP)
	$(PY) bench/live.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
