"""An ASGI middleware that gives vLLM's OpenAI server a request log of its own: every chat request's
headers and body, one JSON line each, in the file ``$SPARRING_REQUEST_LOG`` (tests read it to see
what reached the server). vLLM loads it with ``--middleware tests.request_log.RequestLog``."""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["RequestLog"]


class RequestLog:
    """Passes every request through unchanged, writing down chat requests as their body arrives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.path = os.environ.get("SPARRING_REQUEST_LOG")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.path or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        chunks: list[bytes] = []

        async def receive_and_log() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    line = json.dumps({"headers": headers, "body": json.loads(b"".join(chunks) or b"null")})
                    with open(self.path, "a", encoding="utf-8") as fh:  # type: ignore[arg-type]
                        fh.write(line + "\n")
            return message

        await self.app(scope, receive_and_log, send)
