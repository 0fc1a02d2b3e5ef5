# Two commands do all set-up on a fresh machine:
#   make demo   - installs into .venv, generates the sample shot with the built-in tiny model
#   make test   - installs into .venv, runs lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck pytest protos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# A plain `torch` requirement would pull a multi-GB CUDA build; keep a torch that is already there
	# (a GPU box), otherwise take the CPU wheel.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[server,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/genfx demo --out demo_out

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy genfx inference_server

pytest: setup
	$(BIN)/python -m pytest

protos: setup
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
