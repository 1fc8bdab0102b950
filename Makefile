# skelrobust developer entry points. Each target sets up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench bench-zoo clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skelrobust demo --overwrite

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

SKELROBUST_DATA ?= ../shared/data
export SKELROBUST_DATA

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/dataset_loading.py
	$(PY) benchmarks/demo_time.py

# The model zoo on real data and the white-box attacks on it: hours on 2 CPU cores,
# resumable (trained checkpoints in models/zoo, finished attack cells in the JSON).
bench-zoo: $(STAMP)
	$(PY) benchmarks/model_zoo.py
	$(PY) benchmarks/zoo_accuracy.py --jobs 2 --threads 1
	$(PY) benchmarks/attack_zoo.py --samples 16 --render nw-ucla/stgcn
	$(PY) benchmarks/attack_cost.py --dataset hdm05

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache runs
