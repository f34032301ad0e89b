"""Several targets, one set of attacks (``roles.side_b: [a, b]``): the plan of an attack is made once
and played against every target.

The copies of one attack (``DialogueJob.for_target``) share its ``attack_id``; the first of them to
reach its plan step calls the planner, the others wait for that plan and take it. The plan is keyed by
the attack and by what the planner was told of earlier attempts (adaptive attacks: each target's own
failures), so an attack whose targets failed differently is planned once per target, as it must be.
A plan whose call failed is not kept: the next copy asks again. A resumed run starts with the plans of
the dialogues it had already written (``of_run``), so each attack's planner is still called once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from sparring.agents.domain import TARGET_MARK, CharacteristicValue, PlanOutput

__all__ = ["SharedPlans"]

PlanKey = tuple[str, str]
"""(attack id, the summary of earlier attempts the planner was shown; empty when none)."""


class SharedPlans:
    """Plans by attack, made by the first copy of the attack that asks (in one process)."""

    def __init__(self) -> None:
        self._plans: dict[PlanKey, tuple[PlanOutput, str]] = {}
        self._locks: dict[PlanKey, asyncio.Lock] = {}
        self.calls = 0
        """Planner calls made through this board (what the tests count)."""

    @classmethod
    def of_run(cls, written: Iterable[Mapping[str, Any]]) -> SharedPlans:
        """A board holding the plans of the dialogues a run had already written (those planned without
        earlier attempts: an adaptive plan is its target's own)."""
        board = cls()
        for row in written:
            target, plan = row.get("target"), row.get("plan") or {}
            if row.get("status") != "ok" or not target or not plan or plan.get("earlier_attempts"):
                continue
            attack_id = str(row["id"]).removesuffix(f"{TARGET_MARK}{target}")
            fields = {k: plan[k] for k in ("goal", "brief_a", "brief_b", "violation_turn", "violation_brief")
                      if k in plan and plan[k] is not None}
            made = PlanOutput.model_validate({
                **fields, "reasoning": row.get("reasoning", ""),
                "characteristics": [CharacteristicValue.model_validate(c) for c in row.get("characteristics") or []]})
            board._plans.setdefault((attack_id, ""), (made, str(row.get("plan_from") or row["id"])))
        return board

    async def plan(self, attack_id: str, earlier: str, dialogue_id: str,
                   make: Callable[[], Awaitable[PlanOutput]]) -> tuple[PlanOutput, str]:
        """The plan of ``attack_id`` given ``earlier``, and the id of the dialogue whose planner call made
        it: ``make()`` is called (for ``dialogue_id``) only when no copy has made it yet."""
        key = (attack_id, earlier)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._plans:
                self.calls += 1
                self._plans[key] = (await make(), dialogue_id)
            return self._plans[key]
