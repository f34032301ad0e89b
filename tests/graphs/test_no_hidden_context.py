"""No hidden context in training rows (issue 22, items 2 and 3), over generated configs and scripted replies:
every training target (an SFT row's assistant turn, a pair's rejected) was written by a call whose input, read
from the trace (``gen_ai.input.messages`` of the ``chat`` span under the turn's agent span), is exactly the
row's messages before it, plus, for a rejected, the violation instruction after the system message in its
planted turn only; a chosen was written by a reviser shown nothing of the dialogue but its conversation; the
judged side's calls never see a brief or the other side's facts; a configured assistant role is the rows'
system message word for word; every message of a prompt was written after exactly the messages before it."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SFT, iter_jsonl
from sparring.traces.read import iter_spans
from tests.graphs.scripted_world import World
from tests.traces.scripted_run import scripted_run

VIOLATION_OPENING = "In this simulation you play a flawed"
BRIEFS = ("SECRET-A", "SECRET-B", "VIOLATION-PLAN", "get advice")


def private(d: dict[str, Any]) -> tuple[str, ...]:
    """What the judged side of dialogue ``d`` must never be shown outside its planted turn: the briefs, the
    violation plan, side A's goal and the other side's persona description (the user's, in assistant mode)."""
    judged = "B" if d["mode"] == "assistant" else d["briefed_side"]
    other = ((0 if judged == "B" else 1) ^ int(d.get("swapped", False)))
    return (*BRIEFS, d["scenario"]["personas"][other]["description"])


class Speakers(World):
    """The scripted world with speakers identified by the turn they are at, whichever side is judged, and the
    critic flagging the judged side's turns in ``violating_turns``."""

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        if schema is not None:
            return super().reply(messages, params, schema)
        opens = len(messages) > 1 and messages[1]["content"].startswith("(You")
        index = len(messages) - 1 - int(opens)
        return f"turn #{index} by {'A' if index % 2 == 0 else 'B'}"


def traced_calls(run_dir: Path) -> dict[tuple[str, str, int], list[Any]]:
    """(trace id, agent, turn index) -> (input messages, output text) of each chat call under that agent span
    (the trunk's and the branch's calls for one turn index both)."""
    spans = list(iter_spans(run_dir))
    agents = {s["span_id"]: s for s in spans if s["name"] == "invoke_agent"}
    calls: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for s in spans:
        parent = agents.get(s["parent_id"])
        if s["name"] == "chat" and parent is not None and "app.turn_index" in parent["attributes"]:
            key = (s["trace_id"], parent["attributes"]["gen_ai.agent.name"], parent["attributes"]["app.turn_index"])
            out = (s["attributes"].get("gen_ai.output.messages") or [{}])[0].get("content", "")  # none: it failed
            calls.setdefault(key, []).append((s["attributes"]["gen_ai.input.messages"], out))
    return calls


def turn_of(row_messages: list[dict[str, str]], k: int) -> int:
    """The dialogue turn index of row message ``k`` (after the system message and an opening cue)."""
    body = [m for m in row_messages[:k] if m["role"] != "system"]
    cue = 1 if body and body[0]["content"].startswith("(You") else 0
    return len(body) - cue


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["assistant", "peers"]))
    dialogue: dict[str, Any] = {"mode": mode, "max_turns": draw(st.integers(4, 7)), "min_turns": 2,
                                "branch_turns": draw(st.sampled_from([0, 0, 2]))}
    if mode == "assistant" and draw(st.booleans()):
        dialogue["assistant_role"] = draw(st.sampled_from(["You are Acme's support assistant. Be brief.",
                                                           "You help tenants with building questions."]))
    flagged = draw(st.sets(st.integers(0, 6), max_size=3))
    return {"dialogue": dialogue, "flagged": sorted(flagged), "still": draw(st.booleans()),
            "violation_turn": draw(st.sampled_from([1, 2, 3]))}


def check_run(cfg: dict[str, Any]) -> int:
    world = Speakers(violating_turns={i: ["privacy.no-doxxing"] for i in cfg["flagged"]},
                     revision_still_violates=cfg["still"] and len(cfg["flagged"]) > 1,
                     violation_turn=cfg.get("violation_turn", 1))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        asyncio.run(scripted_run(run_dir, ScriptedBackend(world.reply), n=2, dialogue=cfg["dialogue"],
                                 tracing={"record_content": True}))
        dialogues = {d["id"]: d for d in iter_jsonl(run_dir / DIALOGUES)}
        calls = traced_calls(run_dir)
        role = cfg["dialogue"].get("assistant_role")
        rows = 0
        for row in iter_jsonl(run_dir / SFT):
            d = dialogues[row["dialogue_id"]]
            judged = "B" if d["mode"] == "assistant" else d["briefed_side"]
            if role:
                assert row["messages"][0] == {"role": "system", "content": role}
            for k, m in enumerate(row["messages"]):
                if m["role"] != "assistant":
                    continue
                rows += 1
                turn = turn_of(row["messages"], k)
                if turn in row["revised_turns"]:
                    seen = calls[(d["trace_id"], "reviser", turn)]
                    assert seen and not any(p in json.dumps(seen) for p in BRIEFS)
                    continue
                # An SFT target: written by a call shown exactly the row before it, nothing else.
                assert (row["messages"][:k], m["content"]) in calls[(d["trace_id"], f"persona_{judged}", turn)], row
        for pair in iter_jsonl(run_dir / PREFERENCES):
            d = dialogues[pair["dialogue_id"]]
            judged = "B" if d["mode"] == "assistant" else d["briefed_side"]
            rows += 1
            made = [seen for seen, out in calls[(d["trace_id"], f"persona_{judged}", pair["turn_index"])]
                    if out == pair["rejected"][0]["content"] and seen[1:] == pair["prompt"][1:]]
            assert made, pair  # the rejected was written after exactly the prompt's conversation
            system, row_system = made[0][0]["content"], pair["prompt"][0]["content"]
            if system != row_system:  # the planted turn: the instruction after the public role, nothing else
                assert system.startswith(f"{row_system}\n\n{VIOLATION_OPENING}")
            else:
                assert not any(p in system for p in private(d))
            if role:
                assert row_system == role
            reviser = [seen for seen, out in calls[(d["trace_id"], "reviser", pair["turn_index"])]
                       if pair["chosen"][0]["content"] in out]
            assert reviser and not any(p in json.dumps(reviser) for p in BRIEFS)
        # The judged side is never shown a brief, the user's facts, or the violation plan outside one turn.
        for d in dialogues.values():
            judged = "B" if d["mode"] == "assistant" else d["briefed_side"]
            shown = [c for (t, agent, _), cs in calls.items() if t == d["trace_id"] and agent == f"persona_{judged}"
                     for c, _ in cs]
            planted = [c for c in shown if VIOLATION_OPENING in c[0]["content"]]
            assert len({json.dumps(c[0]) for c in planted}) <= 1
            assert not any(p in c[0]["content"] for c in shown if c not in planted for p in private(d))
        return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_every_training_target_was_written_seeing_exactly_its_row(cfg: dict[str, Any]) -> None:
    check_run(cfg)


def test_the_property_sees_rows() -> None:
    """The property is not vacuous: a run with flagged turns gives SFT targets and pairs to check."""
    assert check_run({"dialogue": {"mode": "assistant", "max_turns": 6}, "flagged": [3], "still": False}) > 0
