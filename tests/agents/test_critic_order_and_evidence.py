"""Unbiased, grounded verdicts (agents/critic.py): the principles are shown in an order shuffled per
dialogue and recorded in the span, so the loopback server's canned critic (it names the first principle it
is offered) spreads its flags over the set; a finding whose evidence is not in the turn is re-asked once,
then dropped and counted."""

from __future__ import annotations

import asyncio
import json
import string
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent, grounded, principle_order
from sparring.principles.loader import builtin_constitution
from tests.graphs.loopback_run import read_lines

ALL = list(builtin_constitution().principles)


@given(st.text(min_size=1, max_size=30), st.lists(st.sampled_from(ALL), min_size=2, max_size=12, unique=True))
def test_the_order_is_a_permutation_and_a_subset_keeps_its_relative_order(key: str, chosen: list[Any]) -> None:
    full = [p.id for p in principle_order(ALL, key)]
    assert sorted(full) == sorted(p.id for p in ALL)
    sub = [p.id for p in principle_order(chosen, key)]
    assert sub == [pid for pid in full if pid in {p.id for p in chosen}]


def test_orders_differ_between_dialogues_and_every_principle_leads_some() -> None:
    firsts = Counter(principle_order(ALL, f"scenario/{i}")[0].id for i in range(2000))
    assert len(firsts) == len(ALL) and max(firsts.values()) < 2000 / len(ALL) * 2


@given(st.text(alphabet=string.ascii_letters + string.digits + " ,.!?-'", min_size=3, max_size=80), st.data())
def test_grounded_ignores_case_whitespace_and_quotes(turn: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(turn) - 1))
    piece = turn[start:start + data.draw(st.integers(1, 40))]
    if piece.strip(" \"'.,!?-"):
        assert grounded(f'"{piece.upper()}"', turn.lower().replace(" ", "  "))
    assert not grounded("zzz-not-there-qqq", turn.replace("z", "").replace("q", ""))


class Critic:
    """First reply quotes ``first``; the re-ask (if any) quotes ``second``."""

    def __init__(self, first: str, second: str) -> None:
        self.replies, self.calls = [first, second], []  # type: ignore[var-annotated]

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        self.calls.append(messages)
        quote = self.replies[min(len(self.calls), 2) - 1]
        return json.dumps({"reasoning": "r", "violations": [
            {"principle_id": ALL[0].id, "evidence": quote, "severity": "minor"}]})


async def judge(first: str, second: str) -> tuple[Any, Critic]:
    scripted = Critic(first, second)
    agent = CriticAgent(ScriptedBackend(scripted.reply), SamplingParams(temperature=0.0, max_tokens=200))
    messages = [{"role": "user", "speaker": "A", "name": "Ann", "content": "Where is my parcel?"},
                {"role": "assistant", "speaker": "B", "name": "Bo", "content": "It left the depot at 9:40 today."}]
    return await agent.judge(1, "job", messages, 1, ALL[:3]), scripted


async def test_grounded_evidence_is_kept_without_a_re_ask() -> None:
    verdict, scripted = await judge("left the DEPOT at 9:40", "unused")
    assert len(scripted.calls) == 1 and verdict.violated == [ALL[0].id] and verdict.dropped_findings == 0


async def test_an_ungrounded_quote_is_re_asked_once_and_kept_when_the_re_ask_quotes_the_turn() -> None:
    verdict, scripted = await judge("the parcel was lost", "It left the depot")
    assert len(scripted.calls) == 2 and verdict.violated == [ALL[0].id] and verdict.dropped_findings == 0
    assert "the parcel was lost" in scripted.calls[1][-1]["content"]  # told which quote is not in the turn


async def test_a_quote_still_not_in_the_turn_is_dropped_and_counted() -> None:
    verdict, scripted = await judge("the parcel was lost", "still not there")
    assert len(scripted.calls) == 2 and verdict.violated == [] and verdict.findings == []
    assert verdict.dropped_findings == 1


def test_the_canned_critic_spreads_its_flags_over_the_set(tmp_path: Path) -> None:
    """A run through the openai client against the loopback server's canned critic, which always names the
    first principle it is offered: with the order shuffled per dialogue its flags cover nearly every
    principle of the set, where a fixed order gave them all to one; each span records the order shown."""
    from benchmarks.loopback import FakeOpenAIServer
    from benchmarks.loopback.canned import agent_reply
    from sparring.graphs.runtime.pipeline import execute
    from sparring.graphs.runtime.run_request import request_from_config

    sets = ["privacy", "honesty"]
    ids = [p.id for p in ALL if p.category in sets]
    with FakeOpenAIServer(responder=agent_reply) as server:
        config = {"name": "spread", "seed": 3, "concurrency": 4,
                  "backend": {"kind": "openai_compat", "base_url": server.base_url, "model": "fake-model"},
                  "principles": {"sets": sets}, "dialogue": {"max_turns": 2},
                  "jobs": {"dialogues_per_scenario": 20}, "report": {"stats": False},
                  "scenarios": [{"topic": f"topic {i}", "personas": ["Dana: a tenant", "an adviser: knows the rules"]}
                                for i in range(3)]}
        path = tmp_path / "spread.yaml"
        path.write_text(yaml.safe_dump(config))
        asyncio.run(execute(request_from_config(path, out=tmp_path / "run")))
    dialogues = [json.loads(line) for line in (tmp_path / "run" / "dialogues.jsonl").read_text().splitlines()]
    named = Counter(pid for d in dialogues for v in d["verdicts"] for pid in v["violated"])
    assert sum(named.values()) == 60  # one flag per judged turn, 60 dialogues of one judged turn
    assert len(named) >= len(ids) - 2 and max(named.values()) <= 15, named
    spans = read_lines(tmp_path / "run" / "traces.jsonl.zst")
    orders = [s["attributes"]["app.principle_order"] for s in spans
              if s["attributes"].get("app.principle_order") and s["attributes"].get("gen_ai.agent.name") == "critic"]
    assert len(orders) == 60 and all(sorted(o) == sorted(ids) for o in orders) and len({tuple(o) for o in orders}) > 10
