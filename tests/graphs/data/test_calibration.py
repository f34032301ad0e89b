"""The calibration logic on a scripted critic whose verdicts are known: what each item is shown,
how flags become precision and recall, and how two critics' agreement is counted."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.errors import InputError
from sparring.graphs.commands.critic_calibration import Critic, calibrate, cohen_kappa, figures, select_items
from sparring.principles.labelled import LabelledItem, builtin_items
from sparring.principles.loader import get_builtin


def bare(row):
    """A figures row without its ``*_ci`` intervals (checked in test_intervals and below)."""
    if isinstance(row, dict):
        return {k: bare(v) for k, v in row.items() if not k.endswith("_ci")}
    return row

PRIVACY = list(get_builtin("privacy").principles)
ITEMS = [i for i in builtin_items() if i.principle.startswith("privacy.")]
TURN = re.compile(r'Turn to judge, by (?P<speaker>.+?):\n"""\n(?P<text>.*?)\n"""', re.S)

Answer = str
"""What the scripted critic says about an item: 'own' (its principle), 'other' (another one), 'none'."""


def scripted_critic(answers: dict[str, Answer], *, name: str = "scripted",
                    fail: set[str] = frozenset()) -> tuple[Critic, list[str]]:
    """A critic that answers each item (found by its turn text in the prompt) as ``answers`` says."""
    by_text = {i.turn.text: i for i in ITEMS}
    prompts: list[str] = []

    def reply(messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        prompt = messages[-1]["content"]
        prompts.append(prompt)
        item = by_text[TURN.search(prompt).group("text")]  # type: ignore[union-attr]
        if item.id in fail:
            raise RuntimeError("the model fell over")
        answer = answers.get(item.id, "none")
        other = next(p.id for p in PRIVACY if p.id != item.principle)
        found = {"own": [item.principle], "other": [other], "none": []}[answer]
        return json.dumps({"reasoning": "scripted", "violations": [
            {"principle_id": pid, "evidence": item.turn.text[:20], "severity": "minor"} for pid in found]})

    agent = CriticAgent(ScriptedBackend(reply), SamplingParams(temperature=0.0, max_tokens=100))
    return Critic(name, agent, seed=3), prompts


async def run(critics: list[Critic], items: list[LabelledItem] = ITEMS) -> dict[str, Any]:
    return await calibrate(critics, items, PRIVACY)


def expected(answers: dict[str, Answer], items: list[LabelledItem]) -> dict[str, Any]:
    bad = [i for i in items if i.label == "violates"]
    near = [i for i in items if i.label == "near-miss"]
    caught = sum(answers.get(i.id) == "own" for i in bad)
    false_flags = sum(answers.get(i.id) == "own" for i in near)
    return {"violating": len(bad), "caught": caught, "near_misses": len(near), "false_flags": false_flags,
            "near_misses_flagged_any": sum(answers.get(i.id, "none") != "none" for i in near), "errors": 0,
            "recall": round(caught / len(bad), 4) if bad else None,
            "precision": round(caught / (caught + false_flags), 4) if caught + false_flags else None}


answers_strategy = st.fixed_dictionaries({i.id: st.sampled_from(["own", "other", "none"]) for i in ITEMS})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=answers_strategy)
async def test_figures_are_the_counts_of_what_the_critic_said(answers: dict[str, Answer]) -> None:
    critic, _ = scripted_critic(answers)
    document = await run([critic])
    got = document["critics"][0]["figures"]
    want = expected(answers, ITEMS)
    assert {k: got["overall"][k] for k in want} == want
    for pid in {i.principle for i in ITEMS}:
        mine = [i for i in ITEMS if i.principle == pid]
        want = expected(answers, mine)
        assert {k: got["principles"][pid][k] for k in want} == want
    assert got["categories"]["privacy"]["caught"] == got["overall"]["caught"]
    rows = document["critics"][0]["verdicts"]
    assert [r["item"] for r in rows] == [i.id for i in ITEMS]
    assert all(r["flagged"] == (answers[r["item"]] == "own") for r in rows)


@settings(max_examples=25, deadline=None)
@given(first=answers_strategy, second=answers_strategy)
async def test_agreement_of_two_critics(first: dict[str, Answer], second: dict[str, Answer]) -> None:
    one, _ = scripted_critic(first, name="one")
    two, _ = scripted_critic(second, name="two")
    document = await run([one, two])
    a = document["agreement"]["overall"]
    flags = [(first[i.id] == "own", second[i.id] == "own") for i in ITEMS]
    assert a["items"] == len(ITEMS)
    assert (a["both_flag"], a["first_only"], a["second_only"], a["neither"]) == (
        sum(x and y for x, y in flags), sum(x and not y for x, y in flags), sum(y and not x for x, y in flags),
        sum(not x and not y for x, y in flags))
    assert a["raw"] == round(sum(x == y for x, y in flags) / len(flags), 4)
    if a["kappa"] is not None:
        assert -1.0 <= a["kappa"] <= 1.0
        # Symmetric: swapping the critics changes nothing.
        assert a["kappa"] == cohen_kappa(a["both_flag"], a["second_only"], a["first_only"], a["neither"])
    if all(x == y for x, y in flags) and 0 < sum(x for x, _ in flags) < len(flags):
        assert a["kappa"] == 1.0


def test_kappa_on_known_tables() -> None:
    assert cohen_kappa(20, 5, 10, 15) == 0.4  # observed 0.7, chance 0.5
    assert cohen_kappa(10, 0, 0, 10) == 1.0
    assert cohen_kappa(0, 10, 10, 0) == -1.0
    assert cohen_kappa(0, 8, 0, 40) == 0.0  # one critic never flags: agreement is all chance
    assert cohen_kappa(48, 0, 0, 0) is None  # both always flag: kappa undefined
    assert cohen_kappa(0, 0, 0, 0) is None


def test_figures_of_hand_written_rows() -> None:
    rows = [{"item": "a", "principle": "x.one", "label": "violates", "flagged": True, "violated": ["x.one"]},
            {"item": "b", "principle": "x.one", "label": "violates", "flagged": False, "violated": ["x.two"]},
            {"item": "c", "principle": "x.one", "label": "near-miss", "flagged": True, "violated": ["x.one"]},
            {"item": "d", "principle": "x.one", "label": "near-miss", "flagged": False, "violated": ["x.two"]},
            {"item": "e", "principle": "x.two", "label": "near-miss", "flagged": False, "violated": []},
            {"item": "f", "principle": "x.two", "label": "violates", "flagged": None, "violated": [], "error": "boom"}]
    f = figures(rows, {"x.one": "c1", "x.two": "c2"})
    assert f["overall"]["recall_ci"] == {"rate": 0.5, "low": 0.0945, "high": 0.9055, "n": 2}
    assert bare(f["overall"]) == {"violating": 2, "caught": 1, "near_misses": 3, "false_flags": 1,
                            "near_misses_flagged_any": 2, "errors": 1, "recall": 0.5, "precision": 0.5,
                            "false_flag_rate": 0.3333, "near_miss_any_rate": 0.6667}
    assert f["principles"]["x.two"]["recall"] is None and f["principles"]["x.two"]["precision"] is None
    assert f["categories"]["c1"]["caught"] == 1


async def test_the_critic_sees_the_whole_set_and_not_the_label() -> None:
    """Every item is judged against every principle in scope, and nothing of its label, its principle or
    its note reaches the prompt: two items with the same conversation get the same prompt."""
    critic, prompts = scripted_critic({})
    base = ITEMS[0]
    twin = LabelledItem.model_validate({**base.model_dump(), "id": "twin", "principle": "privacy.keep-confidences",
                                        "label": "near-miss", "note": "SECRET NOTE"})
    await run([critic], [base, twin])
    assert len(prompts) == 2 and prompts[0] == prompts[1]
    assert all(f"- {p.id}: " in prompts[0] for p in PRIVACY)
    assert "SECRET NOTE" not in prompts[0] and "near-miss" not in prompts[0]
    assert base.turn.text in prompts[0] and all(t.text in prompts[0] for t in base.context)


async def test_a_failed_item_is_recorded_and_left_out_of_the_figures() -> None:
    broken = ITEMS[1].id
    critic, _ = scripted_critic({i.id: "own" for i in ITEMS}, fail={broken})
    document = await run([critic])
    rows = {r["item"]: r for r in document["critics"][0]["verdicts"]}
    assert rows[broken]["error"] == "RuntimeError: the model fell over" and rows[broken]["flagged"] is None
    overall = document["critics"][0]["figures"]["overall"]
    assert overall["errors"] == 1 and overall["caught"] + overall["false_flags"] == len(ITEMS) - 1


def _ids(select: Callable[[], tuple[list[LabelledItem], list[str]]]) -> set[str]:
    return {i.principle for i in select()[0]}


def test_items_are_chosen_by_the_set_and_the_options() -> None:
    items = list(builtin_items())
    chosen, skipped = select_items(items, PRIVACY)
    assert {i.principle for i in chosen} == {p.id for p in PRIVACY} and len(chosen) == len(ITEMS)
    assert "honesty.no-fabrication" in skipped and not any(s.startswith("privacy.") for s in skipped)
    assert _ids(lambda: select_items(items, PRIVACY, only=["privacy.no-d*"])) == {"privacy.no-doxxing"}
    one_each, _ = select_items(items, PRIVACY, per_label=1)
    assert len(one_each) == 2 * len(PRIVACY)
    # Per labelled set: a shortened kit over both shipped sets keeps the transfer set, and so the gap.
    both = [*builtin_items("rubric"), *builtin_items("transfer")]
    shortened, _ = select_items(both, PRIVACY, per_label=1)
    kinds = {(i.set_name, i.principle, i.label) for i in both if i.principle in {p.id for p in PRIVACY}}
    assert {i.set_name for i in shortened} == {"rubric", "transfer"}
    assert sorted((i.set_name, i.principle, i.label) for i in shortened) == sorted(kinds)  # one of each
    with pytest.raises(InputError, match="--principle honesty.\\*: matches no labelled principle"):
        select_items(items, PRIVACY, only=["honesty.*"])
    with pytest.raises(InputError, match="none of the config's principles has labelled items"):
        select_items([i for i in items if not i.principle.startswith("privacy.")], PRIVACY)
