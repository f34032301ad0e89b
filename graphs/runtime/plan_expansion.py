"""The DiaSynth expansion of a config, made once whichever command asks (``expand``), and ``sparring
plan``: the expansion, then the whole job list frozen (graphs.runtime.plan_files)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparring.traces.sinks import JsonlSpanSink
from sparring.traces.spans import Tracer, use_tracer

from .plan_files import Plan
from .progress import Progress
from .role_backends import RoleBackends, probe_roles
from .run_request import RunRequest, plan_of
from .tracing import span_exporters

if TYPE_CHECKING:
    from sparring.agents.domain import Scenario
    from sparring.graphs.roles import Role
    from sparring.graphs.run_config import RunConfig

__all__ = ["EXPANSION_ROLES", "expand", "make_plan"]

EXPANSION_ROLES: tuple[Role, ...] = ("subtopics", "personas")
"""The roles the DiaSynth expansion calls: their backends are what a plan starts."""


async def expand(cfg: RunConfig, backends: RoleBackends, progress: Progress) -> tuple[list[Scenario], dict[str, Any]]:
    """The scenarios of ``cfg.diasynth`` written by the ``subtopics`` and ``personas`` roles' backends
    (started), and the manifest's ``expansion`` entry (the report and its explanation lines, which
    ``progress`` is told). The one path of a run, a shard's plan and ``sparring plan``."""
    from sparring.graphs.scenario_graph import expand_scenarios

    assert cfg.diasynth is not None
    progress.stage(f"expanding {len(cfg.diasynth.topics)} topics into scenarios (DiaSynth)")
    scenarios, report = await expand_scenarios(cfg.diasynth, backends["subtopics"], cfg.sampling, cfg.seed,
                                               personas_backend=backends["personas"])
    for line in report.explain():
        progress.note(line)
    return scenarios, {"report": report.model_dump(mode="json"), "explain": report.explain()}


async def make_plan(request: RunRequest, *, progress: Progress | None = None, traces: Path | None = None) -> Plan:
    """The plan of ``request``. A ``diasynth:`` config probes and starts the backends of its expansion
    roles, as a run does, and expands its topics into scenarios (spans into ``traces`` when given); any
    other config is planned without a model call."""
    cfg = request.config
    progress = progress or Progress(enabled=False)
    expansion = None
    if cfg.diasynth is not None:
        backends = RoleBackends.create(cfg, roles=EXPANSION_ROLES)
        exporters = span_exporters(cfg.tracing)
        await probe_roles(cfg, EXPANSION_ROLES, on_slow=progress.stage)
        sinks = [JsonlSpanSink(traces).open()] if traces is not None else []
        tracer = Tracer([*sinks, *exporters], record_content=cfg.tracing.record_content)
        progress.stage(f"starting {backends.label()}")
        try:
            await backends.start()
            with use_tracer(tracer):
                scenarios, expansion = await expand(cfg, backends, progress)
        finally:
            progress.stop()
            tracer.close()
            await backends.aclose()
        request = replace(request, scenarios=[*request.scenarios, *scenarios])
    plan = plan_of(request)
    plan.expansion = expansion
    return plan
