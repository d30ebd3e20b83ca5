# klein-bench. `make run` brings the platform up on embedded defaults (SQLite, eager
# Celery, local cache) at http://127.0.0.1:8000 (PORT=, HOST= to change), serving the agent's wheel it builds; `make test` runs every test against the
# local PostgreSQL and Redis. Both set up the virtual environment first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The tests use the real services; override these to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint format perf venv browser clean gpu-check gpu-check-wheels

$(BIN)/.installed: pyproject.toml agent/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build on local disk. Only the agent and the tests use it.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e "./agent[diffusers,comfyui]" -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

# gunicorn, not runserver: runserver's listen queue holds 10 connections, and parallel
# submissions beyond that were reset (perf/sqlite_parallel.py). One process, so the
# local-memory cache and the in-process tasks stay one; threads take requests in parallel.
RUN_SERVER = $(BIN)/gunicorn config.wsgi --workers 1 --threads 8 --access-logfile -

run: venv
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py loadcatalog
	# The agent's wheel this site serves at /agent/ (the install command on /contribute).
	$(BIN)/python manage.py buildagent
	PORT=$(PORT) $(RUN_SERVER) --reload --bind $(HOST):$(PORT)

# Debian's Chromium for the browser tests (skipped with the reason when it is missing).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "Chromium is missing: install Debian's chromium package to run the browser tests."; fi; }

test: venv browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# PERF_ARGS picks benchmarks and options, e.g. make perf PERF_ARGS="pages --keep".
perf: venv
	$(BIN)/python perf/run.py $(PERF_ARGS)

# The GPU self-check (gpucheck/run.py): on a CUDA machine it proves the agent's figures
# against independent readings; without CUDA it dry-runs on the tiny model. On a GPU
# machine with no .venv it installs the agent from gpucheck/wheels (make gpu-check-wheels).
gpu-check:
	VENV_BIN=$(BIN) gpucheck/gpu-check.sh $(GPU_CHECK_ARGS)

gpu-check-wheels: venv
	gpucheck/download-wheels.sh

clean:
	rm -rf $(VENV) data staticfiles artifacts
