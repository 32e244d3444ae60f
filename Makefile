# The two entry points of the README. Both install what they need first (scripts/setup.sh).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PYOPENGL_PLATFORM ?= egl
DEMO_DATA := data/demo-factors5.h5

.PHONY: demo test setup clean

setup:
	scripts/setup.sh

# Build a small K=5 dataset, train a beta-VAE briefly on the CPU (or GPU), print the scores.
demo:
	scripts/setup.sh
	test -f $(DEMO_DATA) || $(BIN)/spritegen build --factors 5 --n 20000 --eval-preset quick \
	  --out $(DEMO_DATA)
	$(BIN)/bench run --model betavae --beta 4 --data $(DEMO_DATA) --latent-dim 10 \
	  --epochs 2 --final-preset quick --out results/demo-betavae --force

# Install the test extras and run the whole suite (this is what .ci/run calls).
test:
	scripts/setup.sh test,ray
	$(BIN)/python -m pytest -q

clean:
	rm -rf results data $(VENV)
