"""``sparring doctor``: is the configured backend usable, and how fast is it?"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sparring.agents.backends import Backend, SamplingParams, create_backend
from sparring.agents.backends.backend_config import BackendConfig


class _Probe(BaseModel):
    """A tiny schema: enough to tell constrained decoding from free text."""

    answer: str
    confidence: int


@dataclass
class DoctorReport:
    ok: bool
    rows: list[tuple[str, str]] = field(default_factory=list)
    failure: str | None = None

    def add(self, check: str, result: Any) -> None:
        self.rows.append((check, str(result)))


async def diagnose(config: BackendConfig) -> DoctorReport:
    """Start the backend, make one plain and one structured call, report what was seen."""
    report = DoctorReport(ok=False)
    report.add("backend", config.kind)
    backend: Backend | None = None
    try:
        backend = create_backend(config)
        t0 = time.perf_counter()
        await backend.start()
        report.add("start-up", f"{time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        plain = await backend.complete([{"role": "user", "content": "Reply with the single word: ready"}],
                                       SamplingParams(temperature=0.0, max_tokens=8))
        report.add("reachable", "yes")
        report.add("model", plain.model)
        report.add("probe latency", f"{(time.perf_counter() - t0) * 1000:.0f} ms "
                                    f"({plain.usage.completion_tokens} tokens)")
        structured = await backend.complete(
            [{"role": "user", "content": "What is the capital of France? Give your confidence from 1 to 5."}],
            SamplingParams(temperature=0.0, max_tokens=48), _Probe)
        report.add("structured output", structured.structured_mode
                   + (f" ({structured.retries} re-asks)" if structured.retries else ""))
        for key, value in backend.describe().items():
            if key not in ("kind", "model", "provider", "structured_output") and value is not None:
                report.add(key, value)
        report.ok = True
    except Exception as exc:  # doctor reports every failure instead of crashing
        report.failure = f"{type(exc).__name__}: {exc}"
    finally:
        if backend is not None:
            try:
                await backend.aclose()
            except Exception:  # shutting down a broken backend must not hide why it broke
                pass
    return report
