# effscale: two commands on a fresh machine.
#   make demo   create .venv, install, run a small real search and print the winner and B0..B7
#   make test   create .venv, install, start PostgreSQL, run the tests

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# This machine has a local CPU wheel of torch 2.13; elsewhere the same pin pulls the platform build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.effscale-installed

.PHONY: install demo test test-quick test-gpu bench bench-gpu clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev,export]"
	touch $@

# A real search in a sound regime: ResNet-20 for CIFAR (He et al. 2016 §4.2, total stride 4) on
# scikit-learn's digits at base resolution 20, where its last feature map is 5x5 and one more pixel
# costs 1.24x FLOPs (ResNet-18 at 32 px: 1x1 and 2.17x, so gamma would measure stride rounding).
# A 3x2x3 grid under the measured-FLOPs constraint (2x +-10%): one distinct network per dimension
# (width only, resolution only, mostly depth) and one alias; 2-epoch proxy trials at batch 32 on
# paired seeds, raced (2 to 5 seeds a candidate), then every raced network retrained for 4 epochs on
# 2 seeds to measure the proxy's fidelity; SQLite, local Ray. About 2.5 minutes on 2 cores.
# Keep benchmarks/bench_demo_breakdown.py's DEMO in step.
DEMO_STUDY ?= demo-resnet20-digits
demo: install
	$(VENV)/bin/effscale search resnet20_cifar --data digits --base-resolution 20 \
		--alpha 1.0,1.4,1.6 --beta 1.0,1.4 --gamma 1.0,1.1,1.4 \
		--constraint measured --target-ratio 2.0 --tolerance 0.1 --epochs 2 --batch-size 32 --confirm-epochs 4 \
		--storage sqlite:///effscale.db --study $(DEMO_STUDY) --out artifacts/family-$(DEMO_STUDY).json

test: install
	bash scripts/start-postgres.sh
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest -q

test-quick: install
	$(PY) -m pytest -q -m "not slow and not postgres and not browser"

bench: install
	$(PY) benchmarks/bench_cost_cache.py
	$(PY) benchmarks/bench_trainer.py
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_demo_breakdown.py
	$(PY) benchmarks/bench_plan.py
	$(PY) benchmarks/bench_cost_latency.py
	$(PY) benchmarks/bench_service_load.py

# On a machine with CUDA: the trainer against a plain loop, and fractional GPU packing.
bench-gpu: install
	$(PY) benchmarks/bench_gpu.py

# On a machine with CUDA, where the gpu tests must run rather than skip.
test-gpu: install
	EFFSCALE_TEST_GPU=1 $(PY) -m pytest -q -m gpu

clean:
	rm -rf $(VENV) artifacts .pytest_cache
