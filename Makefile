# gridsvc: `make demo` sets everything up and serves the demo; `make test` runs the tests.
# Both install what is missing (Python venv, PostgreSQL + PostGIS, chromium, map assets) and are
# safe to run again. DATABASE_URL or GRIDSVC_DATABASE_URL, when set, is used instead of the
# local PostgreSQL.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Settings written by scripts/setup.sh (a database URL for peer authentication), when any.
ENV := set -a; [ -f .gridsvc.env ] && . ./.gridsvc.env; set +a;
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_STREET := 530102001
# `gridsvc demo --users` creates the logins demo (admin) and viewer (of street $(DEMO_STREET)) when
# missing, with random passwords it prints once and keeps in .gridsvc-demo-users (mode 0600);
# make demo DEMO_ADMIN_PASSWORD=... DEMO_VIEWER_PASSWORD=... chooses them instead.
# The demo serves plain HTTP, where a Secure session cookie is not sent back (only localhost is
# exempt in some browsers), so only its serve step runs with GRIDSVC_COOKIE_SECURE=0. A job
# worker runs beside the server (pairing runs and large imports from the pages) and stops with it.
DEMO_ADMIN_PASSWORD ?=
DEMO_VIEWER_PASSWORD ?=
# make demo DEMO_ROSTERS=1: households and members come from generated address rosters
# (住户信息表, 党员花名册) through the address matcher instead of points (docs/addresses.md).
DEMO_ROSTERS ?=
DEMO_MEMBER_PASSWORD ?=
DEMO_CADRE_PASSWORD ?=
PYTEST_ARGS ?=

.PHONY: demo test install db browser assets report serve lint bench clean wheel wheelhouse lock \
	docker-lint docs

demo: install db assets
	$(ENV) GRIDSVC_DEMO_ADMIN_PASSWORD='$(DEMO_ADMIN_PASSWORD)' GRIDSVC_DEMO_VIEWER_PASSWORD='$(DEMO_VIEWER_PASSWORD)' $(BIN)/gridsvc demo --users $(if $(DEMO_ROSTERS),--address-rosters --rosters-dir out/rosters)
	$(ENV) $(BIN)/gridsvc pair --street $(DEMO_STREET) --level all
	$(ENV) GRIDSVC_DEMO_MEMBER_PASSWORD='$(DEMO_MEMBER_PASSWORD)' GRIDSVC_DEMO_CADRE_PASSWORD='$(DEMO_CADRE_PASSWORD)' $(BIN)/gridsvc demo --contacts
	$(ENV) $(BIN)/gridsvc requests demo
	$(ENV) $(BIN)/gridsvc report --street $(DEMO_STREET) --out out/demo-report.html
	@echo "report: out/demo-report.html"
	@echo "log in at http://$(HOST):$(PORT)/ as demo (admin), viewer (viewer of street $(DEMO_STREET)), member or cadre (phone pages at /my); passwords: printed by gridsvc demo above, kept in .gridsvc-demo-users"
	$(ENV) $(BIN)/gridsvc worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT; \
	  GRIDSVC_COOKIE_SECURE=0 $(BIN)/gridsvc serve --host $(HOST) --port $(PORT)

test: install db browser assets
	$(ENV) $(BIN)/pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	scripts/setup.sh python
	[ -x $(BIN)/python ] || $$(command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,bench]'
	touch $@

db: install
	scripts/setup.sh postgis
	$(ENV) $(BIN)/gridsvc db init

browser:
	scripts/setup.sh browser

assets: maps/assets/node_modules/.package-lock.json

# Leaflet and its plugins from the npm registry, inlined into every map and report at run time.
maps/assets/node_modules/.package-lock.json: maps/assets/package.json maps/assets/package-lock.json
	scripts/setup.sh node
	cd maps/assets && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

docker-lint: install
	$(BIN)/hadolint Dockerfile

# gridsvc's wheel, the map assets inside (setup.py copies them from maps/assets/node_modules).
wheel: install assets
	rm -f dist/gridsvc-*.whl
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/gridsvc-*.whl

# Every wheel gridsvc needs for this Python and platform, the lock with hashes and gridsvc's own
# wheel, for an install with no network (docs/offline-install.md).
wheelhouse: install assets
	$(BIN)/python scripts/wheelhouse.py wheelhouse

# requirements.lock: the runtime dependencies of setup.cfg pinned with hashes (needs the network).
lock: install
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --output-file requirements.lock setup.cfg

# docs/settings.md and docs/layers.md, generated from gridsvc/settings.py and geodata/layers.py.
docs: install
	$(BIN)/python -m gridsvc.docgen

bench: install db
	for b in bench/*.py; do echo "== $$b"; $(ENV) $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) out dist build wheelhouse .pytest_cache .ruff_cache .gridsvc.env
