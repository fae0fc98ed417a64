# Two commands on a fresh machine:
#   make demo   set up (.venv, pinned dependencies) and run the skill on the bundled pack and cases
#   make test   lint, type-check and run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint eval bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/escalate demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The Lumen evaluation (needs ../shared); prints scores, never fails the build by itself.
eval: $(STAMP)
	$(BIN)/python ../shared/eval/score.py --cmd '$(BIN)/escalate run {case} --policy examples/lumen --format json' \
		--variants tone,calm,leak,inject

bench: $(STAMP)
	$(BIN)/python bench/bench_engine.py --small
	$(BIN)/python bench/github_status_check.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
