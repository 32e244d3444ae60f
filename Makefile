# The two entry points of the README (demo, test), and the developer's loop (lint, test-fast).
# demo and test install what they need first (scripts/setup.sh).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PYOPENGL_PLATFORM ?= egl
DEMO_DATA := data/demo-factors5.h5
TEST_EXTRAS := test,ray,bench

.PHONY: demo test test-fast lint setup clean

setup:
	scripts/setup.sh $(TEST_EXTRAS)

# Build a small K=5 dataset, train a beta-VAE briefly on the CPU (or GPU), print the scores.
demo:
	scripts/setup.sh bench
	test -f $(DEMO_DATA) || $(BIN)/spritegen build --factors 5 --n 20000 --eval-preset quick \
	  --out $(DEMO_DATA)
	$(BIN)/bench run --model betavae --beta 4 --data $(DEMO_DATA) --latent-dim 10 \
	  --epochs 2 --final-preset quick --out results/demo-betavae --force

# Style and types: ruff (lint + format) and mypy, configured in pyproject.toml.
lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy spritegen benchmark

# The edit-test loop: everything but the slow learning tests and the Ray tests.
test-fast:
	$(BIN)/python -m pytest -q -m "not slow and not ray"

# What CI runs (.ci/run): install with the test extras, lint and type-check, the whole suite, one
# pytest-xdist worker per core, each test file whole on one worker (its module fixtures built once).
# The 15 slowest tests close the log: where CI's 15-minute budget goes.
test: setup lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=15

clean:
	rm -rf results data $(VENV)
