# Hindsight: `make run` serves the app with demo data on SQLite; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install install-dev install-bench migrate seed bench relevance clean axe

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Hindsight needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-bench: $(VENV)/.installed-bench

migrate: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput

seed: migrate
	DEBUG=1 $(BIN)/python manage.py seed_demo

run: seed
	@echo "Hindsight on http://$(HOST):$(PORT)/ — sign in as alice, bob or carol with password hindsight-demo"
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

# axe-core checks accessibility in the browser tests (tests/browser/test_accessibility.py); npm puts it in a
# git-ignored folder, and the tests hand the file to the browser themselves (no CDN).
AXE_VERSION ?= 4.10.3
AXE := .cache/axe/node_modules/axe-core/axe.min.js

$(AXE):
	@if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION); \
	else echo "no npm: the accessibility test will be skipped"; fi

axe: $(AXE)

# The OpenID Connect provider the single sign-on test signs in through (npm `oidc-provider`); without npm
# the test is skipped with a message.
OIDC_PROVIDER := tests/browser/oidc_provider
$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package.json $(OIDC_PROVIDER)/package-lock.json
	@if command -v npm >/dev/null; then cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --silent && touch node_modules/.installed; \
	else echo "no npm: the single sign-on test will be skipped"; fi

test: install-dev $(OIDC_PROVIDER)/node_modules/.installed $(AXE)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark (README, "Benchmark"): fills a PostgreSQL database with BENCH_INCIDENTS published incidents
# (skipped when it already holds them), then load-tests gunicorn with wrk and prints a table.
BENCH_INCIDENTS ?= 100000
bench: install
	@command -v wrk >/dev/null || { echo "make bench needs wrk (Debian: apt-get install wrk)"; exit 1; }
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hindsight_bench} $(BIN)/python bench/generate.py --if-needed $(BENCH_INCIDENTS)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hindsight_bench} $(BIN)/python bench/run.py

# Search relevance (README, "Search, and the benchmark"): known-item queries over the public postmortems,
# Hindsight beside BM25. PostgreSQL when DATABASE_URL names one (it uses database hindsight_relevance on that
# server), else a temporary SQLite file.
relevance: install-bench
	$(BIN)/python bench/relevance.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .cache $(OIDC_PROVIDER)/node_modules
