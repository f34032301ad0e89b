"""The openai_compat tests run on both of its request paths: ``transport: direct`` (the
default) and ``transport: sdk`` (the openai client's own ``client.post``)."""

from __future__ import annotations

import pytest

from tests.fakeserver import FakeOpenAIServer

TRANSPORTS = ("direct", "sdk")


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake_server(fake_server: FakeOpenAIServer, transport: str) -> FakeOpenAIServer:
    """The fault-injection server, handing out backend configs on ``transport``."""
    fake_server.backend_defaults = {"transport": transport}
    return fake_server
