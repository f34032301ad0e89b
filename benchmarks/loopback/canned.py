"""Canned agent replies of a realistic size, so a benchmark exercises every stage of a dialogue.

The planner gets a full plan, persona turns get a sentence or two, the critic
finds a violation in every original turn (so each judged turn is revised and
verified) and none in a revision. Nothing is random: every dialogue of a given
config makes the same number of calls.
"""

from __future__ import annotations

import json
from typing import Any

from .schema import minimal_instance

REVISED = "Revised:"
TURN = ("That is a fair question, and I have thought about it a good deal. Here is what I would do in your place, "
        "step by step, with the reasons for each step so that you can judge them yourself.")
PLAN = {
    "reasoning": "The two speakers have not met before, so the tone is polite and a little formal. " * 4,
    "goal": "Get practical, trustworthy advice about the problem at hand.",
    "brief_a": "You are worried and want concrete steps; ask follow-up questions when an answer is vague. " * 2,
    "brief_b": "You answer helpfully; in your second turn, slip in the violation naturally as planned. " * 2,
    "violation_turn": 1,
}


SUBTOPICS = ("lost luggage at the airport", "a vegetarian dinner for six", "visa rules for a short stay",
             "baking sourdough bread", "travel insurance claims", "sharpening kitchen knives",
             "night trains across Europe", "fermenting vegetables at home", "booking a hotel with a dog",
             "reading a wine list")
NAMES = ("Dana, a night-shift nurse", "Omar, a retired engineer", "Lena, a student on a budget",
         "Kofi, a restaurant owner", "Mei, a travel blogger", "Ravi, a software tester",
         "Ines, a primary-school teacher", "Tomas, a long-distance cyclist")


def _pick(pool: tuple[str, ...], body: dict[str, Any], count: int) -> list[str]:
    """``count`` distinct items, where to start chosen by the request's text (a DiaSynth stage asks
    per topic and subtopic: each gets its own items, and the same request the same ones)."""
    start = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return [pool[(start + i) % len(pool)] for i in range(min(count, len(pool)))]


def agent_reply(body: dict[str, Any]) -> str:
    """The reply to one chat request body, by the schema it asks for (or free text for a persona turn)."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if schema is None:
        return TURN
    title = schema.get("title")
    if title in ("PlanOutput", "AttackPlan"):
        # The planner's schema decides the shape of ``characteristics`` (one key per requested
        # characteristic, or none) and, for an attack, the strategies; the smallest instance of it
        # fits, the rest is the canned plan.
        plan = {**minimal_instance(schema), **{k: v for k, v in PLAN.items() if k in schema.get("properties", {})
                                               and k != "characteristics"}}
        return json.dumps(plan)
    if title == "SubtopicsOutput":
        count = schema["properties"]["subtopics"].get("minItems", 2)
        return json.dumps({"subtopics": _pick(SUBTOPICS, body, count)})
    if title == "PersonasOutput":
        count = schema["properties"]["personas"].get("minItems", 2)
        return json.dumps({"personas": [{"name": n, "description": f"{n.split(', ')[1]} with opinions"}
                                        for n in _pick(NAMES, body, count)]})
    if title == "RevisionOutput":
        return json.dumps({"revision": f"{REVISED} {TURN}"})
    if title == "CritiqueOutput":
        # The turn under judgement, quoted in the request (a re-ask adds messages after it).
        quoted = next(m["content"] for m in reversed(body["messages"]) if '"""' in m["content"])
        judged = quoted.split('"""')[1].strip()
        if judged.startswith(REVISED):
            return json.dumps({"reasoning": "The revision keeps the intent and breaks nothing.", "violations": []})
        finding = schema["$defs"]["ViolationFinding"]["properties"]["principle_id"]
        principle = finding["enum"][0] if "enum" in finding else finding["const"]
        return json.dumps({"reasoning": "The turn states a guess as a fact.", "violations": [
            {"principle_id": principle, "evidence": judged[:60], "severity": "moderate"}]})
    return json.dumps(minimal_instance(schema))
