"""Replay one dialogue of a run: its graph re-run on the replies recorded in its trace, no model.

The self-play graph is rebuilt from the run's manifest exactly as ``resume``
rebuilds it (same config, principles, scenarios and jobs), the model is
replaced by a ReplayBackend over the dialogue's ``chat`` spans, and the graph
runs in memory through the same runner code as the run (an in-memory
checkpointer stands in for state.sqlite, so a failed dialogue keeps the same
partial state). The records it builds are compared with the ones the run
wrote: if the graph logic is unchanged, nothing differs; after a change, the
differences say what the change did to this dialogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sparring.agents.backends.backend_config import BackendConfig
from sparring.agents.backends.replay import ReplayBackend, has_content, structured_mode_of
from sparring.errors import InputError
from sparring.graphs.roles import backends_in_use
from sparring.graphs.shared_plans import SharedPlans
from sparring.graphs.wiring import make_selfplay
from sparring.traces.read import iter_spans
from sparring.traces.sinks import ListSpanSink
from sparring.traces.spans import Tracer, use_tracer

from .role_backends import RoleBackends
from .run_request import iter_jobs, request_from_run_dir
from .runner import DialogueRunner
from .store import DIALOGUES, PREFERENCES, iter_jsonl

# Differ between any two executions by nature, not by logic.
VOLATILE = frozenset({"trace_id", "duration_s"})


class MemoryStore:
    """Collects what the runner would append to the run directory."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def append(self, name: str, record: BaseModel | dict[str, Any]) -> None:
        row = record.model_dump(mode="json") if isinstance(record, BaseModel) else dict(record)
        self.rows.setdefault(name, []).append(row)


@dataclass
class ReplayOutcome:
    dialogue_id: str
    trace_id: str | None
    """The recorded trace that was replayed."""
    differences: list[str]
    """``path: recorded -> replayed`` for every field of the records that differs (volatile ones aside)."""
    mismatches: list[str]
    """Calls whose prompt differed from the recorded prompt (the recorded reply was served anyway)."""
    unused: list[str]
    """Recorded calls the replay never made."""
    record: dict[str, Any]
    """The replayed DialogueRecord."""
    pairs: list[dict[str, Any]]
    spans: list[dict[str, Any]] = field(default_factory=list)
    """The replay's own spans, content included."""
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return not (self.differences or self.mismatches or self.unused)

    def describe(self) -> str:
        lines = [f"replayed dialogue {self.dialogue_id} from trace {self.trace_id}: "
                 f"{len(self.record.get('messages', []))} turns, {len(self.pairs)} pairs, "
                 f"status {self.record.get('status')}" + (f" ({self.record['error']})" if self.record.get("error")
                                                          else "")]
        lines += [f"note: {n}" for n in self.notes]
        if self.reproduced:
            lines.append("reproduced: the records are the same as the run's")
            return "\n".join(lines)
        for title, items in (("prompts that differ from the recording", self.mismatches),
                             ("recorded calls the replay did not make", self.unused),
                             ("record fields that differ (recorded -> replayed)", self.differences)):
            if items:
                lines.append(f"{title}:")
                lines += [f"  {item}" for item in items]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"dialogue_id": self.dialogue_id, "trace_id": self.trace_id, "reproduced": self.reproduced,
                "differences": self.differences, "mismatches": self.mismatches, "unused": self.unused,
                "notes": self.notes, "record": self.record, "pairs": self.pairs}


def replay_config(run_backend: BackendConfig, chat_spans: list[dict[str, Any]]) -> BackendConfig:
    """The run's call policy (attempts, re-asks) without its waits, on the structured path it took."""
    retry = run_backend.retry.model_copy(update={"initial_wait_s": 0.0, "max_wait_s": 0.0})
    return BackendConfig(kind="embedded", retry=retry, reasks=run_backend.reasks,
                         max_in_flight=run_backend.max_in_flight,
                         structured_output=structured_mode_of(chat_spans, run_backend.structured_output))


async def replay_dialogue(run_dir: Path, record: dict[str, Any], *, strict: bool = False) -> ReplayOutcome:
    """Re-run the dialogue of ``record`` (a row of dialogues.jsonl) on its recorded replies."""
    trace_id = record.get("trace_id")
    if not trace_id:
        raise InputError(f"dialogue {record['id']} has no trace id (the run was not traced)", source=str(run_dir))
    recorded = list(iter_spans(run_dir, {trace_id}))
    chats = [s for s in recorded if s["name"] == "chat"]
    if chats and not has_content(chats):
        raise InputError("its trace holds no prompts or replies (tracing.record_content was false), "
                         "so there is nothing to replay", source=str(run_dir))
    if not chats and record.get("status") == "ok":
        raise InputError(f"trace {trace_id} of dialogue {record['id']} holds no model calls", source=str(run_dir))
    request = request_from_run_dir(run_dir)
    job = next((j for j in iter_jobs(request) if j.id == record["id"]), None)
    if job is None:
        raise InputError(f"dialogue {record['id']} is not among the jobs its manifest describes", source=str(run_dir))
    # One replay backend answers every role: recordings are matched by agent and turn, whichever backend made them.
    policy = next(iter(backends_in_use(request.config).values()))
    backend = ReplayBackend(chats, config=replay_config(policy, chats), strict=strict)
    selfplay = make_selfplay(request, RoleBackends.of(request.config, backend))
    if record.get("plan_from") and selfplay.plans is not None:
        # Several targets: another copy of the attack made its plan (that call is in the other's trace).
        selfplay.plans = SharedPlans.of_run([record])
    from langgraph.checkpoint.memory import InMemorySaver

    store = MemoryStore()
    runner = DialogueRunner(selfplay=selfplay, graph=selfplay.build(checkpointer=InMemorySaver()),
                            store=store, concurrency=1,  # type: ignore[arg-type]
                            keep_unverified=request.config.dialogue.unverified_pairs == "keep")
    sink = ListSpanSink()
    with use_tracer(Tracer([sink], record_content=True)):
        await runner.run([job])
    [replayed] = store.rows[DIALOGUES]
    pairs = store.rows.get(PREFERENCES, [])
    original_pairs = [p for p in iter_jsonl(run_dir / PREFERENCES) if p.get("dialogue_id") == record["id"]]
    differences = diff(record, replayed) + diff({p["id"]: p for p in original_pairs}, {p["id"]: p for p in pairs},
                                                "pairs")
    notes = []
    if any((s.get("attributes") or {}).get("app.resumed") for s in recorded if s.get("parent_id") is None):
        notes.append("this dialogue was continued from a checkpoint by a resume; its trace holds only the calls "
                     "made after that, so a replay from the start runs out of recorded replies")
    return ReplayOutcome(dialogue_id=record["id"], trace_id=trace_id, differences=differences,
                         mismatches=backend.mismatches, unused=backend.unused(), record=replayed, pairs=pairs,
                         spans=[s.to_dict() for s in sink], notes=notes)


def diff(old: Any, new: Any, path: str = "", *, limit: int = 80) -> list[str]:
    """``path: old -> new`` for every leaf that differs; keys in VOLATILE are skipped."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            if key in VOLATILE:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(f"{sub}: {'(absent)' if key not in old else _short(old[key], limit)} -> "
                           f"{'(absent)' if key not in new else _short(new[key], limit)}")
            else:
                out += diff(old[key], new[key], sub, limit=limit)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = [line for i, (a, b) in enumerate(zip(old, new)) for line in diff(a, b, f"{path}[{i}]", limit=limit)]
        if len(old) != len(new):
            out.append(f"{path}: {len(old)} items -> {len(new)} items")
        return out
    return [] if old == new else [f"{path}: {_short(old, limit)} -> {_short(new, limit)}"]


def _short(value: Any, limit: int) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
