"""sparring: multi-agent self-play for language-model data.

The Python API (everything else is internal)::

    import sparring

    result = sparring.run("examples/quickstart.yaml")      # or a dict, or a sparring.RunConfig
    print(result.status, result.run_dir, result.counts.pairs)
    run = sparring.load_run(result.run_dir)                # typed rows, or run.to_dataset("pairs")
    graph = sparring.build_graph("examples/quickstart.yaml")  # the compiled LangGraph self-play graph
    # in a notebook or an async application: result = await sparring.arun(...)

The project's folders install under this one namespace: ``sparring.agents``,
``sparring.graphs``, ``sparring.principles``, ``sparring.diasynth_agents`` and
``sparring.traces`` (see ``[tool.setuptools]`` in pyproject.toml). ``import sparring``
imports none of them: each name below is loaded on first use, so the import stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparring._api import arun, build_graph, run
    from sparring._records import RunRecords, load_run
    from sparring.graphs.run_config import RunConfig
    from sparring.graphs.runtime.run_result import RunResult

__all__ = ["RunConfig", "RunRecords", "RunResult", "arun", "build_graph", "load_run", "run"]

_HOMES = {
    "run": "sparring._api", "arun": "sparring._api", "build_graph": "sparring._api",
    "load_run": "sparring._records", "RunRecords": "sparring._records",
    "RunConfig": "sparring.graphs.run_config", "RunResult": "sparring.graphs.runtime.run_result",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sparring' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
