"""FakeOpenAIServer: the server, its fault plan and its counters (usage in the package docstring)."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .schema import minimal_instance
from .wire import error_body, read_request, send, send_json

FAULT_KINDS = ("http_500", "http_429", "status", "slow", "garbage", "no_choices", "drop", "bad_json")
PROMPT_SCHEMA = "It must match this JSON schema: "
"""How a prompt that carries the whole schema says so (agents.backends._retry.format_instruction)."""
SchemaSupport = Literal["honour", "ignore", "reject"]
Responder = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Fault:
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")


@dataclass
class ServerStats:
    """Counters since start (or ``reset``); read them through ``FakeOpenAIServer.stats``."""

    chat_requests: int = 0
    model_requests: int = 0
    concurrent: int = 0
    max_concurrent: int = 0
    """Most chat requests the server was handling at one moment (faults included)."""
    faults: Counter[str] = field(default_factory=Counter)
    """Faults served, by kind."""
    sessions: Counter[str] = field(default_factory=Counter)
    """Chat requests by the value of their ``x-session-id`` header (``""``: none), faults included."""


@dataclass
class Request:
    """One recorded chat request: parsed JSON body and lower-cased headers."""

    body: dict[str, Any]
    headers: dict[str, str]


class FakeOpenAIServer:
    """See the module docstring. Thread-safe: plan and stats may be touched while requests run."""

    def __init__(self, *, model: str = "fake-model", reply_text: str = "ok", responder: Responder | None = None,
                 schema_support: SchemaSupport = "honour", reply_delay_s: float = 0.0,
                 record_requests: bool = True, host: str = "127.0.0.1", port: int = 0,
                 fast_loop: bool = False, prompt_schema: bool = False, api_key: str | None = None,
                 request_log: str | None = None, cut_at_max_tokens: bool = False) -> None:
        self.model = model
        self.cut_at_max_tokens = cut_at_max_tokens
        """Honour each request's ``max_tokens`` as a real server does, a character standing for a token (the
        worst case): a longer reply is cut there and answered with ``finish_reason: length``."""
        self.reply_text = reply_text
        self.responder = responder
        self.schema_support = schema_support
        self.prompt_schema = prompt_schema
        self.api_key = api_key
        """When set, every request without ``Authorization: Bearer <api_key>`` gets a 401, as real servers do."""
        """The fake model follows a JSON schema written out in full in the prompt (as a real model
        told the format would) when the request carries none it honours. Off: such a request is
        answered with free text, as a server that ignores schemas and a model that ignores the
        prompt would."""
        self.reply_delay_s = reply_delay_s
        self.record_requests = record_requests
        self.host = host
        self.port = port
        self.fast_loop = fast_loop
        """Serve on uvloop when it is installed (the benchmark's server must not be the bottleneck)."""
        self.request_log = open(request_log, "a", encoding="utf-8") if request_log else None  # noqa: SIM115
        """A JSON line per chat request (time, headers but authorization), flushed at once: what a
        test reads after killing the server's process."""
        self.backend_defaults: dict[str, Any] = {}
        """Fields every ``backend_config()`` gets unless overridden (tests set the transport here)."""
        self.requests: list[Request] = []
        self._stats = ServerStats()
        self._queue: deque[Fault] = deque()
        self._share: tuple[list[tuple[Fault, float]], random.Random] | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # -- control, from any thread ------------------------------------------------
    @property
    def base_url(self) -> str:
        """What ``openai.AsyncOpenAI(base_url=...)`` and ``BackendConfig.base_url`` want."""
        return f"http://{self.host}:{self.port}/v1"

    def backend_config(self, **overrides: Any) -> Any:
        """A ``BackendConfig`` for ``openai_compat`` pointed at this server."""
        from sparring.agents.backends.backend_config import BackendConfig

        return BackendConfig(**{"kind": "openai_compat", "base_url": self.base_url, "model": self.model,
                                **self.backend_defaults, **overrides})

    def fail(self, kind: str, times: int = 1, **options: Any) -> None:
        """Queue ``times`` faults of ``kind``; the next chat requests get them, in order."""
        with self._lock:
            self._queue.extend(Fault(kind, options) for _ in range(times))

    def fail_share(self, kind: str, share: float, *, seed: int = 0, **options: Any) -> None:
        """Give a fault to ``share`` (0..1) of the chat requests the queue does not cover."""
        self.fail_mix({kind: share}, seed=seed, options={kind: options})

    def fail_mix(self, shares: dict[str, float], *, seed: int = 0,
                 options: dict[str, dict[str, Any]] | None = None) -> None:
        """Several fault kinds at once: ``shares`` maps a kind to the share of calls it hits
        (one seeded draw per call; the shares must sum to at most 1). Replaces any earlier share."""
        if any(not 0.0 <= v <= 1.0 for v in shares.values()) or sum(shares.values()) > 1.0 + 1e-9:
            raise ValueError("shares must lie in [0, 1] and sum to at most 1")
        plan = [(Fault(kind, (options or {}).get(kind, {})), share) for kind, share in shares.items()]
        with self._lock:
            self._share = (plan, random.Random(seed))

    def reset(self) -> None:
        """Forget the fault plan, the counters and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self._share = None
            self._stats = ServerStats()
            self.requests.clear()

    @property
    def stats(self) -> ServerStats:
        """A snapshot of the counters."""
        with self._lock:
            s = self._stats
            return ServerStats(s.chat_requests, s.model_requests, s.concurrent, s.max_concurrent, Counter(s.faults),
                               Counter(s.sessions))

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = _new_loop(self.fast_loop)

        def run() -> None:
            loop = self._loop
            assert loop is not None
            asyncio.set_event_loop(loop)
            try:
                # A deep backlog: benchmarks open hundreds of connections at once.
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve_connection, self.host, self.port, backlog=2048))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start(), not lost in the thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None
        if self.request_log is not None:
            self.request_log.close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    # -- HTTP ------------------------------------------------------------------------
    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:  # HTTP/1.1 keep-alive: the client pools connections
                request = await read_request(reader)
                if request is None or not await self._route(*request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away or spoke nonsense; nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): ending quietly keeps asyncio from logging the cancelled handler
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _route(self, method: str, path: str, headers: dict[str, str], body: bytes,
                     writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False closes the connection."""
        path = path.split("?", 1)[0].rstrip("/")
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            await send_json(writer, 401, error_body("Incorrect API key provided.", "invalid_api_key"))
            return True
        if method == "GET" and path == "/v1/models":
            with self._lock:
                self._stats.model_requests += 1
            await send_json(writer, 200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "created": 0, "owned_by": "fakeserver"}]})
            return True
        if method == "GET" and path == "/health":  # what routers probe (vLLM's server answers it too)
            await send(writer, 200, b"", "text/plain")
            return True
        if method == "GET" and path == "/_stats":  # for benchmarks in another process
            s = self.stats
            await send_json(writer, 200, {"chat_requests": s.chat_requests, "concurrent": s.concurrent,
                                          "max_concurrent": s.max_concurrent, "faults": dict(s.faults),
                                          "sessions": dict(s.sessions)})
            return True
        if method == "POST" and path == "/v1/chat/completions":
            return await self._chat(headers, body, writer)
        await send_json(writer, 404, error_body(f"no route for {method} {path}", "not_found"))
        return True

    async def _chat(self, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter) -> bool:
        try:
            body = json.loads(raw)
        except ValueError:
            await send_json(writer, 400, error_body("request body is not JSON", "invalid_request_error"))
            return True
        with self._lock:
            stats = self._stats
            stats.chat_requests += 1
            stats.concurrent += 1
            stats.max_concurrent = max(stats.max_concurrent, stats.concurrent)
            stats.sessions[headers.get("x-session-id", "")] += 1
            if self.record_requests:
                self.requests.append(Request(body, headers))
            if self.request_log is not None:
                logged = {k: v for k, v in headers.items() if k != "authorization"}
                self.request_log.write(json.dumps({"t": time.time(), "headers": logged}) + "\n")
                self.request_log.flush()
            fault = self._next_fault()
            if fault is not None:
                stats.faults[fault.kind] += 1
        try:
            if fault is not None:
                return await self._serve_fault(fault, headers, body, writer)
            if self.reply_delay_s:
                await asyncio.sleep(self.reply_delay_s)
            status, payload = self._reply(body)
            await send_json(writer, status, payload)
            return True
        finally:
            with self._lock:
                stats.concurrent -= 1

    def _next_fault(self) -> Fault | None:
        if self._queue:
            return self._queue.popleft()
        if self._share is not None:
            plan, rng = self._share
            draw = rng.random()
            for fault, share in plan:
                if draw < share:
                    return fault
                draw -= share
        return None

    async def _serve_fault(self, fault: Fault, headers: dict[str, str], body: dict[str, Any],
                           writer: asyncio.StreamWriter) -> bool:
        opts = fault.options
        if fault.kind == "http_500":
            await send_json(writer, 500, error_body(opts.get("message", "injected server error"), "server_error"))
        elif fault.kind == "http_429":
            extra = {}
            if "retry_after_ms" in opts:
                extra["retry-after-ms"] = str(opts["retry_after_ms"])
            else:
                extra["retry-after"] = str(opts.get("retry_after", 0))
            await send_json(writer, 429, error_body("injected rate limit", "rate_limit_exceeded"), extra)
        elif fault.kind == "status":
            key = headers.get("authorization", "").removeprefix("Bearer ")
            message = str(opts.get("message", "injected error")).replace("{api_key}", key)
            await send_json(writer, int(opts.get("status", 400)), error_body(message, "invalid_request_error"))
        elif fault.kind == "slow":
            await asyncio.sleep(float(opts.get("delay_s", 5.0)))
            status, payload = self._reply(body)
            await send_json(writer, status, payload)
        elif fault.kind == "garbage":
            await send(writer, 200, b"<html>this is not JSON{", opts.get("content_type", "application/json"))
        elif fault.kind == "no_choices":
            await send_json(writer, 200, {"id": "chatcmpl-broken", "object": "chat.completion",
                                           "model": self.model, "created": int(time.time())})
        elif fault.kind == "drop":
            writer.transport.abort()
            return False
        elif fault.kind == "bad_json":
            status, payload = self._reply(body)
            if status == 200:  # the reply cut in the middle, as a dropped stream or a proxy leaves it
                message = payload["choices"][0]["message"]
                message["content"] = message["content"][:max(len(message["content"]) // 2, 1) - 1]
            await send_json(writer, status, payload)
        return True

    # -- replies -------------------------------------------------------------------------
    def _reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("model") != self.model:
            return 404, error_body(f"The model `{body.get('model')}` does not exist.", "model_not_found")
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        if fmt and self.schema_support == "reject":
            return 400, error_body("response_format json_schema is not supported by this server",
                                   "invalid_request_error")
        if self.schema_support != "honour":  # the schema never reaches the model
            body = {k: v for k, v in body.items() if k != "response_format"}
            fmt, schema = {}, None
        if schema is None and self.prompt_schema:
            schema = _schema_in_prompt(body)
            if schema is not None:
                fmt = {"type": "json_schema", "json_schema": {"schema": schema}}
                body = {**body, "response_format": fmt}
        if self.responder is not None:
            text = self.responder(body)
        elif schema is not None:
            text = json.dumps(minimal_instance(schema))
        elif fmt.get("type") == "json_object":
            text = "{}"
        else:
            text = self.reply_text
        finish = "stop"
        if self.cut_at_max_tokens and isinstance(body.get("max_tokens"), int) and len(text) > body["max_tokens"]:
            text, finish = text[:body["max_tokens"]], "length"
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion_words = len(text.split())
        return 200, {
            "id": f"chatcmpl-{random.getrandbits(48):012x}", "object": "chat.completion",
            "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                      "total_tokens": prompt_words + completion_words},
        }


def _schema_in_prompt(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request's system message spells out in full, if it does."""
    for message in body.get("messages", []):
        content = str(message.get("content", ""))
        if message.get("role") == "system" and PROMPT_SCHEMA in content:
            try:
                schema = json.loads(content.rsplit(PROMPT_SCHEMA, 1)[1])
            except ValueError:
                return None
            return schema if isinstance(schema, dict) else None
    return None


def _new_loop(fast: bool) -> asyncio.AbstractEventLoop:
    if fast:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
