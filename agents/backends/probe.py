"""Before a run: can each backend it will use work at all?

A server that refuses connections, never answers, refuses the key or does not serve the
configured model would otherwise fail every dialogue, each after its retries (seconds to
minutes apiece), and the run would end "completed (N failed)" without saying why. The probe
asks each ``openai_compat`` backend two cheap questions before anything is written:

1. ``GET /models`` (connection, auth, is the model listed);
2. when the model is not listed (Ollama lists ``llama3:latest`` for ``llama3``) or the server
   has no ``/models``, a one-token chat call: the server's own answer about the model.

Refused, no answer within ``timeout_s``, 401/403 and an unknown model raise
``BackendUnavailable`` (exit 2): one line naming the backend, its URL without credentials and
the cause. A 5xx or 429 is a server in trouble, not a wrong config: the probe notes it and the
run's retries take over. In-process engines (``embedded``, ``vllm``) have nothing to reach
before they start.

    results = await probe_backends({"backend": config})   # name -> BackendConfig
    results["backend"].detail                             # 'model listed by /models (12 ms)'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sparring.errors import BackendUnavailable
from sparring.redaction import redact_url, scrub

from .backend_config import BackendConfig
from .openai_compat import api_key, error_message

__all__ = ["PROBE_TIMEOUT_S", "ProbeResult", "probe_backends"]

PROBE_TIMEOUT_S = 10.0
"""Longest wait for one probe request (or the backend's ``retry.timeout_s`` when shorter)."""


@dataclass(frozen=True)
class ProbeResult:
    """What the probe found about one backend: usable (else it raised), and how it knows."""

    name: str
    detail: str
    seconds: float


async def probe_backends(configs: Mapping[str, BackendConfig], *,
                         timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, ProbeResult]:
    """Probe every backend at once; ``BackendUnavailable`` names the first (in ``configs`` order)
    that cannot work. ``InputError`` when a key variable is unset."""
    for config in configs.values():
        api_key(config)  # an unset key variable is bad input before anything is sent
    outcomes = await asyncio.gather(*(_probe(name, config, timeout_s) for name, config in configs.items()),
                                    return_exceptions=True)
    results: dict[str, ProbeResult] = {}
    for name, outcome in zip(configs, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        results[name] = outcome
    return results


async def _probe(name: str, config: BackendConfig, timeout_s: float) -> ProbeResult:
    t0 = time.perf_counter()
    if config.kind != "openai_compat":
        return ProbeResult(name, f"{config.kind}: an in-process engine, nothing to reach before it starts", 0.0)
    import openai

    key = api_key(config)
    where = f"{name} ({config.kind} at {redact_url(config.base_url or '')})"
    timeout = min(timeout_s, config.retry.timeout_s)
    client = openai.AsyncOpenAI(base_url=config.base_url, api_key=key or "not-needed", max_retries=0,
                                timeout=timeout)

    def fail(cause: str) -> BackendUnavailable:
        return BackendUnavailable(_clean(cause, key), source=f"backend {where}")

    try:
        listed = await _ask(client, "get", "/models", None, fail, timeout)
        served = _model_ids(listed) if isinstance(listed, dict) else None
        if served and config.model in served:
            detail = "model listed by /models"
        else:
            body = {"model": config.model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1}
            answer = await _ask(client, "post", "/chat/completions", body, fail, timeout,
                                model=config.model, served=served)
            detail = "a one-token chat call answered" if isinstance(answer, dict) else answer
        if isinstance(listed, str):
            detail = f"{detail} ({listed})"
    finally:
        await client.close()
    seconds = time.perf_counter() - t0
    return ProbeResult(name, f"{detail} ({seconds * 1000:.0f} ms)", seconds)


async def _ask(client: Any, method: str, path: str, body: dict[str, Any] | None, fail: Any, timeout: float, *,
               model: str | None = None, served: list[str] | None = None) -> dict[str, Any] | str:
    """The reply's JSON body, or a note (str) when the server answered in a way the run can live
    with; raises ``fail(cause)`` for what no retry fixes."""
    import openai

    try:
        if method == "get":
            reply = await client.get(path, cast_to=object)
        else:
            reply = await client.post(path, body=body, cast_to=object)
    except openai.APITimeoutError:
        raise fail(f"no answer within {timeout:g} s to {path} (is the server up, and is this its address?)") \
            from None
    except openai.APIConnectionError as exc:
        raise fail(f"cannot connect: {_root(exc)}") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise fail(f"the server refused the API key: HTTP {exc.status_code}: {error_message(exc)} "
                   "(check backend.api_key_env and the key it names)") from None
    except openai.APIStatusError as exc:
        status, message = exc.status_code, error_message(exc)
        if status >= 500 or status in (408, 409, 429):
            return f"{path} answered HTTP {status}: not verified, the run's retries take over"
        if method == "get":  # no /models here: the chat call decides
            return f"{path} answered HTTP {status}"
        if status == 404 or (status == 400 and "model" in message.lower()):
            known = f"; it serves: {', '.join(served[:8])}" if served else ""
            raise fail(f"the server does not serve model '{model}' (HTTP {status}: {message}){known}; "
                       "or base_url is not the API root (it usually ends in /v1)") from None
        return f"{path} answered HTTP {status}: {message}"
    except ValueError:  # a body that is not JSON
        return f"{path} answered with a body that is not JSON"
    return reply if isinstance(reply, dict) else f"{path} answered with a body that is not JSON"


def _model_ids(listed: dict[str, Any]) -> list[str]:
    data = listed.get("data")
    if not isinstance(data, list):
        return []
    return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]


def _root(exc: BaseException) -> str:
    seen = exc
    for _ in range(10):
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    text = str(seen) or type(seen).__name__
    return text if seen is not exc else "connection error"


def _clean(text: str, key: str | None) -> str:
    if key:
        text = text.replace(key, "***")
    return scrub(" ".join(text.split()))
