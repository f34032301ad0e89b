"""The self-play graph for LangGraph's own tools: ``langgraph dev`` (the local LangGraph server, which
LangGraph Studio opens) loads ``graph`` from here, as ``langgraph.json`` at the repository root says.

``graph`` is a factory the server calls with each run's config: it reads the sparring config named by
``configurable.sparring_config`` (per assistant or per run), else the ``SPARRING_CONFIG`` environment
variable, else ``examples/quickstart.yaml`` in the working directory, and returns the compiled graph
for it, without a checkpointer (the server brings its own). Its backends are made once per config and
started only when a run executes (the server also calls the factory to draw the graph and read its
schemas). Its input is ``{"job": ...}``, one dialogue job as JSON; print a config's jobs with::

    python -m sparring.graphs.studio examples/quickstart.yaml
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from sparring.agents.backends import Backend
from sparring.errors import InputError

from .runtime.role_backends import RoleBackends
from .runtime.run_request import RunRequest, iter_jobs, request_from_config
from .wiring import make_selfplay

__all__ = ["CONFIG_ENV", "graph"]

CONFIG_ENV = "SPARRING_CONFIG"
DEFAULT_CONFIG = Path("examples") / "quickstart.yaml"

_made: dict[str, tuple[RunRequest, RoleBackends]] = {}
_lock = asyncio.Lock()


def config_path(configurable: dict[str, Any]) -> Path:
    """The sparring config a run of the server uses."""
    named = configurable.get("sparring_config") or os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    raise InputError(f"name a sparring config: set {CONFIG_ENV}, or configurable.sparring_config on the "
                     "assistant or the run")


def _prepare(path: Path) -> tuple[RunRequest, RoleBackends]:
    request = request_from_config(path)
    return request, RoleBackends.create(request.config)


async def _start(backend: Backend, kind: str) -> None:
    """Start the backend once. An in-process engine (embedded, vllm) starts in a thread of its own, with its
    own short-lived event loop: its start imports torch and vLLM and reads files, which the server's
    blocking-call check refuses on its loop; the engine serves requests from any loop afterwards."""
    if kind == "openai_compat":
        await backend.start()  # its HTTP session belongs to the server's loop
    else:
        await asyncio.to_thread(asyncio.run, backend.start())


async def graph(config: dict[str, Any]) -> Any:
    """The compiled self-play graph of the config this run names (see the module's docstring)."""
    configurable = dict(config.get("configurable") or {})
    path = config_path(configurable)
    key = str(path.resolve())
    async with _lock:
        if key not in _made:
            # Reading files and making the backend block; the server checks that nothing blocks its loop.
            _made[key] = await asyncio.to_thread(_prepare, path)
        request, backends = _made[key]
        if configurable.get("__is_for_execution__", True):
            for backend in backends:
                await _start(backend, backend.config.kind)
    selfplay = make_selfplay(request, backends)
    return selfplay.build(checkpointer=None).with_config(recursion_limit=selfplay.recursion_limit())


def main(argv: list[str] | None = None) -> None:
    """Print the config's dialogue jobs as the server's inputs, one JSON object a line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m sparring.graphs.studio CONFIG")
    try:
        request = request_from_config(Path(args[0]))
    except InputError as exc:
        sys.exit(f"error: {exc}")
    for job in iter_jobs(request):
        print(json.dumps({"job": job.model_dump(mode="json")}, ensure_ascii=False))


if __name__ == "__main__":
    main()
