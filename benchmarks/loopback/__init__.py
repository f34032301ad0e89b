"""A loopback OpenAI-compatible chat server with a programmable fault plan.

For tests of retries and structured-output fallback, for runner/fault-injection
tests and for the orchestration-overhead benchmark: it answers in
microseconds (or after ``reply_delay_s``), so what is measured is our code,
not a model. Stdlib only; it runs its own event loop in a daemon thread, so
sync tests, async tests and subprocesses (``sparring doctor``) can all talk
to it.

    with FakeOpenAIServer() as server:
        server.fail("http_500", times=2)           # the next two chat calls answer 500
        backend = create_backend(server.backend_config(retry=RetryConfig(...)))
        ...
        assert server.stats.chat_requests == 3

Replies: ``responder(body) -> str`` when given; else, when ``response_format``
asks for a JSON schema, the smallest instance of that schema
(``minimal_instance``, in ``schema``); else ``reply_text``.

Fault kinds (``fail(kind, times=N, **options)`` queues N of them, consumed in
order by chat requests; ``fail_share(kind, share)`` hits that share of the
calls not covered by the queue, from a seeded RNG so runs repeat; ``fail_mix({kind: share, ...})``
several kinds at once):

- ``http_500``: 500 with an OpenAI-style error body.
- ``http_429``: 429 with ``retry-after`` (option ``retry_after`` seconds, default 0)
  or ``retry-after-ms`` (option ``retry_after_ms``).
- ``status``: any status (option ``status``, default 400) and ``message``; the
  text ``{api_key}`` in the message becomes the bearer token the client sent,
  as some servers echo it back.
- ``slow``: a valid reply, but only after ``delay_s`` (default 5 s): longer than
  a client timeout.
- ``garbage``: 200 with a non-JSON body (option ``content_type``, default
  ``application/json``).
- ``no_choices``: 200 with a JSON body that lacks ``choices``.
- ``drop``: the connection is closed without any response.
- ``bad_json``: 200 with the reply's content cut in the middle (``finish_reason: stop``), as a
  dropped stream or a proxy leaves it: a JSON reply is no longer JSON.

Other knobs: ``model`` (a request naming another model gets a 404, as real
servers do), ``schema_support`` (``honour``; ``ignore``: the schema never reaches the
model, the reply is what it says without one; ``reject``: 400 naming response_format),
``prompt_schema`` (a request without a schema is answered with JSON when its system message
spells the schema out in full, as a model told the format would; off by default: free text),
``api_key`` (every request without that bearer token gets a 401), ``reply_delay_s``
(latency of every normal reply), ``request_log`` (a file that gets a JSON line per
chat request, its time and headers but ``authorization``, flushed at once, so a test
can read it after killing the server's process).

Besides chat it answers ``GET /v1/models``, ``GET /health`` (what routers such as
vllm-router probe before sending it work) and ``GET /_stats`` (the counters, for
a benchmark in another process); ``stats.sessions`` counts chat requests by their
``x-session-id`` header.
"""

from .schema import minimal_instance
from .server import FAULT_KINDS, FakeOpenAIServer, Fault, Request, ServerStats

__all__ = ["FAULT_KINDS", "FakeOpenAIServer", "Fault", "Request", "ServerStats", "minimal_instance"]
