"""HTTP/1.1 over asyncio streams: the small part of it an OpenAI client needs (keep-alive, Content-Length)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 408: "Request Timeout",
           422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line.strip():
        return None  # connection closed between requests
    method, target, _version = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code, "param": None}}


async def send_json(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any],
                    extra_headers: dict[str, str] | None = None) -> None:
    await send(writer, status, json.dumps(payload).encode(), "application/json", extra_headers)


async def send(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str,
               extra_headers: dict[str, str] | None = None) -> None:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"content-type: {content_type}",
            f"content-length: {len(body)}", "connection: keep-alive"]
    head += [f"{k}: {v}" for k, v in (extra_headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
