# The README's commands. `make run` and `make test` each do all the set-up they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench rules check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

NODE_DEPS := .node/node_modules/@grafana/lezer-logql

$(NODE_DEPS):
	@if command -v npm >/dev/null 2>&1; then npm install --silent --no-save --prefix .node @grafana/lezer-logql@0.4.2; \
	else echo "mlscope: npm not found; the LogQL grammar checks of the dashboards need node and npm" >&2; fi

setup: $(STAMP) $(NODE_DEPS)
	./scripts/install-servers.sh

run: setup
	$(BIN)/mlscope up --demo

test: setup
	MLSCOPE_REQUIRE_SERVERS=1 $(BIN)/python -m pytest

bench: setup
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/run.py

rules: setup
	$(BIN)/mlscope rules build

check: setup
	$(BIN)/mlscope rules check

clean:
	rm -rf $(VENV) .state .pytest_cache
