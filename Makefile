# The README's commands. `make run` and `make test` each do all the set-up they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORE_VENV ?= .venv-core

.PHONY: setup run test test-core lint generate bench rules check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

NODE_DEPS := .node/node_modules/@grafana/lezer-logql
# Grafana's TypeScript types, of the Grafana image pinned in docker-compose.yml (x-images: the one place).
GRAFANA_SCHEMA := $(shell sed -n 's|.*&grafana-image grafana/grafana:\([0-9.]*\).*|\1|p' docker-compose.yml)
TYPESCRIPT := 5.9.3
SCHEMA_DEPS := .node-schema/node_modules/.mlscope-$(GRAFANA_SCHEMA)-$(TYPESCRIPT)

$(NODE_DEPS):
	@if command -v npm >/dev/null 2>&1; then npm install --silent --no-save --prefix .node @grafana/lezer-logql@0.4.2; \
	else echo "mlscope: npm not found; the LogQL grammar checks of the dashboards need node and npm" >&2; fi

$(SCHEMA_DEPS):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --silent --no-save --prefix .node-schema @grafana/schema@$(GRAFANA_SCHEMA) typescript@$(TYPESCRIPT) \
	  && touch $@; \
	else echo "mlscope: npm not found; the type check of the dashboards against @grafana/schema needs node and npm" >&2; fi

setup: $(STAMP) $(NODE_DEPS) $(SCHEMA_DEPS)
	./scripts/install-servers.sh

run: setup
	$(BIN)/mlscope up --demo

test: setup
	MLSCOPE_REQUIRE_SERVERS=1 $(BIN)/python -m pytest -n 3 --dist worksteal

# The core's unit tests in a virtual environment holding only `pip install .` and pytest.
test-core:
	rm -rf $(CORE_VENV)
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install -q '.[test-core]'
	cd tests && ../$(CORE_VENV)/bin/python -m pytest -p no:cacheprovider -m core -q unit

lint: $(STAMP)
	$(BIN)/ruff check exporters tests benchmarks dashboards
	$(BIN)/mypy
	$(BIN)/lint-imports

# Everything generated from a source in this repository: rules, dashboards JSON, remote-write overlays.
generate: $(STAMP)
	$(BIN)/mlscope rules build
	$(BIN)/mlscope dashboards build
	$(BIN)/mlscope remote-write build
	$(BIN)/mlscope docs build

bench: setup
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/run.py

rules: setup
	$(BIN)/mlscope rules build

check: setup
	$(BIN)/mlscope rules check
	$(BIN)/mlscope dashboards check
	$(BIN)/mlscope remote-write check

clean:
	rm -rf $(VENV) $(CORE_VENV) .state .pytest_cache
