"""``sparring plan``: run the DiaSynth expansion once and freeze the whole job list (graphs.runtime.plan_files)."""

from __future__ import annotations

from pathlib import Path

from sparring.agents.backends import create_backend
from sparring.traces.sinks import JsonlSpanSink
from sparring.traces.spans import Tracer, use_tracer

from .plan_files import Plan
from .progress import Progress
from .run_request import RunRequest, plan_of
from .tracing import span_exporters

__all__ = ["make_plan"]


async def make_plan(request: RunRequest, *, progress: Progress | None = None, traces: Path | None = None) -> Plan:
    """The plan of ``request``. A ``diasynth:`` config starts its backend and expands its topics into
    scenarios (spans into ``traces`` when given); any other config is planned without a model call."""
    cfg = request.config
    progress = progress or Progress(enabled=False)
    expansion = None
    if cfg.diasynth is not None:
        from sparring.graphs.scenario_graph import expand_scenarios

        backend = create_backend(cfg.backend)
        exporters = span_exporters(cfg.tracing)
        sinks = [JsonlSpanSink(traces).open()] if traces is not None else []
        tracer = Tracer([*sinks, *exporters], record_content=cfg.tracing.record_content)
        progress.stage(f"starting the {cfg.backend.kind} backend")
        try:
            await backend.start()
            progress.stage(f"expanding {len(cfg.diasynth.topics)} topics into scenarios (DiaSynth)")
            with use_tracer(tracer):
                scenarios, report = await expand_scenarios(cfg.diasynth, backend, cfg.sampling, cfg.seed)
        finally:
            progress.stop()
            tracer.close()
            await backend.aclose()
        request.scenarios = [*request.scenarios, *scenarios]
        expansion = {"report": report.model_dump(mode="json"), "explain": report.explain()}
    plan = plan_of(request)
    plan.expansion = expansion
    return plan
