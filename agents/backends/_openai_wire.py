"""The direct request path of ``openai_compat``: one ``POST /chat/completions`` on an aiohttp
session, dressed by the SDK client and failing with the SDK's own exceptions.

Why not ``client.post`` for every call: the SDK's request pipeline (options model,
httpx-style ``Request``/``Headers``/``URL`` objects, header merging, response wrappers)
costs ~1.1 ms of CPU per call above the wire itself on this kind of machine
(``benchmarks/client_overhead.py``: 1.5 ms through ``client.post`` on the SDK's aiohttp
transport, 0.37 ms here), and a run makes hundreds of calls a second. What the SDK
decides is kept: the URL (``client.base_url``), the headers it sends (``default_headers``
and ``auth_headers``, computed once), the timeout, and the error types; a non-2xx reply
is turned into an exception by the client's own ``_make_status_error_from_response``,
so ``openai_compat`` maps one family of errors whichever path sent the request.
``transport: sdk`` sends through ``client.post`` instead.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


class DirectChatPath:
    """POSTs chat-completion bodies for one SDK client. Create and close it inside the running loop."""

    def __init__(self, client: Any, *, max_connections: int, timeout_s: float) -> None:
        import aiohttp
        import yarl  # aiohttp's URL type

        self._client = client
        self._aiohttp = aiohttp
        self._url = str(client.base_url).rstrip("/") + "/chat/completions"
        self._target = yarl.URL(self._url)  # parsed once here rather than on every request
        # The SDK's headers as it would send them; ``Omit`` markers are headers it leaves out.
        headers = {**client.default_headers, **client.auth_headers}
        self._headers = {k: v for k, v in headers.items() if isinstance(v, str)}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # HTTP(S)_PROXY / NO_PROXY are honoured, as by the SDK's httpx client, but looked up
        # once: aiohttp's trust_env looks them (and ~/.netrc) up in a thread on every request.
        self._proxy = _env_proxy(self._url)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30.0),
            raise_for_status=False)

    async def aclose(self) -> None:
        await self._session.close()

    async def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        """The reply's parsed JSON body; its text when the body is not JSON and not labelled
        JSON (what ``client.post(..., cast_to=object)`` returns). ``headers`` go out with this
        request on top of the client's (the dialogue's session header). Raises ``openai`` errors:
        ``APIStatusError`` subclasses, ``APITimeoutError``, ``APIConnectionError``, and
        ``ValueError`` for a body labelled JSON that does not parse."""
        aiohttp = self._aiohttp
        try:
            async with self._session.post(self._target, data=orjson.dumps(body),
                                          headers={**self._headers, **headers} if headers else self._headers,
                                          timeout=self._timeout, proxy=self._proxy) as resp:
                status, content = resp.status, await resp.read()
                if status >= 300:
                    raise self._status_error(status, resp.headers, content)
                content_type = resp.headers.get("content-type", "")
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            import openai

            raise openai.APITimeoutError(request=self._request()) from exc
        except aiohttp.ClientError as exc:  # refused, reset, closed without a response, bad chunking
            import openai

            raise openai.APIConnectionError(request=self._request()) from exc
        try:
            return orjson.loads(content)  # ~3x faster than json on a reply, every call
        except ValueError:
            pass
        try:
            return json.loads(content)  # what orjson refuses and json takes: NaN, integers past 64 bits
        except ValueError:
            if "json" in content_type:
                raise
            return content.decode("utf-8", "replace")

    def _request(self) -> Any:
        """The SDK's request object, which its exceptions carry; only built when something failed."""
        return httpx_module().Request("POST", self._url)

    def _status_error(self, status: int, headers: Any, content: bytes) -> Exception:
        response = httpx_module().Response(status, headers=list(headers.items()), content=content,
                                           request=self._request())
        return self._client._make_status_error_from_response(response)


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP_PROXY``/``HTTPS_PROXY``, minus ``NO_PROXY``)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.netloc):  # type: ignore[attr-defined]  # not in typeshed
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def httpx_module() -> Any:
    """The HTTP models package the installed SDK is built on."""
    try:
        import httpx2  # openai >= 3

        return httpx2
    except ImportError:  # pragma: no cover - older openai
        import httpx

        return httpx
