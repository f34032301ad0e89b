"""``sparring.run``, ``sparring.arun`` and ``sparring.build_graph``: a run and its graph from Python.

The library path is safe in a notebook: it installs no signal handler (cancel the task, or
interrupt the kernel, and the run stops as Ctrl-C stops ``sparring run``: records kept,
manifest says ``interrupted``, the same call again continues it), forks only when the config
asks for ``workers > 1``, and puts back what it changes in the process (the cycle collector's
settings, file descriptors 1 and 2 while the engine's output goes to RUN_DIR/engine.log).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

from sparring.agents.backends import Backend, ChatMessage, SamplingParams, create_backend
from sparring.agents.backends.messages import RawCompletion
from sparring.graphs.run_config import Overrides, RunConfig
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.progress import Progress
from sparring.graphs.runtime.role_backends import RoleBackends
from sparring.graphs.runtime.run_request import request_for_run, request_from_config
from sparring.graphs.runtime.run_result import RunResult
from sparring.graphs.wiring import make_selfplay

__all__ = ["arun", "build_graph", "run"]

ConfigLike = str | os.PathLike[str] | Mapping[str, Any] | RunConfig
"""A config file's path, a mapping of its keys (as the YAML would hold them), or a ``RunConfig``."""


def _path(value: str | os.PathLike[str] | Mapping[str, Any] | RunConfig) -> str | Path | Mapping[str, Any] | RunConfig:
    return Path(value) if isinstance(value, os.PathLike) else value


def run(config: ConfigLike, *, out: str | os.PathLike[str] | None = None, overrides: Overrides | None = None,
        max_dialogues: int | None = None, shard: str | None = None, progress: bool = True) -> RunResult:
    """Run ``config`` to the end and return what it came to; ``sparring run CONFIG`` from Python.

    ``out``: the run directory (default ``output_dir``, else ``runs/<name>``); a directory made by the
    same config is continued. ``overrides``: dotted keys, ``{"dialogue.max_turns": 4}`` (or ``--set``
    texts, ``["dialogue.max_turns=4"]``). ``max_dialogues``: simulate at most that many. ``config`` may
    also be a plan directory (``sparring plan``) and ``shard`` ``"K/N"``: one shard of it, as
    ``sparring run PLAN_DIR --shard K/N`` runs it (the same request, the same run). ``progress``:
    progress lines on stderr. Bad input raises ``sparring.errors.InputError`` (one line naming the
    file or key) before anything is written. Inside a running event loop (Jupyter, an async
    application) use ``await sparring.arun(...)``.

    Example::

        import sparring

        result = sparring.run("examples/quickstart.yaml", out="runs/qs", overrides={"dialogue.max_turns": 4})
        print(result.status, result.counts.pairs, result.run_dir)
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun(config, out=out, overrides=overrides, max_dialogues=max_dialogues, shard=shard,
                                progress=progress))
    raise RuntimeError("sparring.run() cannot start inside a running event loop (Jupyter, an async "
                       "application): use `await sparring.arun(...)` there")


async def arun(config: ConfigLike, *, out: str | os.PathLike[str] | None = None,
               overrides: Overrides | None = None, max_dialogues: int | None = None, shard: str | None = None,
               progress: bool = True) -> RunResult:
    """``sparring.run`` as a coroutine, for code that already runs an event loop (a notebook cell:
    ``result = await sparring.arun("config.yaml")``). Cancelling the task stops the run cleanly."""
    request = request_for_run(_path(config), overrides or (), shard=shard, out=Path(out) if out is not None else None,
                              max_dialogues=max_dialogues)
    return await execute(request, progress=Progress(enabled=progress), signals=False, engine_log=True)


class _LoopScoped(Backend):
    """The backend of a built graph, which outlives any one event loop: the configured backend is started
    in the loop of the first call and closed when that loop shuts down (the end of ``asyncio.run``; a
    notebook's loop never does), then started again in the next loop. Its HTTP session or engine output
    task belongs to one loop, so a second ``asyncio.run`` would otherwise fail on a closed loop."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.config, inner.model)
        self.provider = inner.provider
        self._inner = inner
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    async def _closes_with_the_loop(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:  # the loop's shutdown_asyncgens (asyncio.run's end) closes us here
            self._loop = None
            await self._inner.aclose()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        await self._inner.start()
        self._loop, self._closer = loop, self._closes_with_the_loop()
        await anext(self._closer)  # its first step registers it with this loop

    async def aclose(self) -> None:
        closer, self._closer = self._closer, None
        if closer is not None:
            await closer.aclose()

    def describe(self) -> dict[str, Any]:
        return self._inner.describe()

    async def _generate(self, messages: list[ChatMessage], params: SamplingParams,
                        json_schema: dict[str, Any] | None) -> RawCompletion:
        await self.start()
        return await self._inner._generate(messages, params, json_schema)


def build_graph(config: ConfigLike, *, overrides: Overrides | None = None, checkpointer: Any = None) -> Any:
    """The compiled LangGraph self-play graph of ``config``: one dialogue per invocation.

    Its input is ``{"job": job}`` with a dialogue job as JSON (``DialogueJob.model_dump(mode="json")``;
    ``sparring.graphs.runtime.run_request.iter_jobs`` lists a config's jobs); its output, the dialogue's
    state (plan, messages, verdicts, revisions). Each backend the config uses (``backend:``, or
    ``backends:`` and ``roles:``) starts on its first model call and is closed when that call's event
    loop shuts down (started again in the next one). No checkpointer
    unless one is passed; the recursion limit fits the config's ``max_turns``. Nothing is written to
    a run directory and no span is recorded: that is ``run``'s work.

    Example::

        from sparring.graphs.runtime.run_request import iter_jobs, request_from_config

        graph = sparring.build_graph("examples/quickstart.yaml")
        print(graph.get_graph().draw_mermaid())
        job = next(iter_jobs(request_from_config("examples/quickstart.yaml")))
        state = await graph.ainvoke({"job": job.model_dump(mode="json")})
        # or as a node of your own graph: builder.add_node("selfplay", graph)
    """
    request = request_from_config(_path(config), overrides or ())
    backends = RoleBackends.create(request.config, make=lambda block: _LoopScoped(create_backend(block)))
    selfplay = make_selfplay(request, backends)
    return selfplay.build(checkpointer=checkpointer).with_config(recursion_limit=selfplay.recursion_limit())
