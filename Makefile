# `make figures` and `make test` set everything up themselves: a local .venv, torch (a CPU build
# where there is no GPU), the package and its test dependencies.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# One intra-op thread per pytest worker: two workers fill the two cores without oversubscribing.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
WORKERS ?= 2

.PHONY: setup test test-all figures gallery lint bench docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml .ci/install-torch
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	.ci/install-torch $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: setup
	$(TEST_ENV) $(PY) -m pytest -n $(WORKERS) -m "not slow" -q

test-all: setup
	$(TEST_ENV) $(PY) -m pytest -n $(WORKERS) -q

# quick runs (a smoke check of every recipe) go to build/figures; `make gallery` re-runs every
# recipe in full and rewrites the committed figures/ (about 35 minutes on 2 CPU cores)
figures: setup
	MPLBACKEND=Agg $(PY) recipes/run_all.py --quick --out build/figures

gallery: setup
	MPLBACKEND=Agg $(PY) recipes/run_all.py --out figures

lint: setup
	$(PY) -m ruff check ebm recipes tests benchmarks tools $(wildcard docs/*.py)
	$(PY) -m ruff format --check ebm recipes tests benchmarks tools $(wildcard docs/*.py)

bench: setup
	$(PY) -m pip install --quiet -e ".[bench]" "torch==$$($(PY) -c 'import torch; print(torch.__version__)')"
	$(PY) -m benchmarks

# the documentation site, offline, into build/site: `mkdocs build --strict` (warnings are errors:
# broken links, anchors and images, unparsable docstrings); docs/hooks.py stages figures/,
# generates the gallery and API pages and checks every local link of the built HTML
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

# quiet on success (-q: only warnings and errors), so that CI's log still ends on pytest's summary
docs: $(DOCS_STAMP)
	@NO_MKDOCS_2_WARNING=1 MPLBACKEND=Agg $(PY) -m mkdocs build --strict --quiet --site-dir build/site
	@[ -n "$$CI" ] || echo "docs: built, open build/site/index.html"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# on a machine with CUDA: the CUDA tests, every recipe's quick mode in bf16 and 16-mixed, DDP on
# nccl and the benchmarks, into one report (build/gpu-check/REPORT.md); see docs/guide/gpu.md
.PHONY: gpu-check
gpu-check: setup
	$(PY) tools/gpu_check.py
