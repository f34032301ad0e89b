"""The data every backend speaks: messages in, a Completion out.

Messages are plain OpenAI-style dicts (``{"role": ..., "content": ...}``):
they go to the wire, into traces and into TRL rows unchanged, so a class
around them would only be converted back and forth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]
StructuredMode = Literal["none", "json_schema", "reask"]


class ChatMessage(TypedDict):
    role: Role
    content: str


MAX_RAISED_TOKENS = 8192
"""The stated cap on a raised budget: a re-ask of a cut reply never asks for more tokens."""


class SamplingParams(BaseModel):
    """Sampling for one stage of the pipeline (planner, persona, critic, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    """Softmax temperature; 0 is greedy."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    max_tokens: int = Field(512, ge=1, le=32768)
    """Upper bound on generated tokens for one call."""
    stop: tuple[str, ...] = ()
    """Strings that end generation (not included in the text)."""
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    """Penalise tokens by how often they already appeared (OpenAI semantics)."""
    repetition_penalty: float = Field(1.0, ge=0.5, le=2.0)
    """vLLM-style multiplicative penalty on repeated tokens; 1 = off. Sent to OpenAI-compatible
    servers only when not 1 (vLLM's server accepts it, OpenAI's does not)."""
    seed: int | None = None
    """Per-request seed where the backend honours one; stages derive it from the job seed."""
    logprobs: int | None = Field(None, ge=0, le=20)
    """Return this many top log-probabilities per generated token (G-Eval scoring)."""

    def with_seed(self, seed: int | None) -> SamplingParams:
        return self if seed == self.seed else self.model_copy(update={"seed": seed})

    def with_room(self) -> SamplingParams:
        """The same request with twice the token budget, at most ``MAX_RAISED_TOKENS``: a re-ask of a
        reply cut at the limit.

            >>> SamplingParams(max_tokens=220).with_room().max_tokens
            440
        """
        return self.model_copy(update={"max_tokens": min(self.max_tokens * 2, MAX_RAISED_TOKENS)})


@dataclass(slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class TokenLogprob:
    """One generated token with its top alternatives (token -> log-probability)."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class RawCompletion:
    """What one adapter call returns, before validation and re-asking."""

    text: str
    usage: TokenUsage
    finish_reason: str | None
    model: str
    logprobs: list[TokenLogprob] | None = None


@dataclass(slots=True)
class Completion:
    """The result of ``ChatBackend.complete``: one logical call, retries included."""

    text: str
    """Raw text of the final reply."""
    parsed: BaseModel | None
    """The validated object when a schema was asked, else None."""
    usage: TokenUsage
    """Tokens summed over every attempt and re-ask of this call."""
    finish_reason: str | None
    """``stop``, ``length``, ... of the final reply."""
    model: str
    """Model name the backend reported."""
    latency_s: float
    """Wall time of the whole call, waits for a free slot excluded."""
    retries: int = 0
    """Transient-error retries plus structured-output re-asks."""
    structured_mode: StructuredMode = "none"
    """How the schema was enforced: constrained decoding, parse-and-re-ask, or none asked."""
    logprobs: list[TokenLogprob] | None = None


@runtime_checkable
class ChatBackend(Protocol):
    """What every role of the pipeline calls. See ``agents.backends.base.Backend``."""

    provider: str
    model: str

    async def start(self) -> None: ...

    async def complete(self, messages: list[ChatMessage], params: SamplingParams,
                       schema: type[BaseModel] | None = None, *, agent: str | None = None) -> Completion: ...

    async def aclose(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...
