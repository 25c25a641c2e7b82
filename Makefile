# mlops-dsl. `make setup` creates .venv; every other target depends on it, so a fresh clone needs
# only `make plan ENV=local` (the main job) and `make test`.
SHELL   := /bin/bash
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
ENV     ?= local
DATA    ?=
STAMP   := $(VENV)/.installed

.PHONY: setup synth check plan apply destroy drift cost smoke release local-down graph images train promote serve mlflow-ui test lint bench clean help

help:
	@echo "make plan ENV=dev   synthesize a namespace and plan every stack in dependency order (saved plans)"
	@echo "make apply ENV=dev  apply exactly the saved plans (manual namespaces ask for approval)"
	@echo "make destroy ENV=dev destroy every stack in reverse order (ENV=local also stops the emulator)"
	@echo "make drift ENV=dev  report stacks whose real resources drifted from their state (exit 1)"
	@echo "make cost ENV=dev   estimated monthly cost of each stack (mlops cost)"
	@echo "make smoke ENV=dev  invoke every served variant with its model's input example (mlops smoke)"
	@echo "make release ENV=local train, register, test locally, promote, plan, apply (mlops release; FLAGS=...)"
	@echo "make local-down     stop the local AWS emulator (everything in it is lost)"
	@echo "make synth          render every namespace to terraform/"
	@echo "make check          fail if terraform/ differs from the blueprints"
	@echo "make graph          print the template dependency graph (Mermaid)"
	@echo "make images ENV=dev build and push the training and serving images (needs Docker)"
	@echo "make train [DATA=f] train (sample data by default), then promote if better"
	@echo "make promote        champion/challenger promotion; exit 1 when production stays"
	@echo "make serve          serve the production model on http://127.0.0.1:8080"
	@echo "make mlflow-ui      the MLflow UI on http://127.0.0.1:5000"
	@echo "make test           run the test suite"
	@echo "make lint           ruff"
	@echo "make bench          benchmarks: synth, engines (native vs cdktn), drift, serving"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ml,local,cdktn,aws]'
	@# Azurite (Azure Blob emulator) for the drift job's tests; 3.35.0 is the last release for Node 20.
	@if command -v npm >/dev/null; then npm install --silent --no-audit --no-fund --prefix .mlops/node azurite@3.35.0; \
	else echo "npm not found: the drift job's Azure Blob tests will be skipped"; fi
	touch $@

synth: setup
	$(BIN)/mlops synth --all

check: setup
	$(BIN)/mlops synth --all --check

plan: setup
	$(BIN)/mlops plan -n $(ENV)

apply: setup
	$(BIN)/mlops apply -n $(ENV)

destroy: setup
	$(BIN)/mlops destroy -n $(ENV)
	@if [ "$(ENV)" = local ]; then $(BIN)/mlops emulator stop -n local; fi

drift: setup
	$(BIN)/mlops drift -n $(ENV)

cost: setup
	$(BIN)/mlops cost -n $(ENV)

smoke: setup
	$(BIN)/mlops smoke -n $(ENV)

release: setup
	$(BIN)/mlops release -n $(ENV) $(FLAGS)

local-down: setup
	$(BIN)/mlops emulator stop -n local

graph: setup
	$(BIN)/mlops graph

images: setup
	$(BIN)/mlops images -n $(ENV)

train: setup
	$(BIN)/python -m training train $(if $(DATA),--data $(DATA))
	$(BIN)/python -m training promote || true
	$(BIN)/python -m training production

promote: setup
	$(BIN)/python -m training promote

serve: setup
	MODEL_URI=$${MODEL_URI:-models:/customer-churn@production} $(BIN)/python -m serving serve --host 127.0.0.1 --port 8080

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///.mlops/mlflow.db --host 127.0.0.1 --port 5000

test: setup
	$(BIN)/ruff check .
	$(BIN)/mlops synth --all --check
	$(BIN)/mlops validate --schema
	$(BIN)/python -m pytest -q --durations=15 -n 2 --dist loadgroup

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/engines.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
