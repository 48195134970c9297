# Beacon: `make run` serves the dashboard with demo data; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app webapp
HOST ?= 127.0.0.1
PORT ?= 5000
MEMBERS ?= 20000

.PHONY: install run test chromium lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js

install: $(VENV)/.installed static/vendor/htmx.min.js

run: install
	$(FLASK) db upgrade heads
	$(FLASK) demo seed --if-empty --members $(MEMBERS)
	@echo ""
	@echo "Beacon is starting on http://$(HOST):$(PORT) — demo logins:"
	@$(FLASK) demo users
	@echo ""
	$(FLASK) run --host $(HOST) --port $(PORT)

chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: install chromium
	$(BIN)/ruff check .
	unset TEST_DATABASE_URL; $(BIN)/python -m pytest -p no:cacheprovider -q
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "=== again on PostgreSQL ($$TEST_DATABASE_URL)"; \
	  $(BIN)/python -m pytest -p no:cacheprovider -q; \
	fi

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
