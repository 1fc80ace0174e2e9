# Two commands on a fresh machine: `make demo` and `make test` (they create .venv if absent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# With no NVIDIA driver, take the CPU build of torch first (the CUDA build is several GB).
TORCH_CPU ?= torch==2.13.0

.PHONY: install demo test lint clean

$(BIN)/segdec: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	command -v nvidia-smi >/dev/null || $(BIN)/python -c "import torch" 2>/dev/null \
		|| $(BIN)/pip install -q "$(TORCH_CPU)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/segdec

# The demo batch: synthetic data -> the ablation and WS/MS/FS runs -> figures/ (tables, figures).
demo: install
	$(BIN)/segdec batch papermill_runs/demo.yaml --workers 2

test: install
	$(BIN)/ruff check segdec tests
	$(BIN)/python -m pytest -q -n 2 --durations=10

lint: install
	$(BIN)/ruff check segdec tests

clean:
	rm -rf runs papermill_runs/out .pytest_cache
