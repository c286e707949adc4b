# Two commands do all the set-up: `make run` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# Development defaults for `make run`: SQLite, Celery tasks run eagerly, DEBUG on.
RUN_ENV := DEBUG=on

.PHONY: run test worker beat migrate lint typecheck format check clean help vendor-sdk browsers monitoring-tools bench-panels update-openapi bench-recovery

help:
	@echo "make run        set up and start the app at http://$(HOST):$(PORT)/ (SQLite, eager tasks)"
	@echo "make test       set up and run the whole test suite"
	@echo "make worker     run a Celery worker for all queues (needs CELERY_BROKER_URL)"
	@echo "make beat       run Celery beat with the database scheduler (needs CELERY_BROKER_URL)"
	@echo "make lint       ruff check + ruff format --check;  make typecheck: mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

migrate: $(VENV)/.deps
	$(RUN_ENV) $(BIN)/python manage.py migrate --no-input

# `make run` also serves the sandbox (a local Pipedrive stand-in, sandbox/README.md) and points the app at it.
# Every URL follows HOST and PORT (`make run PORT=8777`). A wildcard bind address is no origin a
# browser can use, and the sandbox's OAuth server must be on loopback: then the URLs use 127.0.0.1.
APP_URL := http://$(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST)):$(PORT)
SANDBOX_URL := $(APP_URL)/sandbox
SANDBOX_ENV := $(RUN_ENV) PIPEDRIVE_SANDBOX=on APP_BASE_URL=$(APP_URL) \
	PIPEDRIVE_OAUTH_URL=$(SANDBOX_URL) PIPEDRIVE_ALLOWED_API_DOMAINS='$(SANDBOX_URL)/*'

run: migrate
	$(SANDBOX_ENV) $(BIN)/python manage.py sandbox_seed
	@echo "Serving on $(APP_URL)/  (sandbox: $(SANDBOX_URL)/; Ctrl-C to stop)"
	$(SANDBOX_ENV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.deps
	$(BIN)/pytest $(PYTEST_ARGS)

# Development: one worker for every queue (production runs one per queue: Procfile).
worker: $(VENV)/.deps
	$(BIN)/celery -A pipedrive_app worker --loglevel=INFO -Q webhooks,pipedrive,celery

beat: $(VENV)/.deps
	$(BIN)/celery -A pipedrive_app beat --loglevel=INFO

lint: $(VENV)/.deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.deps
	DEBUG=on PIPEDRIVE_SANDBOX=on $(BIN)/mypy pipedrive_app extensions sandbox tests bench

format: $(VENV)/.deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache

# --- Pipedrive App Extensions SDK, vendored into static/ (committed: running the app needs no npm) ---
# To upgrade: pick a version from `npm view @pipedrive/app-extensions-sdk versions`, set SDK_VERSION,
# empty SDK_SHA256, run `make vendor-sdk`, review the diff, then pin the printed sha256 here.
SDK_PACKAGE := @pipedrive/app-extensions-sdk
SDK_VERSION := 0.15.1
SDK_SHA256 := 84fca6fe823430fac564d7fc03bc16dfcbbe32bb6bfe5396bc90149b423f495f
SDK_DIR := static/vendor/app-extensions-sdk

vendor-sdk:
	@command -v npm >/dev/null || { echo "vendor-sdk needs npm (apt-get install -y npm)" >&2; exit 1; }
	@set -euo pipefail; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	npm pack --silent --pack-destination "$$tmp" "$(SDK_PACKAGE)@$(SDK_VERSION)" >/dev/null; \
	tar -xzf "$$tmp"/pipedrive-app-extensions-sdk-$(SDK_VERSION).tgz -C "$$tmp" \
		package/dist/index.umd.js package/dist/index.umd.js.map package/LICENSE.md; \
	sum="$$(sha256sum "$$tmp/package/dist/index.umd.js" | cut -d' ' -f1)"; \
	if [ -n "$(SDK_SHA256)" ] && [ "$$sum" != "$(SDK_SHA256)" ]; then \
		echo "index.umd.js sha256 $$sum does not match SDK_SHA256 $(SDK_SHA256)" >&2; exit 1; fi; \
	mkdir -p $(SDK_DIR); \
	cp "$$tmp/package/dist/index.umd.js" "$$tmp/package/dist/index.umd.js.map" $(SDK_DIR)/; \
	cp "$$tmp/package/LICENSE.md" $(SDK_DIR)/LICENSE.md; \
	printf '%s\n' "package: $(SDK_PACKAGE)" "version: $(SDK_VERSION)" "sha256: $$sum  index.umd.js" \
		"source: npm pack $(SDK_PACKAGE)@$(SDK_VERSION), files dist/index.umd.js(.map) and LICENSE.md" \
		> $(SDK_DIR)/VERSION; \
	echo "vendored $(SDK_PACKAGE)@$(SDK_VERSION) into $(SDK_DIR) (index.umd.js sha256 $$sum)"

# Browser tests drive Debian's Chromium (/usr/bin/chromium); never `playwright install`.
browsers:
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium present: $$(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "Chromium is missing; browser tests will skip. Install it with: sudo apt-get install -y chromium"; \
	fi

# --- axe-core for the accessibility checks in the browser tests (tests/browser/test_accessibility.py) ---
# Vendored like the SDK (committed; the tests reach nothing but loopback). To upgrade: set AXE_VERSION,
# empty AXE_SHA256, run `make vendor-axe`, then pin the printed sha256 here.
AXE_VERSION := 4.14.1
AXE_SHA256 := 29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
AXE_DIR := tests/browser/vendor/axe-core
.PHONY: vendor-axe
vendor-axe:
	@command -v npm >/dev/null || { echo "vendor-axe needs npm (apt-get install -y npm)" >&2; exit 1; }
	@set -euo pipefail; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	npm pack --silent --pack-destination "$$tmp" "axe-core@$(AXE_VERSION)" >/dev/null; \
	tar -xzf "$$tmp"/axe-core-$(AXE_VERSION).tgz -C "$$tmp" package/axe.min.js package/LICENSE; \
	sum="$$(sha256sum "$$tmp/package/axe.min.js" | cut -d' ' -f1)"; \
	if [ -n "$(AXE_SHA256)" ] && [ "$$sum" != "$(AXE_SHA256)" ]; then \
		echo "axe.min.js sha256 $$sum does not match AXE_SHA256 $(AXE_SHA256)" >&2; exit 1; fi; \
	mkdir -p $(AXE_DIR); cp "$$tmp/package/axe.min.js" "$$tmp/package/LICENSE" $(AXE_DIR)/; \
	printf '%s\n' "package: axe-core" "version: $(AXE_VERSION)" "sha256: $$sum  axe.min.js" \
		"source: npm pack axe-core@$(AXE_VERSION), files axe.min.js and LICENSE (MPL-2.0)" > $(AXE_DIR)/VERSION; \
	echo "vendored axe-core@$(AXE_VERSION) into $(AXE_DIR) (axe.min.js sha256 $$sum)"

# --- Translations of the panels and the settings page (extensions/locale; docs/translations.md) -----
# Needs GNU gettext (apt-get install gettext). Extracts new strings into every catalog, then compiles
# the .mo files the app reads (committed: running the app needs no gettext).
MESSAGE_LANGUAGES := de es fr pt_BR
.PHONY: messages i18n-tools
i18n-tools:
	@if command -v xgettext >/dev/null; then \
		echo "gettext present: $$(xgettext --version | head -1)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gettext; \
	else \
		echo "gettext is missing; the catalog source check will skip. Install it with: sudo apt-get install -y gettext"; \
	fi

messages: $(VENV)/.deps
	cd extensions && DEBUG=on ../$(BIN)/python ../manage.py makemessages --no-location --no-obsolete $(addprefix -l ,$(MESSAGE_LANGUAGES))
	cd extensions && DEBUG=on ../$(BIN)/python ../manage.py compilemessages

# promtool checks and unit-tests deploy/monitoring/prometheus-rules.yml (tests/metrics); Debian's
# `prometheus` package provides it (its server is not started: nothing here runs it).
monitoring-tools:
	@if command -v promtool >/dev/null; then \
		echo "promtool present: $$(promtool --version 2>&1 | head -1)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; \
	else \
		echo "promtool is missing; the alert-rule tests will skip. Install it with: sudo apt-get install -y --no-install-recommends prometheus"; \
	fi

# --- Panel server time against a slow Pipedrive (tests/extensions/bench_panels.py) -----------------
BENCH_DELAY_MS ?= 100
BENCH_REQUESTS ?= 30
bench-panels: $(VENV)/.deps
	$(BIN)/python -m tests.extensions.bench_panels --delay-ms $(BENCH_DELAY_MS) --requests $(BENCH_REQUESTS)

# --- Operators' dashboard load check: BENCH_COMPANIES companies at two inbox sizes (BENCH_EVENTS_SMALL
# and BENCH_EVENTS_LARGE events per company: 50,000 and 1,000,000 rows by default); prints each list and
# overview page's median/p95 server time and query count at both, and whether the counts are equal.
# PostgreSQL when DATABASE_URL is set (the production target); else a SQLite file under test-artifacts/.
BENCH_COMPANIES ?= 10000
BENCH_EVENTS_SMALL ?= 5
BENCH_EVENTS_LARGE ?= 100
BENCH_RUNS ?= 15
BENCH_DB_URL := $(or $(DATABASE_URL),sqlite:///$(CURDIR)/test-artifacts/bench-dashboard.sqlite3)
BENCH_DASHBOARD = DATABASE_URL='$(BENCH_DB_URL)' $(RUN_ENV) $(BIN)/python manage.py

.PHONY: bench-dashboard
bench-dashboard: $(VENV)/.deps
	@mkdir -p test-artifacts
	$(BENCH_DASHBOARD) migrate --no-input -v 0
	$(BENCH_DASHBOARD) seed_dashboard --reset --companies $(BENCH_COMPANIES) --events-per-company $(BENCH_EVENTS_SMALL)
	$(BENCH_DASHBOARD) bench_dashboard --runs $(BENCH_RUNS) --save test-artifacts/bench-dashboard-small.json
	$(BENCH_DASHBOARD) seed_dashboard --reset --companies $(BENCH_COMPANIES) --events-per-company $(BENCH_EVENTS_LARGE)
	$(BENCH_DASHBOARD) bench_dashboard --runs $(BENCH_RUNS) --compare test-artifacts/bench-dashboard-small.json

# Webhook receiver throughput/latency vs a bare view, and end-to-end lag, under gunicorn + PostgreSQL.
# Debian's wrk, the external load generator bench-webhooks uses (as root; the benchmark falls back to a
# Python client, and says so, without it).
.PHONY: bench-tools
bench-tools:
	@if command -v wrk >/dev/null; then echo "wrk present: $$(wrk --version 2>&1 | head -1)"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; \
	else echo "wrk is missing; install it with: sudo apt-get install -y wrk"; fi

.PHONY: bench-webhooks
bench-webhooks: $(VENV)/.deps
	@if [ -z "$$DATABASE_URL" ]; then \
		echo "bench-webhooks needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/pipedrive_app make bench-webhooks"; \
		exit 2; fi
	$(BIN)/python -m bench.webhooks

# The recovery fault run: 2,000 deliveries, a worker SIGKILLed, the broker stopped 10 s; prints the
# seconds from each fault's end to "all processed" against the 15 s target (bench/recovery.py).
.PHONY: bench-recovery
bench-recovery: $(VENV)/.deps
	@if [ -z "$$DATABASE_URL" ]; then \
		echo "bench-recovery needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/pipedrive_app make bench-recovery"; \
		exit 2; fi
	$(BIN)/python -m bench.recovery

# The same benchmark with METRICS_ENABLED=off and =on (multiprocess mode), BENCH_PAIRS alternating pairs:
# the metrics' cost on the receiver (target: at most 5 % of its throughput).
BENCH_PAIRS ?= 3
.PHONY: bench-metrics-overhead
bench-metrics-overhead: $(VENV)/.deps
	@if [ -z "$$DATABASE_URL" ]; then \
		echo "bench-metrics-overhead needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/pipedrive_app make bench-metrics-overhead"; \
		exit 2; fi
	BENCH_PAIRS=$(BENCH_PAIRS) $(BIN)/python -m bench.metrics_overhead

# Several minutes of installs, panel views and webhooks against gunicorn + one worker per queue + beat
# (PostgreSQL, a private Redis, the sandbox), with a worker SIGKILLed and Redis restarted (bench/soak.py).
SOAK_SECONDS ?= 180
.PHONY: soak
soak: $(VENV)/.deps
	@if [ -z "$$DATABASE_URL" ]; then \
		echo "soak needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/pipedrive_app make soak"; \
		exit 2; fi
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m bench.soak

# --- Pipedrive's OpenAPI files, vendored in vendor/pipedrive-openapi/ (PROVENANCE.md says from where) ---
# Downloads both files again and prints their sha256 and how their paths changed; review the diff,
# run `make test`, then record the new sha256 in PROVENANCE.md (a test checks they match).
OPENAPI_DIR := vendor/pipedrive-openapi
OPENAPI_V1_URL := https://developers.pipedrive.com/docs/api/v1/openapi.yaml
OPENAPI_V2_URL := https://developers.pipedrive.com/docs/api/v1/openapi-v2.yaml

update-openapi: $(VENV)/.deps
	@set -euo pipefail; tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	curl -fsSL --max-time 120 -o "$$tmp/v1.yaml" "$(OPENAPI_V1_URL)"; \
	curl -fsSL --max-time 120 -o "$$tmp/v2.yaml" "$(OPENAPI_V2_URL)"; \
	for name in v1 v2; do \
	  $(BIN)/python -c 'import sys, yaml; old = yaml.safe_load(open(sys.argv[1])); new = yaml.safe_load(open(sys.argv[2])); \
	a, b = set(old.get("paths", {})), set(new.get("paths", {})); \
	print(sys.argv[3] + ": " + str(len(b)) + " paths; added: " + (", ".join(sorted(b - a)) or "none") + "; removed: " + (", ".join(sorted(a - b)) or "none"))' \
	    "$(OPENAPI_DIR)/$$name.yaml" "$$tmp/$$name.yaml" "$$name"; \
	  cp "$$tmp/$$name.yaml" "$(OPENAPI_DIR)/$$name.yaml"; \
	done; \
	sha256sum $(OPENAPI_DIR)/v1.yaml $(OPENAPI_DIR)/v2.yaml; \
	echo "Now review git diff $(OPENAPI_DIR), run make test, and record the sha256 above in $(OPENAPI_DIR)/PROVENANCE.md"
