"""The openai SDK's CPU per request, by call path and transport (why openai_compat calls it as it does).

    python benchmarks/client_overhead.py [--requests 3000] [--in-flight 64] [--variants ...]

Each variant sends ``--requests`` critic-sized chat requests (9 messages, a JSON
schema in ``response_format``) through ``openai.AsyncOpenAI`` to the loopback
server (another process, no delay), ``--in-flight`` at a time, and prints this
process's CPU ms per request:

- ``create``: ``client.chat.completions.create(...)``, which coerces every param
  (messages, the whole schema) and builds a ``ChatCompletion`` model;
- ``raw``: ``client.chat.completions.with_raw_response.create(...)``;
- ``post``: ``client.post("/chat/completions", body=..., cast_to=object)``, the
  SDK's way to send a body as it is (openai_compat's ``transport: sdk``);

each on the SDK's default httpx transport and on its aiohttp one
(``openai.DefaultAioHttpClient``); and ``direct``: openai_compat's default path
(``agents.backends._openai_wire``: the client's URL, headers and errors, the
body POSTed on an aiohttp session).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from benchmarks._harness import loopback_server  # noqa: E402
from sparring.agents.backends._openai_wire import DirectChatPath, httpx_module  # noqa: E402

VARIANTS = ("httpx-create", "httpx-raw", "httpx-post", "aiohttp-create", "aiohttp-raw", "aiohttp-post", "direct")
SCHEMA = {"title": "Verdict", "type": "object", "additionalProperties": False, "required": ["reasoning", "violations"],
          "properties": {"reasoning": {"type": "string", "maxLength": 600},
                         "violations": {"type": "array", "maxItems": 4, "items": {
                             "type": "object", "additionalProperties": False,
                             "required": ["principle_id", "evidence", "severity"],
                             "properties": {"principle_id": {"type": "string", "enum": ["a.b", "c.d", "e.f"]},
                                            "evidence": {"type": "string", "maxLength": 300},
                                            "severity": {"type": "string", "enum": ["minor", "moderate", "major"]}}}}}}
MESSAGES = [{"role": "system", "content": "You are a careful judge. " * 20}] + [
    {"role": "user" if i % 2 else "assistant", "content": "That is a fair question and I have thought about it. " * 5}
    for i in range(8)]
FORMAT = {"type": "json_schema", "json_schema": {"name": "Verdict", "schema": SCHEMA, "strict": True}}


async def measure(variant: str, base_url: str, requests: int, in_flight: int) -> float:
    import openai

    httpx = httpx_module()
    transport, _, path = variant.partition("-")
    limits = httpx.Limits(max_connections=in_flight + 16, max_keepalive_connections=in_flight, keepalive_expiry=30)
    http = (openai.DefaultAioHttpClient if transport == "aiohttp" else openai.DefaultAsyncHttpxClient)(limits=limits)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60, http_client=http)
    direct = DirectChatPath(client, max_connections=in_flight + 16, timeout_s=60) if transport == "direct" else None
    body = {"model": "fake-model", "messages": MESSAGES, "response_format": FORMAT, "temperature": 0.0,
            "top_p": 1.0, "max_tokens": 300}
    slots = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with slots:
            if direct is not None:
                (await direct.post(body))["choices"][0]
            elif path == "create":
                _ = (await client.chat.completions.create(**body)).choices[0].message.content
            elif path == "raw":
                (await client.chat.completions.with_raw_response.create(**body)).http_response.json()
            else:
                (await client.post("/chat/completions", body=body, cast_to=object))["choices"][0]

    await asyncio.gather(*(one() for _ in range(200)))  # warm-up: connections, lazy imports
    cpu = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    cpu = time.process_time() - cpu
    if direct is not None:
        await direct.aclose()
    await client.close()
    return 1000 * cpu / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    with loopback_server(0.0) as base_url:
        for variant in args.variants:
            ms = asyncio.run(measure(variant, base_url, args.requests, args.in_flight))
            print(f"{variant:<15} {ms:6.2f} ms CPU per request", flush=True)


if __name__ == "__main__":
    main()
