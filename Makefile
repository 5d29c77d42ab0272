# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: run test lint install install-dev migrate demo vendor bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py bootstrap_demo

## make run: install, migrate, create demo users and project, then start Redis
## (embedded unless REDIS_URL is set), a Celery worker, Celery beat and the web
## server on http://127.0.0.1:8000. Ctrl-C stops everything it started.
run: demo
	$(PY) -m config.runstack

## make test: the whole suite (real Redis, PostgreSQL, Celery worker, Chromium).
## Pass 1 runs on SQLite; pass 2 runs the tests marked `postgres` on the real
## server (the concurrency tests), since SQLite serialises writers anyway, and
## those marked `both_databases` (the labeling loop, whose SQL differs).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
test: install-dev lint
	$(PY) -m pytest $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest -m "postgres or both_databases" $(PYTEST_ARGS)

## make lint: ruff's checks and its formatter, as configured in pyproject.toml.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install-dev
	$(PY) bench/labeling.py

## Refresh the vendored front-end files from npm (committed; not needed to run).
vendor:
	npm ci --no-audit --no-fund && npm run vendor

clean:
	rm -rf $(VENV) var
