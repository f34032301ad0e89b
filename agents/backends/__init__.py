"""LLM access: one async protocol, one small adapter per kind of server.

``create_backend(config)`` is the entry point; adapters import their heavy
SDKs (vllm, torch, transformers) only when started.
"""

from __future__ import annotations

from .backend_config import BackendConfig, BackendKind, RetryConfig
from .base import Backend
from .messages import ChatBackend, ChatMessage, Completion, SamplingParams, TokenUsage

__all__ = ["Backend", "BackendConfig", "BackendKind", "ChatBackend", "ChatMessage", "Completion", "RetryConfig",
           "SamplingParams", "TokenUsage", "create_backend"]


def create_backend(config: BackendConfig) -> Backend:
    """The adapter for ``config.kind``, not started yet (``await backend.start()``)."""
    if config.kind == "openai_compat":
        from .openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(config)
    if config.kind == "vllm":
        from .vllm_engine import VLLMBackend

        return VLLMBackend(config)
    from .embedded import EmbeddedBackend

    return EmbeddedBackend(config)
