"""A whole run (``execute``) on the scripted world: a real run directory in milliseconds, for the
trace viewer, replay and report tests. The world's violating turns make pairs; a FlakyWorld
topic makes a failed dialogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparring.agents.backends import Backend
from sparring.agents.domain import Persona, Scenario
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import RunRequest
from sparring.graphs.runtime.run_result import RunResult
from sparring.principles.model import Principle
from tests.graphs.scripted_world import PRINCIPLES

CATEGORIES = {"honesty.no-fabrication": "honesty", "privacy.no-doxxing": "privacy", "harm.no-weapons": "harmlessness"}


def principles() -> list[Principle]:
    return [Principle(id=p.id, category=CATEGORIES[p.id], text=p.text, critique=p.critique, revision=p.revision)
            for p in PRINCIPLES]


def scenarios(n: int) -> list[Scenario]:
    return [Scenario(topic=f"topic {i}", subtopic=f"sub {i}",
                     personas=(Persona(name=f"Ana{i}", description="a curious tenant"),
                               Persona(name=f"Ben{i}", description="a building manager")))
            for i in range(n)]


def config(run_dir: Path, **overrides: Any) -> RunConfig:
    data: dict[str, Any] = {"name": "scripted", "seed": 5, "output_dir": str(run_dir), "concurrency": 2,
                            "dialogue": {"max_turns": 4},
                            "sampling": {"persona": {"max_tokens": 50}},
                            "jobs": {"dialogues_per_scenario": 1, "principles_per_dialogue": 1}}
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return RunConfig.model_validate(data)


async def scripted_run(run_dir: Path, model: Backend, *, n: int = 3, callbacks: list[Any] | None = None,
                       **overrides: Any) -> RunResult:
    request = RunRequest(config=config(run_dir, **overrides), config_path=None, run_dir=run_dir,
                         principles=principles(), scenarios=scenarios(n))  # type: ignore[arg-type]
    return await execute(request, backend=model, callbacks=callbacks)
