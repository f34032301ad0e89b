"""Shared fixtures: the real engines (see tests/engines.py) and the fault-injection server.

Order of a session: tests marked ``engine`` run first on the in-process engine,
which is closed as soon as a test that does not need it comes up; tests marked
``server`` run last, so the vLLM server starts only after that engine is gone.

Fast loop without any engine: ``python -m pytest tests -m "not engine and not server"``.
Anything that starts an engine runs under ``flock /tmp/sparring-engine.lock`` on shared machines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from sparring.agents.backends import Backend
from tests import engines
from tests.fakeserver import FakeOpenAIServer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> float:
        if item.get_closest_marker("engine"):
            # Tests that start their own engine (a CLI subprocess) after those sharing the in-process one.
            return 0.5 if "engine_in_subprocess" in getattr(item, "fixturenames", ()) else 0
        return 2 if item.get_closest_marker("server") else 1

    items.sort(key=rank)  # stable: file order is kept within each group


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _one_engine_at_a_time(request: pytest.FixtureRequest) -> None:
    """Free an engine the moment the tests that need it are done, not at session end."""
    if request.node.get_closest_marker("engine") is None:
        await engines.embedded.close()
    if request.node.get_closest_marker("server") is None:
        engines.server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session", autouse=True)
async def _engines_stopped_at_exit() -> AsyncIterator[None]:
    yield
    await engines.embedded.close()
    engines.server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def embedded_backend() -> Backend:
    """The started embedded backend (``create_backend(BackendConfig())``), shared by the session."""
    return await engines.embedded.get()


@pytest_asyncio.fixture(loop_scope="session")
async def engine_in_subprocess() -> None:
    """The test starts an engine in a process of its own (``sparring run``): the shared ones stop first."""
    await engines.embedded.close()
    engines.server.stop()


@pytest.fixture
def vllm_server() -> engines.VLLMServer:
    """vLLM's OpenAI-compatible server on the embedded model, started once per session."""
    return engines.server.ensure_started()


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    """A fresh fault-injection server per test (it starts in milliseconds)."""
    with FakeOpenAIServer() as server:
        yield server
