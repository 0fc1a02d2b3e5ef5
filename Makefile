# Two commands do all set-up on a fresh machine:
#   make demo   - installs into .venv, generates the sample shot with the demo model (models/demo)
#   make test   - installs into .venv, runs lint, type checks and the whole test suite
# make model rebuilds models/demo from nothing (synth -> ingest -> fit -> assemble; about an hour on 2
# cores); make model-resume continues an interrupted build where it stopped.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo model model-resume test lint typecheck pytest ae-test protos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# A plain `torch` requirement would pull a multi-GB CUDA build; keep a torch that is already there
	# (a GPU box), otherwise take the CPU wheel.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[server,ray,train,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/genfx demo --out demo_out

model: setup
	$(BIN)/python -m training.demo.build --clean

model-resume: setup
	$(BIN)/python -m training.demo.build

test: setup lint typecheck pytest ae-test

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy  # the files and search path are in pyproject.toml [tool.mypy]

# The whole session runs in a private network namespace (loopback only): Ray binds to the machine's
# address otherwise, and tests may only use loopback.
pytest: setup
	scripts/in_netns.sh $(BIN)/python -m pytest

# After Effects bridge: node --test suites (a real server subprocess from .venv), the ExtendScript type
# check, and the panel's Node side under CEP's own Node versions (15.8 for CEP 11, 17.7 for CEP 12).
ae-test: setup
	cd ae_bridge && npm ci --no-audit --no-fund && npm test
	cd ae_bridge && npm run test:cep-node

protos: setup
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache ae_bridge/node_modules ae_bridge/.cache
