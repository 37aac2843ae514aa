# `make demo` and `make test` are the README's two commands; both set everything up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := build/demo

.PHONY: setup demo test clean

setup: $(STAMP)

# Idempotent: reinstalls only when the lock file or the project metadata change.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

demo: setup
	$(BIN)/train data demo --out $(DEMO)/data
	$(BIN)/train fit --data $(DEMO)/data --out $(DEMO)/c12.pt --group C12 --width 0.35 \
		--epochs 3 --batch-size 32 --lr 4e-3 --no-progress
	$(BIN)/train eval $(DEMO)/c12.pt --data $(DEMO)/data --split test

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf build .pytest_cache
