# skelrobust developer entry points. Each target sets up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test browser lint bench bench-zoo clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skelrobust demo --overwrite

# The HTML report's browser test (tests/test_report_browser.py) drives Debian's chromium with
# Playwright (the `browser` extra, part of `dev`); no browser is downloaded. `make test`
# installs both when missing and requires them (SKELROBUST_REQUIRE_BROWSER=1: no skip).
CHROMIUM ?= /usr/bin/chromium

browser: $(STAMP)
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make: $(CHROMIUM) is missing: run 'apt-get install -y chromium' as root" >&2; \
	    exit 1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  test -x "$(CHROMIUM)" || { echo "make: no chromium at $(CHROMIUM) after apt-get" >&2; \
	                             exit 1; }; \
	fi
	@$(PY) -c "import playwright.sync_api" 2>/dev/null || \
	  $(PY) -m pip install -q -c constraints.txt -e ".[browser]"

test: export SKELROBUST_REQUIRE_BROWSER = 1
test: export SKELROBUST_CHROMIUM = $(CHROMIUM)
test: $(STAMP) browser
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
