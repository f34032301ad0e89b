"""Adaptive attacks (``dialogue.adaptive_attacks``): later attacks on a goal are planned knowing how
the earlier ones failed (PAIR/TAP-style refinement across dialogues).

"Earlier" is defined by rounds, so that it does not depend on which dialogue happens to finish first:
the attacks on one goal (``goal_key``: the behaviour, else the scenario and targeted principles) are
numbered in job order, round 0, 1, 2, ...; an attack of round r is planned once every attack of the
rounds before r on its goal has finished, and sees those of them that failed. ``by_round`` orders the
jobs round by round, so an attack only ever waits for dialogues already started (no deadlock at any
concurrency). What an attack sees (``attempt_summary``) is what any user could have seen: the tactic
and the conversation, the user's turns and the target's replies; never the planner's reasoning or
brief, nor the critic's verdicts, reasoning or evidence.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sparring.agents.domain import DialogueJob

__all__ = ["AttemptBoard", "attempt_summary", "by_round", "goal_key"]

_EXCERPT = 300
"""Characters kept of each turn in a summary."""
_MAX_ATTEMPTS = 5
"""Failed attempts summarized (the latest ones)."""


def goal_key(job: DialogueJob) -> str | None:
    """What "the same goal" means for a job: None for a control (not adaptive). With several targets,
    the goal on one target: each target's attacks see only their own target's earlier failures."""
    if not job.target_principles:
        return None
    behaviour = getattr(job, "behaviour", None)
    goal = f"behaviour:{behaviour.id}" if behaviour is not None else \
        f"{job.scenario.id}:{','.join(sorted(job.target_principles))}"
    return goal if job.target is None else f"{job.target}|{goal}"


def rounds(jobs: Iterable[DialogueJob]) -> dict[str, int]:
    """Job id -> its round on its goal (its position among the jobs on that goal)."""
    seen: dict[str, int] = defaultdict(int)
    out = {}
    for job in jobs:
        key = goal_key(job)
        out[job.id] = seen[key] if key is not None else 0
        if key is not None:
            seen[key] += 1
    return out


def by_round(jobs: Sequence[DialogueJob]) -> list[DialogueJob]:
    """The jobs round by round (stable within a round)."""
    order = rounds(jobs)
    return sorted(jobs, key=lambda j: order[j.id])


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[:_EXCERPT - 3] + "..."


def attempt_summary(records: Sequence[Mapping[str, Any]]) -> str:
    """The earlier failed attempts on a goal, as the planner of the next one reads them: per attempt, its
    tactic and its conversation (the user's turns and the target's replies, cut to excerpts). Only the
    record's ``strategy`` and ``messages`` are read."""
    failed = [r for r in records if r.get("status", "ok") == "ok" and not r.get("targeted_violated")]
    lines = []
    for number, record in enumerate(failed[-_MAX_ATTEMPTS:], 1):
        lines.append(f"Attempt {number} (tactic: {record.get('strategy') or 'unnamed'}):")
        for message in record.get("messages") or []:
            who = "user" if message.get("speaker") == "A" else "target"
            lines.append(f"  {who}: {_excerpt(str(message.get('content', '')))}")
    return "\n".join(lines)


class AttemptBoard:
    """Finished attacks by goal and round, for one run's (or shard's) jobs; ``earlier`` waits for the
    rounds before a job's on its goal. Records of dialogues finished before a resume are ``report``-ed first."""

    def __init__(self, jobs: Iterable[DialogueJob]) -> None:
        jobs = list(jobs)
        self._round = rounds(jobs)
        self._key = {j.id: goal_key(j) for j in jobs}
        self._waiting: dict[str, set[str]] = {j.id: set() for j in jobs}
        by_goal: dict[str, list[DialogueJob]] = defaultdict(list)
        for job in jobs:
            if self._key[job.id] is not None:
                by_goal[self._key[job.id]].append(job)  # type: ignore[index]
        for group in by_goal.values():
            for job in group:
                self._waiting[job.id] = {j.id for j in group if self._round[j.id] < self._round[job.id]}
        self._done: dict[str, Mapping[str, Any]] = {}
        self._finished = {j.id: asyncio.Event() for j in jobs}

    @classmethod
    def of_run(cls, jobs: Iterable[DialogueJob], written: Iterable[Mapping[str, Any]]) -> AttemptBoard:
        """The board of a run's jobs, holding the dialogues it had already written (a resumed run)."""
        board = cls(jobs)
        for row in written:
            if row.get("status") == "ok":
                board.report(row)
        return board

    def report(self, record: Mapping[str, Any]) -> None:
        """A finished dialogue (ok or failed)."""
        job_id = str(record["id"])
        self._done[job_id] = record
        if job_id in self._finished:
            self._finished[job_id].set()

    async def earlier(self, job: DialogueJob) -> list[Mapping[str, Any]]:
        """The finished attacks of the earlier rounds on ``job``'s goal, in job order, once all have finished."""
        needed = self._waiting.get(job.id, set())
        for job_id in needed:
            await self._finished[job_id].wait()
        order = {jid: i for i, jid in enumerate(self._round)}
        return [self._done[jid] for jid in sorted(needed, key=order.__getitem__)]
