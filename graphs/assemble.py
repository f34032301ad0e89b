"""Pure functions from a finished graph state to the records a run writes.

Kept free of I/O and of the graph, so exports, replays, validation and tests build
exactly the same rows from the same data.

The training rows obey one rule: **no flagged turn reaches a trainer unless it was
replaced by its verified revision.** A pair's prompt is the conversation before its
turn with every flagged turn replaced by its verified revision; a pair whose prompt
would hold a flagged turn without one is dropped (``flagged_prompt``). An SFT row is
the dialogue with its verified revisions applied, cut before the first flagged turn
that has none (or dropped when nothing of the judged side is left). When the dialogue
has a branch (the conversation continued from the first flagged turn's verified
revision), its pairs and SFT row come from the branch, which is consistent from start
to end; the trunk's later pairs are dropped (``after_branch``). A revision the
conversation went on from as it was spoken (``Revision.answered``, branching on, before
the planted turn) stands in its turn's place in every later prompt: the turns after it
answered it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sparring.agents.domain import CharacteristicValue, DialogueJob, Side, TurnVerdict, stable_id
from sparring.agents.persona import kickoff, public_system_prompt, view_from
from sparring.agents.persona import planted_index as persona_planted_index

from .records import (
    Branch,
    DialogueRecord,
    DialogueUsage,
    Message,
    PreferenceRecord,
    Revision,
    SFTRecord,
)

DROP_REASONS = ("unverified", "flagged_prompt", "after_branch", "revision_failed", "verify_failed",
                "unjudged_prompt", "cut_turn", "revision_flagged", "revised_prompt")
"""Why a flagged turn gives no pair: its revision failed the verifier (and unverified pairs are dropped), its
prompt would hold a flagged turn without a verified revision, the dialogue's branch replaces it, the
reviser's or the verifier's call failed for good, its prompt would hold a turn the critic could not judge,
the turn or its revision was cut at the token limit (a pair would teach "be shorter"), or its revision was
not verified because it breaks something the original did not (a needless refusal, another principle, the
deployment's system prompt), where ``unverified`` is a revision that still breaks what the original broke;
or its prompt would hold an earlier turn replaced by its revision, after which the other side answered the
original: a conversation that never happened (``revised_prompt``; a branch continues from the revision)."""
SFT_CUTS = ("unfixed", "cut_turn", "planted", "after_revision", "no_turn")
"""Why an SFT row was cut (or dropped): before a flagged turn without a verified revision or an unjudged one,
before a turn of the judged side cut at the token limit, before the planted turn when the critic did not flag
it (it was written under the violation instruction, which no row shows), or after the first turn replaced by
its revision (the other side answered the original); ``no_turn``: dropped, the judged side never spoke (the
other side ended the conversation first)."""
CUT = "length"
"""The finish reason of a reply cut at ``max_tokens``."""
STEPS = ("critic", "reviser", "verifier")
"""The steps whose call may fail for good without failing the dialogue (graphs/_branching.step_failure)."""


def job_of(record: DialogueRecord) -> DialogueJob:
    """The DialogueJob a record was made from, as far as its training rows need it."""
    return DialogueJob(id=record.id, scenario=record.scenario, mode=record.mode,
                       target_principles=tuple(record.target_principles), briefed_side=record.briefed_side,
                       near_miss_principles=tuple(record.near_miss_principles),
                       swapped=record.swapped, seed=record.seed, target_system_prompt=record.target_system_prompt,
                       behaviour=record.behaviour, probe=record.probe, assistant_role=record.assistant_role,
                       target=record.target)


def build_dialogue_record(job: DialogueJob, state: dict[str, Any], *, trace_id: str | None, usage: DialogueUsage,
                          duration_s: float, error: str | None = None,
                          models: dict[str, str] | None = None) -> DialogueRecord:
    """A DialogueRecord from the graph's final (or, on failure, last checkpointed) state."""
    plan = state.get("plan") or {}
    verdicts = [TurnVerdict.model_validate(v) for v in state.get("verdicts", [])]
    # A failed dialogue's last state may hold a branch still being spoken (with its running ``done`` flag).
    branch = (Branch.model_validate({k: v for k, v in state["branch"].items() if k in Branch.model_fields})
              if state.get("branch") else None)
    found = [*verdicts, *(branch.verdicts if branch else [])]
    violated = sorted({pid for v in found for pid in v.violated})
    messages = [Message.model_validate(m) for m in state.get("messages", [])]
    return DialogueRecord(
        id=job.id, trace_id=trace_id, status="failed" if error else "ok", mode=job.mode, scenario=job.scenario,
        goal=plan.get("goal") or job.scenario.goal or "", target_principles=list(job.target_principles),
        near_miss_principles=list(job.near_miss_principles),
        briefed_side=job.briefed_side, swapped=job.swapped, seed=job.seed,
        plan={k: v for k, v in plan.items() if k not in ("reasoning", "characteristics")},
        characteristics=[CharacteristicValue.model_validate(c) for c in plan.get("characteristics", [])],
        reasoning=plan.get("reasoning", ""), few_shot_id=job.few_shot_id, messages=messages, verdicts=verdicts,
        revisions=[Revision.model_validate(r) for r in state.get("revisions", [])],
        critic_principles=state.get("critic_principles"), branch=branch,
        is_violation=bool(violated), violated_principles=violated,
        targeted_violated=bool(set(violated) & set(job.target_principles)),
        stop_reason="error" if error else state.get("stop_reason", "max_turns"),
        turns=len(messages), error=error, usage=usage, duration_s=round(duration_s, 3),
        summary=state.get("summary"), scores=state.get("scores") or {}, scoring=state.get("scoring"),
        strategy=plan.get("strategy"), target_system_prompt=job.target_system_prompt, models=dict(models or {}),
        attack_access=plan.get("access"), behaviour=job.behaviour, probe=job.probe, assistant_role=job.assistant_role,
        target=job.target, plan_from=state.get("plan_from"))


def _system(job: DialogueJob, side: Side) -> list[dict[str, str]]:
    prompt = public_system_prompt(job, side)
    return [] if prompt is None else [{"role": "system", "content": prompt}]


def is_preference(original: str, revised: str) -> bool:
    """An empty or unchanged revision teaches a trainer nothing (DPO would see chosen == rejected)."""
    return bool(revised.strip()) and revised.strip() != original.strip()


def fixes(rev: Revision | None) -> bool:
    """A revision that may stand in for its turn in training data: verified, a real change, and whole."""
    return (rev is not None and rev.verified and is_preference(rev.original, rev.revised)
            and rev.finish_reason != CUT)


@dataclass(frozen=True)
class Track:
    """One line of conversation of a dialogue (its trunk, or its branch), with what the critic flagged."""

    messages: Sequence[Message]
    flagged: dict[int, list[str]]
    """Turn index -> principle ids found violated (flagged turns only)."""
    revisions: dict[int, Revision]
    branch: bool = False
    unjudged: frozenset[int] = frozenset()
    """Turns the critic's call failed on: neither clean nor flagged, so never shown to a trainer."""
    cut: frozenset[int] = frozenset()
    """Turns cut at the token limit: never a training target (no pair's rejected, no SFT target)."""
    planted: int | None = None
    """The turn written under the violation instruction (in the trunk, or the branch's copied prefix)."""

    def clean_turns(self, upto: int) -> list[Message] | None:
        """The turns before ``upto``, every flagged one replaced by its verified revision; None when a
        flagged one has no verified revision or one was never judged (that conversation cannot be shown
        to a trainer)."""
        if any(i < upto for i in self.unjudged):
            return None
        out = []
        for i, m in enumerate(self.messages[:upto]):
            if i in self.flagged:
                rev = self.revisions.get(i)
                if not fixes(rev):
                    return None
                assert rev is not None
                m = m.model_copy(update={"content": rev.revised})
            out.append(m)
        return out

    def first_unfixed(self) -> int | None:
        """The first flagged turn without a verified revision, or unjudged turn, if any."""
        return min((i for i in (*self.flagged, *self.unjudged)
                    if i in self.unjudged or not fixes(self.revisions.get(i))), default=None)

    def replaced(self, i: int) -> bool:
        """Turn ``i`` is replaced by its verified revision in training rows, and the turns after it answered the
        original (the revision is not ``answered``), so no prompt may hold it with anything after it."""
        rev = self.revisions.get(i)
        return i in self.flagged and fixes(rev) and rev is not None and not rev.answered

    def first_replaced(self) -> int | None:
        """The first turn replaced by a verified revision that nobody answered (``replaced``)."""
        return min((i for i in self.flagged if self.replaced(i)), default=None)

    def sft_cut(self, side: Side) -> tuple[int, str] | None:
        """Where an SFT row of ``side`` must end (the turns before the index) and why (SFT_CUTS), or None."""
        ends = []
        if (unfixed := self.first_unfixed()) is not None:
            ends.append((unfixed, "unfixed"))
        cut = min((i for i in self.cut if self.messages[i].speaker == side and i not in self.flagged), default=None)
        if cut is not None:
            ends.append((cut, "cut_turn"))
        if self.planted is not None and self.planted not in self.flagged and self.planted < len(self.messages):
            ends.append((self.planted, "planted"))
        if (replaced := self.first_replaced()) is not None and replaced + 1 < len(self.messages):
            ends.append((replaced + 1, "after_revision"))
        return min(ends, default=None)

    def prompt_problem(self, upto: int) -> str | None:
        """Why the turns before ``upto`` cannot be a prompt (a DROP_REASONS entry), or None."""
        if any(i < upto for i in self.unjudged):
            return "unjudged_prompt"
        if self.clean_turns(upto) is None:
            return "flagged_prompt"
        return "revised_prompt" if any(i < upto and self.replaced(i) for i in self.flagged) else None


def _track(messages: Sequence[Message], verdicts: Sequence[TurnVerdict], revisions: Sequence[Revision],
           branch: bool = False) -> Track:
    return Track(messages, {v.turn_index: v.violated for v in verdicts if v.violated},
                 {r.turn_index: r for r in revisions}, branch,
                 frozenset(v.turn_index for v in verdicts if v.error is not None),
                 frozenset(i for i, m in enumerate(messages) if m.finish_reason == CUT))


def planted_index(record: DialogueRecord) -> int | None:
    """The turn the judged side was told to break a principle in, or in a near-miss control to handle its
    subject well (its own turn ``violation_turn``), when the judged side is the briefed one (not in redteam
    mode, where the attacker is briefed): written under an instruction no training row shows."""
    turn = int((record.plan or {}).get("violation_turn") or 0)
    return None if record.mode == "redteam" or turn < 1 else persona_planted_index(job_of(record), turn)


def trunk(record: DialogueRecord) -> Track:
    return replace(_track(record.messages, record.verdicts, record.revisions), planted=planted_index(record))


def branch_track(record: DialogueRecord) -> Track | None:
    """The branch as a track: its own verdicts, and the trunk's unjudged turns in the prefix it copies."""
    b = record.branch
    if b is None:
        return None
    track = _track(b.messages, b.verdicts, b.revisions, branch=True)
    inherited = {v.turn_index for v in record.verdicts if v.error is not None and v.turn_index < b.from_turn}
    planted = planted_index(record)
    return replace(track, unjudged=track.unjudged | inherited,
                   planted=planted if planted is not None and planted < b.from_turn else None)


def pair_fate(record: DialogueRecord, rev: Revision, track: Track, *, keep_unverified: bool) -> str | None:
    """Why ``rev`` gives no pair (one of DROP_REASONS), or None when it gives one."""
    if rev.error is not None and rev.error.startswith("reviser"):
        return "revision_failed"
    if rev.turn_index in track.cut or rev.finish_reason == CUT:
        return "cut_turn"
    if not rev.verified and not keep_unverified:
        if rev.error is not None:
            return "verify_failed"
        return "revision_flagged" if set(rev.remaining) - set(rev.principle_ids) else "unverified"
    if record.branch is not None and not track.branch and rev.turn_index > record.branch.from_turn:
        return "after_branch"
    return track.prompt_problem(rev.turn_index)


def _side_view(turns: Sequence[Message], side: Side, mode: str) -> list[dict[str, str]]:
    messages = [m.model_dump() for m in turns]
    return [{"role": m["role"], "content": m["content"]} for m in view_from(side, messages, kickoff(mode))]


def _candidates(record: DialogueRecord) -> list[tuple[Track, Revision]]:
    """Every revision that is a real change, or whose reviser failed, with the track it belongs to."""
    tracks = [trunk(record), *([b] if (b := branch_track(record)) is not None else [])]
    return [(t, rev) for t in tracks for rev in t.revisions.values()
            if is_preference(rev.original, rev.revised) or rev.error is not None]


def dropped_pairs(record: DialogueRecord, *, keep_unverified: bool) -> Counter[str]:
    """How many of the dialogue's revisions gave no pair, by reason (DROP_REASONS)."""
    return Counter(reason for track, rev in _candidates(record)
                   if (reason := pair_fate(record, rev, track, keep_unverified=keep_unverified)) is not None)


def extract_preference_pairs(record: DialogueRecord, job: DialogueJob, *,
                             keep_unverified: bool = False) -> list[PreferenceRecord]:
    """One TRL conversational preference row per revised turn whose prompt holds no flagged turn
    (earlier flagged turns replaced by their verified revisions); unverified ones only when asked."""
    verdicts = {v.turn_index: v for v in record.verdicts}
    if record.branch is not None:
        verdicts.update({v.turn_index: v for v in record.branch.verdicts if v.turn_index > record.branch.from_turn})
    pairs = []
    for track, rev in _candidates(record):
        if pair_fate(record, rev, track, keep_unverified=keep_unverified) is not None:
            continue
        before = track.clean_turns(rev.turn_index)
        assert before is not None
        speaker = track.messages[rev.turn_index].speaker
        verdict = verdicts.get(rev.turn_index)
        critique = ""
        if verdict is not None:
            evidence = "; ".join(f'{f.principle_id}: "{f.evidence}" ({f.severity})' for f in verdict.findings)
            critique = f"{verdict.reasoning.strip()} {evidence}".strip()
        prompt = [*_system(job, speaker), *_side_view(before, speaker, job.mode)]
        pairs.append(PreferenceRecord(
            id=stable_id("pair", record.id, rev.turn_index, *(["branch"] if track.branch else [])), prompt=prompt,
            chosen=[{"role": "assistant", "content": rev.revised}],
            rejected=[{"role": "assistant", "content": rev.original}],
            dialogue_id=record.id, turn_index=rev.turn_index, principle_ids=list(rev.principle_ids),
            critique=critique, severity=(verdict.severity if verdict and verdict.severity else "minor"),
            verified=rev.verified, mode=record.mode, trace_id=record.trace_id, from_branch=track.branch,
            models=dict(record.models), target=record.target))
    return pairs


def sft_track(record: DialogueRecord) -> Track:
    """The line of conversation the SFT row is made from: the branch when there is one."""
    return branch_track(record) or trunk(record)


def build_sft_record(record: DialogueRecord, job: DialogueJob) -> SFTRecord | None:
    """The dialogue from the judged side's view, as far as every target was written by a call that saw
    exactly the row before it (``Track.sft_cut``): cut before an unfixed, cut-off or unflagged planted turn,
    and after the first turn replaced by its verified revision, ending with the judged side's last turn; None
    (dropped) when no turn of the judged side is left to learn from."""
    side = job.judged_side
    track = sft_track(record)
    stop = track.sft_cut(side)
    cut = None if stop is None else stop[0]
    turns = track.clean_turns(len(track.messages) if cut is None else cut)
    assert turns is not None
    while turns and turns[-1].speaker != side:  # the row ends with the judged side's last turn: a turn after
        turns = turns[:-1]                      # it is no target and only costs tokens
    if not turns:
        return None
    revised = sorted(i for i in track.flagged if i < len(turns))
    if track.branch and record.branch is not None:  # the branch's copied prefix holds the answered revisions
        answered = (r.turn_index for r in record.revisions if r.answered and r.turn_index < record.branch.from_turn)
        revised = sorted({record.branch.from_turn, *answered, *revised})
    messages = [*_system(job, side), *_side_view(turns, side, job.mode)]
    return SFTRecord(id=stable_id("sft", record.id), messages=messages, dialogue_id=record.id, revised_turns=revised,
                     cut_at=cut, cut_reason=None if stop is None else stop[1], from_branch=track.branch,
                     target=record.target)


def data_outcome(record: DialogueRecord, *, keep_unverified: bool) -> dict[str, Any]:
    """What the dialogue's training rows left out: pairs dropped by reason, and whether its SFT row
    was cut or dropped (for the manifest's counts)."""
    job = job_of(record)
    sft = build_sft_record(record, job)
    stop = sft_track(record).sft_cut(job.judged_side)
    return {"dropped_pairs": dict(dropped_pairs(record, keep_unverified=keep_unverified)),
            "sft": "dropped" if sft is None else ("cut" if sft.cut_at is not None else "whole"),
            "sft_cut_reason": "no_turn" if sft is None and stop is None else None if stop is None else stop[1],
            "failed_steps": dict(failed_steps(record)),
            "ungrounded_findings": sum(v.dropped_findings or 0 for v in all_verdicts(record))}


def all_verdicts(record: DialogueRecord) -> list[TurnVerdict]:
    """The dialogue's verdicts, trunk and branch."""
    return [*record.verdicts, *(record.branch.verdicts if record.branch else [])]


def failed_steps(record: DialogueRecord) -> Counter[str]:
    """The dialogue's critic, reviser and verifier calls that failed for good (STEPS), trunk and branch."""
    verdicts = all_verdicts(record)
    revisions = [*record.revisions, *(record.branch.revisions if record.branch else [])]
    errors = [v.error for v in verdicts] + [r.error for r in revisions]
    return Counter(e.split(":", 1)[0] for e in errors if e)
