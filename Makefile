# mlops-dsl. `make setup` creates .venv; every other target depends on it, so a fresh clone needs
# only `make plan ENV=dev` (the main job) and `make test`.
SHELL   := /bin/bash
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
ENV     ?= dev
STAMP   := $(VENV)/.installed

.PHONY: setup synth check plan graph images test lint bench clean help

help:
	@echo "make plan ENV=dev   synthesize a namespace and show what would be planned"
	@echo "make synth          render every namespace to terraform/"
	@echo "make check          fail if terraform/ differs from the blueprints"
	@echo "make graph          print the template dependency graph (Mermaid)"
	@echo "make images ENV=dev build and push the training and serving images (needs Docker)"
	@echo "make test           run the test suite"
	@echo "make lint           ruff"
	@echo "make bench          synth benchmark"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

synth: setup
	$(BIN)/mlops synth --all

check: setup
	$(BIN)/mlops synth --all --check

plan: setup
	$(BIN)/mlops plan -n $(ENV)

graph: setup
	$(BIN)/mlops graph

images: setup
	$(BIN)/mlops images -n $(ENV)

test: setup
	$(BIN)/ruff check .
	$(BIN)/mlops synth --all --check
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/synth.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
