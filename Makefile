# Two commands on a fresh machine: `make demo` and `make test` (they create .venv if absent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# With no NVIDIA driver, take the CPU build of torch first (the CUDA build is several GB).
TORCH_CPU ?= torch==2.13.0

.PHONY: install demo test test-fast lint clean locked lock companion concepts train-example

$(BIN)/segdec: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	command -v nvidia-smi >/dev/null || $(BIN)/python -c "import torch" 2>/dev/null \
		|| $(BIN)/pip install -q "$(TORCH_CPU)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/segdec

# Reproduction with the exact versions of requirements.lock (Python 3.11, Linux): a fresh .venv.
locked:
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	command -v nvidia-smi >/dev/null || $(BIN)/pip install -q "$(TORCH_CPU)"
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(BIN)/segdec

# Refresh requirements.lock: resolve pyproject.toml's ranges afresh in a scratch venv and freeze.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q "$(TORCH_CPU)"
	.lock-venv/bin/pip install -q -e ".[dev]"
	( echo "# Exact versions for 'make locked' (Python 3.11, Linux); 'make lock' rewrites this file."; \
	  .lock-venv/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' ) > requirements.lock
	rm -rf .lock-venv

# The demo batch: synthetic data -> the ablation and WS/MS/FS runs -> figures/demo/.
demo: install
	$(BIN)/segdec batch papermill_runs/demo.yaml --workers 2

# The numbered report notebooks, executed in place from the committed run records (~1 min);
# Figure 9's also reads the KolektorSDD images again, from the folder its records name.
companion: install
	$(BIN)/segdec companion

# The teaching notebook, executed in place: it trains its four small networks on KolektorSDD
# ($SEGDEC_DATA/ksdd, default data/ksdd, or data_root) unless runs/concepts holds them
# (22 min on 2 AVX2 cores; figures/concepts/README.md).
concepts: install
	$(BIN)/segdec companion notebooks/00_concepts.ipynb

# Notebook 02 executed in place on one real KolektorSDD run (fold 0, FS, the paper's network
# without gradient adjustment; $SEGDEC_DATA/ksdd, default data/ksdd), trained into runs/companion
# (~4 min on 2 cores).
train-example: install
	$(BIN)/segdec companion notebooks/02_train.ipynb

test: install
	$(BIN)/ruff check segdec tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --durations=10

# While developing: lint and the fast tests only (no training, no notebook); CI runs `make test`.
test-fast: install
	$(BIN)/ruff check segdec tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

lint: install
	$(BIN)/ruff check segdec tests benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf runs papermill_runs/out .pytest_cache
