"""The ``backend:`` block of a run config: part of the public contract."""

from __future__ import annotations

import os
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sparring.redaction import looks_like_key

BackendKind = Literal["embedded", "vllm", "openai_compat"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")  # an HTTP token (RFC 9110)
EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
"""The model ``kind: embedded`` always runs."""


class RetryConfig(BaseModel):
    """How transient faults (429, 5xx, timeouts, dropped connections) are retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(6, ge=1, le=50)
    """Total tries of one request, the first included."""
    initial_wait_s: float = Field(0.5, ge=0.0, le=60.0)
    """First backoff; doubles each retry, with full jitter."""
    max_wait_s: float = Field(30.0, ge=0.0, le=600.0)
    """Cap on one backoff, and on a server's retry-after that is honoured."""
    timeout_s: float = Field(120.0, gt=0.0, le=3600.0)
    """Per-request timeout; a request that outlasts it counts as a transient fault."""


class BackendConfig(BaseModel):
    """Which LLM serves the agents, and how hard to drive it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BackendKind = "embedded"
    """``embedded`` (SmolLM2-135M in-process, no network), ``vllm`` (in-process engine on
    ``model``) or ``openai_compat`` (any OpenAI-compatible HTTP server)."""
    model: str | None = None
    """HF id or local folder (vllm); the served model name (openai_compat); unused for embedded."""
    base_url: str | None = None
    """Server URL, e.g. ``http://localhost:8000/v1`` (openai_compat only)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key. The key itself never sits in a file."""
    max_in_flight: int = Field(64, ge=1, le=100_000)
    """Requests in flight to this backend at once; keeps the engine's batch full without flooding it."""
    structured_output: Literal["auto", "json_schema", "reask"] = "auto"
    """Schema enforcement: ``auto`` detects constrained decoding and falls back to parse + re-ask."""
    reasks: int = Field(2, ge=0, le=10)
    """Re-asks with the validation error before a structured reply counts as failed."""
    retry: RetryConfig = RetryConfig()
    """Retry policy for transient faults (openai_compat)."""
    dtype: str = "auto"
    """Engine dtype (vllm/embedded). ``auto`` picks float32 on CPUs without bf16 instructions."""
    max_model_len: int | None = Field(None, ge=256)
    """Context length the engine reserves for (vllm/embedded)."""
    engine_args: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for vLLM's ``AsyncEngineArgs`` (vllm/embedded)."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Extra JSON fields sent with every request (openai_compat), e.g. ``{"top_k": 20}``."""
    transport: Literal["direct", "sdk"] = "direct"
    """How openai_compat sends a request: ``direct`` (an aiohttp session carrying the openai
    client's URL, headers and auth, failing with its exceptions; ~1 ms less CPU per call) or
    ``sdk`` (the openai client's own request path, ``client.post``)."""
    session_header: str | None = Field("x-session-id", max_length=100)
    """HTTP header that carries the dialogue's session id on each of its requests (openai_compat): one
    value per dialogue, the same for all its roles, unique across runs, so a router with session
    affinity (vllm-router, SGLang's router, NVIDIA Dynamo, llm-d) keeps its growing prefix on one
    replica's cache. ``null`` sends none. vllm-router reads ``x-session-id`` first."""

    @model_validator(mode="after")
    def _check_kind_fields(self) -> BackendConfig:
        if self.kind == "openai_compat":
            if not self.model:
                raise ValueError("openai_compat needs 'model' (the served model name)")
            if not self.base_url:
                raise ValueError("openai_compat needs 'base_url', e.g. http://localhost:8000/v1")
        else:
            if self.base_url is not None:
                raise ValueError(f"base_url is only for openai_compat, not {self.kind}")
            if self.extra_body:
                raise ValueError(f"extra_body is only for openai_compat, not {self.kind}")
        if self.kind == "vllm" and not self.model:
            raise ValueError("vllm needs 'model' (a HF id or a local folder)")
        if self.kind == "embedded" and self.model is not None:
            raise ValueError(f"embedded always runs {EMBEDDED_MODEL}; use kind: vllm to name a model")
        if self.session_header is not None and not _HEADER_NAME.match(self.session_header):
            raise ValueError("session_header must be an HTTP header name (letters, digits, '-'), or null for none")
        return self

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None:
            _check_base_url(value)
        return value

    @field_validator("api_key_env")
    @classmethod
    def _check_key_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _ENV_NAME.match(value):
            raise ValueError("api_key_env must be the NAME of an environment variable, not the key itself")
        if looks_like_key(value) and value not in os.environ:
            raise ValueError("api_key_env looks like an API key itself, not the NAME of the environment variable "
                             "holding one (the value is not shown): export the key as, e.g., OPENAI_API_KEY "
                             "and give that name")
        return value

    def model_name(self) -> str:
        """The model behind this backend, as records name it: ``model``, or the embedded one's."""
        return self.model or EMBEDDED_MODEL


def _check_base_url(url: str) -> None:
    """A URL a client can connect to: http(s), a host, a port in range, no credentials (which would
    be stored and printed; the key goes in the variable ``api_key_env`` names)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("base_url must start with http:// or https://")
    if any(c.isspace() for c in url):
        raise ValueError("base_url must not contain spaces")
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError("base_url must not carry a user or password (user:pass@host): give the key through "
                         "api_key_env (the URL is not shown)")
    if not parts.hostname:
        raise ValueError("base_url has no host, e.g. http://localhost:8000/v1")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port when it is read
    except ValueError:
        raise ValueError("base_url has a port out of range (1-65535) or that is not a number") from None
    if parts.port == 0:
        raise ValueError("base_url has a port out of range (1-65535) or that is not a number")
