# Release Warden — `make demo` runs the whole story, `make test` runs the suite.
# Both create .venv and install what they need when it is missing.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# The contract gate's fidelity apps (httpbin, Flask-AppBuilder, Piccolo Admin) need packages
# that clash with .venv's, so they get an environment of their own.
APPS_VENV  ?= .venv-apps
APPS_STAMP := $(APPS_VENV)/.installed
APPS_REQS  := tests/contract/apps/requirements.txt
# Test files run in parallel, each file on one worker (their servers are shared per file).
TEST_WORKERS ?= 4
PYTEST_ARGS ?=

.PHONY: install apps demo test lint format bench system-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(APPS_STAMP): $(APPS_REQS)
	test -x $(APPS_VENV)/bin/python || python3 -m venv $(APPS_VENV)
	$(APPS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(APPS_VENV)/bin/python -m pip install --quiet -r $(APPS_REQS)
	touch $(APPS_STAMP)

apps: $(APPS_STAMP)

system-deps:
	./scripts/install-system-deps.sh

demo: $(STAMP)
	$(VENV)/bin/warden demo

test: $(STAMP) $(APPS_STAMP) system-deps
	$(VENV)/bin/warden replay --history tests/replay/histories
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy warden workflows activities worker.py
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP) $(APPS_STAMP) system-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(APPS_VENV) .pytest_cache .mypy_cache .ruff_cache
