# Two commands do all the set-up: `make run` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# Development defaults for `make run`: SQLite, Celery tasks run eagerly, DEBUG on.
RUN_ENV := DEBUG=on

.PHONY: run test worker beat migrate lint typecheck format check clean help

help:
	@echo "make run        set up and start the app at http://$(HOST):$(PORT)/ (SQLite, eager tasks)"
	@echo "make test       set up and run the whole test suite"
	@echo "make worker     run a Celery worker (needs CELERY_BROKER_URL)"
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

run: migrate
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	$(RUN_ENV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.deps
	$(BIN)/pytest $(PYTEST_ARGS)

worker: $(VENV)/.deps
	$(BIN)/celery -A pipedrive_app worker --loglevel=INFO

beat: $(VENV)/.deps
	$(BIN)/celery -A pipedrive_app beat --loglevel=INFO

lint: $(VENV)/.deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.deps
	$(BIN)/mypy pipedrive_app extensions

format: $(VENV)/.deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache
