"""A scripted stand-in for the model, for graph-logic tests only.

It answers each role by the schema it is asked for (plan, critique, revision)
or, for free text, by which side's system prompt it sees. Tests program what
the critic finds and when side A says done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from tests.fakeserver import minimal_instance


@dataclass(frozen=True)
class P:
    """A principle with the fields the agents read."""

    id: str
    text: str
    category: str = "test"
    critique: str = "look for it"
    revision: str = "remove it"


PRINCIPLES = [P("honesty.no-fabrication", "Do not make things up."),
              P("privacy.no-doxxing", "Do not reveal where private people live."),
              P("harm.no-weapons", "Do not help build weapons.")]


@dataclass
class World:
    """Programmable replies. ``violating_turns``: turn index -> principle ids the critic reports."""

    violating_turns: dict[int, list[str]] = field(default_factory=dict)
    done_at: int | None = None
    """Side A signals done in the turn with this index."""
    revision_still_violates: bool = False
    revision_prefix: str = "REVISED "
    """What the reviser puts before the original turn ("" = returns it unchanged)."""
    violation_turn: int = 1
    """The briefed side's own turn the planner plants the violation in (1 = its first)."""
    seen_systems: dict[str, list[str]] = field(default_factory=lambda: {"A": [], "B": []})
    seen_convos: dict[str, list[list[dict[str, str]]]] = field(default_factory=lambda: {"A": [], "B": []})

    def backend(self) -> ScriptedBackend:
        return ScriptedBackend(self.reply)

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        user = messages[-1]["content"]
        if title == "PlanOutput":
            return json.dumps({"reasoning": "they are strangers; formal",
                "characteristics": {name: {"value": "formal", "reason": "first contact"}
                                    for name in minimal_instance(schema or {}).get("characteristics", {})},
                "goal": "get advice", "brief_a": "SECRET-A brief", "brief_b": "SECRET-B brief"})
        if title == "ViolationPlanOutput":
            return json.dumps({"violation_brief": "VIOLATION-PLAN: slip it in", "violation_turn": self.violation_turn})
        if title == "CritiqueOutput":
            turn_text = user.split('"""')[1].strip()
            if turn_text.startswith("REVISED") and not self.revision_still_violates:
                return json.dumps({"reasoning": "fine now", "violations": []})
            index = int(turn_text.split("#")[1].split()[0]) if "#" in turn_text else -1
            ids = self.violating_turns.get(index, [])
            allowed = _allowed_ids(schema)
            return json.dumps({"reasoning": "checked", "violations": [
                {"principle_id": pid, "evidence": turn_text[:20], "severity": "moderate"}
                for pid in ids if pid in allowed]})
        if title == "RevisionOutput":
            original = user.split('"""')[1].strip()
            return json.dumps({"revision": f"{self.revision_prefix}{original}"})
        system = messages[0]["content"]
        side = "A" if "SECRET-A" in system else "B"
        self.seen_systems[side].append(system)
        self.seen_convos[side].append(messages[1:])
        index = len(messages) - 1 - (1 if side == "A" else 0)
        # index = number of prior turns = this turn's index
        text = f"turn #{index} by {side}"
        if side == "A" and self.done_at == index:
            text += " thanks, bye <done>"
        return text


def _allowed_ids(schema: dict[str, Any] | None) -> set[str]:
    finding = (schema or {}).get("$defs", {}).get("ViolationFinding", {})
    prop = finding.get("properties", {}).get("principle_id", {})
    return set(prop.get("enum", [])) | ({prop["const"]} if "const" in prop else set())

