# Quickstart: `make demo` and `make test` create .venv on first use with the pinned stack.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# torch first, pinned, so the CPU wheel is used and nothing pulls a CUDA build
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install "numpy<2" mediapipe==0.10.21 anny==0.6.2
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/handface demo --overwrite
	$(BIN)/handface reconstruct examples/*.jpg --out outputs/examples --overwrite
	$(BIN)/handface reconstruct examples/*.jpg --out outputs/examples-dice --method dice --overwrite
	$(BIN)/handface reconstruct examples/*.jpg --out outputs/examples-hybrid --method hybrid --overwrite

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

bench: $(STAMP)
	$(BIN)/handface bench geometry --json
	$(BIN)/handface bench render --json
	$(BIN)/handface bench landmarks --json

clean-venv:
	rm -rf $(VENV)
