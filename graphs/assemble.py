"""Pure functions from a finished graph state to the records a run writes.

Kept free of I/O and of the graph, so exports, replays and tests build
exactly the same rows from the same data.
"""

from __future__ import annotations

from typing import Any

from sparring.agents.domain import CharacteristicValue, DialogueJob, Side, TurnVerdict, other_side, stable_id
from sparring.agents.persona import view_from

from .records import DialogueRecord, DialogueUsage, Message, PreferenceRecord, Revision, SFTRecord

_KICKOFF = "(You start the conversation.)"


def public_system_prompt(job: DialogueJob, side: Side) -> str:
    """The system message of a training row: the side's role, never its private brief."""
    if job.is_ai_assistant(side):
        return "You are a helpful AI assistant."
    me, other = job.persona(side), job.persona(other_side(side))
    described = me.name + (f", {me.description}" if me.description else "")
    return f"You are {described}. You are talking with {other.name}."


def build_dialogue_record(job: DialogueJob, state: dict[str, Any], *, trace_id: str | None, usage: DialogueUsage,
                          duration_s: float, error: str | None = None) -> DialogueRecord:
    """A DialogueRecord from the graph's final (or, on failure, last checkpointed) state."""
    plan = state.get("plan") or {}
    verdicts = [TurnVerdict.model_validate(v) for v in state.get("verdicts", [])]
    violated = sorted({pid for v in verdicts for pid in v.violated})
    messages = [Message.model_validate(m) for m in state.get("messages", [])]
    return DialogueRecord(
        id=job.id, trace_id=trace_id, status="failed" if error else "ok", mode=job.mode, scenario=job.scenario,
        goal=plan.get("goal") or job.scenario.goal or "", target_principles=list(job.target_principles),
        briefed_side=job.briefed_side, seed=job.seed,
        plan={k: v for k, v in plan.items() if k not in ("reasoning", "characteristics")},
        characteristics=[CharacteristicValue.model_validate(c) for c in plan.get("characteristics", [])],
        reasoning=plan.get("reasoning", ""), few_shot_id=job.few_shot_id, messages=messages, verdicts=verdicts,
        revisions=[Revision.model_validate(r) for r in state.get("revisions", [])],
        is_violation=bool(violated), violated_principles=violated,
        targeted_violated=bool(set(violated) & set(job.target_principles)),
        stop_reason="error" if error else state.get("stop_reason", "max_turns"),
        turns=len(messages), error=error, usage=usage, duration_s=round(duration_s, 3),
        summary=state.get("summary"), scores=state.get("scores") or {}, scoring=state.get("scoring"))


def _side_view(record: DialogueRecord, side: Side, upto: int) -> list[dict[str, str]]:
    messages = [m.model_dump() for m in record.messages[:upto]]
    return [{"role": m["role"], "content": m["content"]} for m in view_from(side, messages, _KICKOFF)]


def is_preference(original: str, revised: str) -> bool:
    """An empty or unchanged revision teaches a trainer nothing (DPO would see chosen == rejected)."""
    return bool(revised.strip()) and revised.strip() != original.strip()


def extract_preference_pairs(record: DialogueRecord, job: DialogueJob, *,
                             keep_unverified: bool = True) -> list[PreferenceRecord]:
    """One TRL conversational preference row per revised turn."""
    verdicts = {v.turn_index: v for v in record.verdicts}
    pairs = []
    for rev in record.revisions:
        if not is_preference(rev.original, rev.revised) or (not rev.verified and not keep_unverified):
            continue
        turn = record.messages[rev.turn_index]
        verdict = verdicts.get(rev.turn_index)
        critique = ""
        if verdict is not None:
            evidence = "; ".join(f'{f.principle_id}: "{f.evidence}" ({f.severity})' for f in verdict.findings)
            critique = f"{verdict.reasoning.strip()} {evidence}".strip()
        prompt = [{"role": "system", "content": public_system_prompt(job, turn.speaker)},
                  *_side_view(record, turn.speaker, rev.turn_index)]
        pairs.append(PreferenceRecord(
            id=stable_id("pair", record.id, rev.turn_index), prompt=prompt,
            chosen=[{"role": "assistant", "content": rev.revised}],
            rejected=[{"role": "assistant", "content": rev.original}],
            dialogue_id=record.id, turn_index=rev.turn_index, principle_ids=list(rev.principle_ids),
            critique=critique, severity=(verdict.severity if verdict and verdict.severity else "minor"),
            verified=rev.verified, mode=record.mode, trace_id=record.trace_id))
    return pairs


def build_sft_record(record: DialogueRecord, job: DialogueJob) -> SFTRecord:
    """The dialogue from the judged side's view, its verified revisions applied."""
    side = job.briefed_side
    revised = {r.turn_index: r.revised for r in record.revisions if r.verified}
    turns = [m.model_dump() for m in record.messages]
    for index, text in revised.items():
        turns[index] = {**turns[index], "content": text}
    messages = [{"role": "system", "content": public_system_prompt(job, side)},
                *(dict(m) for m in view_from(side, turns, _KICKOFF))]
    return SFTRecord(id=stable_id("sft", record.id), messages=messages, dialogue_id=record.id,
                     revised_turns=sorted(revised))
