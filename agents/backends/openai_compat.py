"""Adapter for any OpenAI-compatible chat server: OpenAI, ``vllm serve``, llama.cpp, Ollama.

The SDK's own retries are switched off (``max_retries=0``): ``_retry`` is the
one retry layer. Every SDK error is mapped to transient or permanent here, and
every message that leaves this module has the API key scrubbed from it.

CPU per request matters at hundreds of requests in flight (measured on the
loopback server, 64 in flight, a critic-sized request: 8.3 ms per call through
``chat.completions.create`` on the default httpx transport, 1.5 ms through
``client.post`` on the aiohttp transport, 0.4 ms on the direct path), so:

- ``transport: direct`` (the default) sends each request on an aiohttp session
  with the URL, headers, auth and timeout the SDK client decided, and raises
  the SDK's exceptions, built by the client (``_openai_wire``);
- ``transport: sdk`` sends through ``client.post("/chat/completions", body=...,
  cast_to=object)`` on the SDK's aiohttp transport: the SDK's whole request
  path, without ``create()``'s walk over every message and the whole JSON
  schema to coerce TypedDict params (~5 ms a call) and its ``ChatCompletion``
  model, neither of which we need.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import re
import time
from typing import Any

from sparring.errors import BackendError, InputError, SchemaUnsupported, TransientBackendError
from sparring.redaction import looks_like_key, redact_url, scrub

from ._openai_wire import DirectChatPath, httpx_module
from .backend_config import BackendConfig
from .base import Backend
from .messages import ChatMessage, RawCompletion, SamplingParams, TokenLogprob, TokenUsage
from .session import current_session

# Words servers use when they refuse a response_format they do not implement.
_SCHEMA_REFUSAL = re.compile(r"response_format|json_schema|structured|grammar|guided", re.I)


class OpenAICompatBackend(Backend):
    provider = "openai"

    def __init__(self, config: BackendConfig) -> None:
        assert config.model and config.base_url
        super().__init__(config, config.model)
        self._api_key = api_key(config)
        self._client: Any = None
        self._direct: Any = None  # DirectChatPath, unless transport is "sdk"
        # OpenAI's strict mode refuses some keywords (maxLength, ...) that vLLM honours;
        # once refused, schemas are sent without them before giving up on constraints.
        self._plain_schemas = False
        self._strict_cache: dict[tuple[int, bool], tuple[dict[str, Any], dict[str, Any]]] = {}

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise BackendError("the openai package is missing: pip install openai") from exc
        http_client = _http_client(openai, self.config.max_in_flight)
        # Local servers accept any key; the SDK insists on one being set.
        self._client = openai.AsyncOpenAI(
            base_url=self.config.base_url, api_key=self._api_key or "not-needed",
            max_retries=0, timeout=self.config.retry.timeout_s, http_client=http_client)
        if self.config.transport == "direct":
            self._direct = DirectChatPath(self._client, max_connections=self.config.max_in_flight + 16,
                                          timeout_s=self.config.retry.timeout_s)

    async def aclose(self) -> None:
        if self._direct is not None:
            await self._direct.aclose()
            self._direct = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "base_url": redact_url(self.config.base_url or ""),
                "transport": self.config.transport, "session_header": self.config.session_header}

    def where(self) -> str:
        return f"openai_compat backend {self.model} at {redact_url(self.config.base_url or '')}"

    async def _generate(self, messages: list[ChatMessage], params: SamplingParams,
                        json_schema: dict[str, Any] | None) -> RawCompletion:
        if self._client is None:
            await self.start()
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": messages, "temperature": params.temperature,
            "top_p": params.top_p, "max_tokens": params.max_tokens,
        }
        if params.frequency_penalty:
            kwargs["frequency_penalty"] = params.frequency_penalty
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = params.logprobs
        extra = dict(self.config.extra_body)
        if params.repetition_penalty != 1.0:
            extra.setdefault("repetition_penalty", params.repetition_penalty)
        kwargs.update(extra)  # what the SDK does with extra_body: top-level keys of the JSON body
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": str(json_schema.get("title") or "reply")[:64],
                "schema": self._strict(json_schema), "strict": True}}
            try:
                return await self._create(kwargs, json_schema)
            except SchemaUnsupported:
                if self._plain_schemas:
                    raise
                self._plain_schemas = True
                kwargs["response_format"]["json_schema"]["schema"] = self._strict(json_schema)
        return await self._create(kwargs, json_schema)

    def _strict(self, json_schema: dict[str, Any]) -> dict[str, Any]:
        """``strict_schema`` computed once per schema: agents pass the same cached dicts on every call."""
        key = (id(json_schema), self._plain_schemas)
        hit = self._strict_cache.get(key)
        if hit is None or hit[0] is not json_schema:  # the id of a freed dict may be reused
            hit = (json_schema, strict_schema(json_schema, plain=self._plain_schemas))
            self._strict_cache[key] = hit
        return hit[1]

    async def _create(self, kwargs: dict[str, Any], json_schema: dict[str, Any] | None) -> RawCompletion:
        import openai

        session = current_session()
        headers = {self.config.session_header: session} if session and self.config.session_header else None
        try:
            # The parsed JSON body as it came (a dict), or its text when the content-type is not JSON.
            if self._direct is not None:
                resp = await self._direct.post(kwargs, headers)
            else:
                resp = await self._client.post("/chat/completions", body=kwargs, cast_to=object,
                                               options={"headers": headers} if headers else {})
        except openai.RateLimitError as exc:
            raise TransientBackendError(self._scrub(f"429 rate limited: {error_message(exc)}"),
                                        retry_after=_retry_after(exc)) from None
        except openai.APITimeoutError as exc:
            # The aiohttp transport reports a connection closed without a response as a
            # timeout too (httpx's ConnectTimeout); name what really happened.
            cause = _root_cause(exc)
            if cause is not exc and "timeout" not in type(cause).__name__.lower():
                raise TransientBackendError(self._scrub(
                    f"connection error to {redact_url(self.config.base_url or '')}: "
                    f"{type(cause).__name__}: {cause}")) from None
            raise TransientBackendError(f"timed out after {self.config.retry.timeout_s:g}s") from None
        except openai.APIConnectionError as exc:
            # The SDK's own text is a bare "Connection error."; the cause says what happened
            # (refused, reset, closed without a response).
            cause = exc.__cause__ or exc.__context__ or exc
            raise TransientBackendError(self._scrub(
                f"connection error to {redact_url(self.config.base_url or '')}: "
                f"{type(cause).__name__}: {cause}")) from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            text = self._scrub(f"HTTP {status}: {error_message(exc)}")
            if status >= 500 or status in (408, 409):
                raise TransientBackendError(text, retry_after=_retry_after(exc)) from None
            if json_schema is not None and status in (400, 422) and _SCHEMA_REFUSAL.search(error_message(exc)):
                raise SchemaUnsupported(text) from None
            if status == 404:
                text += f" (is '{self.model}' the model name the server serves?)"
            raise BackendError(text) from None
        except openai.APIResponseValidationError as exc:
            raise TransientBackendError(self._scrub(f"malformed response: {exc}")) from None
        except ValueError as exc:  # a body that is not JSON at all
            raise TransientBackendError(self._scrub(f"malformed response: the body is not JSON ({exc})")) from None
        if isinstance(resp, str):
            # A 200 whose content-type is not JSON: the SDK hands back the body as text.
            raise TransientBackendError(self._scrub(f"malformed response: the body is not JSON: {resp[:80]!r}"))
        return self._to_raw(resp)

    def _to_raw(self, resp: dict[str, Any]) -> RawCompletion:
        try:
            choice = resp["choices"][0]
            text = choice["message"].get("content") or ""
            usage = resp.get("usage") or {}
            raw = RawCompletion(
                text=text, usage=TokenUsage(prompt_tokens=usage.get("prompt_tokens") or 0,
                                       completion_tokens=usage.get("completion_tokens") or 0),
                finish_reason=choice.get("finish_reason"), model=resp.get("model") or self.model)
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise TransientBackendError(f"malformed response: no choices[0].message in the body "
                                        f"({type(exc).__name__})") from None
        content = (choice.get("logprobs") or {}).get("content")
        if content:
            raw.logprobs = [TokenLogprob(token=t["token"], logprob=t["logprob"],
                                         top={a["token"]: a["logprob"] for a in (t.get("top_logprobs") or [])})
                            for t in content]
        return raw

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return scrub(text)


def api_key(config: BackendConfig) -> str | None:
    """The key ``config.api_key_env`` names; InputError when that variable is unset or empty. A
    value that is a key itself rather than a name (a common slip) is never echoed back."""
    name = config.api_key_env
    if not name:
        return None
    value = os.environ.get(name)
    if value:
        return value
    if looks_like_key(name):
        raise InputError("looks like an API key itself, not the NAME of the environment variable holding one "
                         "(the value is not shown): export the key as, e.g., OPENAI_API_KEY and give that name",
                         field="backend.api_key_env")
    raise InputError(f"environment variable {name} is not set (or empty)", field="backend.api_key_env")


_LENGTH_KEYWORDS = {"maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum"}


def strict_schema(schema: dict[str, Any], *, plain: bool = False) -> dict[str, Any]:
    """A copy of a pydantic JSON schema in the shape OpenAI's ``strict`` mode accepts:
    every object closed (``additionalProperties: false``) and every property required.
    ``plain`` also drops length and range bounds, for servers that refuse them."""
    dropped = {"default", *(_LENGTH_KEYWORDS if plain else ())}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items() if k not in dropped}
            if out.get("type") == "object" and "properties" in out:
                out["additionalProperties"] = False
                out["required"] = list(out["properties"])
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def error_message(exc: Any) -> str:
    """The message of an openai error: the server's own ``error.message`` when it sent one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        if isinstance(err, str):
            return err[:500]
    return str(getattr(exc, "message", exc))[:500]


def _retry_after(exc: Any) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, retry-after as seconds or HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _http_client(openai: Any, max_in_flight: int) -> Any:
    """The SDK's aiohttp-based client when aiohttp is installed, else its httpx one; either way
    a pooled connection per request in flight (the SDK's default pool keeps 100)."""
    httpx = httpx_module()
    n = max(max_in_flight, 10)
    limits = httpx.Limits(max_connections=n + 16, max_keepalive_connections=n, keepalive_expiry=30.0)
    try:
        return openai.DefaultAioHttpClient(limits=limits)
    except RuntimeError:  # the SDK says so when aiohttp is missing
        return openai.DefaultAsyncHttpxClient(limits=limits)


def _root_cause(exc: BaseException) -> BaseException:
    seen = exc
    for _ in range(10):  # exception chains are short; the bound only guards against a cycle
        nxt = seen.__cause__ or seen.__context__
        # asyncio times out by cancelling: a CancelledError under a timeout is how, not what.
        if nxt is None or isinstance(nxt, asyncio.CancelledError):
            break
        seen = nxt
    return seen
