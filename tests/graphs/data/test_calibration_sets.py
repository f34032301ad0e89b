"""The two shipped calibration sets (rubric, transfer), turns that break two principles, and the
figures per set with the gap between them, on a scripted critic whose verdicts are known."""

from __future__ import annotations

import json
import re
from typing import Any

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.graphs.commands.critic_calibration import Critic, calibrate
from sparring.principles.labelled import BUILTIN_SETS, LabelledItem, builtin_items
from sparring.principles.loader import builtin_constitution

TRANSFER = builtin_items("transfer")
RUBRIC = builtin_items("rubric")
TURN = re.compile(r'Turn to judge, by (?P<speaker>.+?):\n"""\n(?P<text>.*?)\n"""', re.S)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_the_transfer_set_is_what_the_issue_asks() -> None:
    constitution = builtin_constitution()
    assert set(BUILTIN_SETS) == {"rubric", "transfer"}
    assert len(TRANSFER) >= 60 and {i.principle for i in TRANSFER} == set(constitution.ids)
    assert all(i.note.strip() for i in TRANSFER)
    assert sum(len(i.context) >= 6 for i in TRANSFER) * 2 >= len(TRANSFER)
    assert {i.label for i in TRANSFER} == {"violates", "near-miss"}
    multi = [i for i in TRANSFER if i.also]
    assert len(multi) >= 4 and all(set(i.also) <= set(constitution.ids) for i in multi)
    assert all(i.id.startswith("transfer/") and i.set_name == "transfer" for i in TRANSFER)
    assert all(i.set_name == "rubric" for i in RUBRIC) and len(RUBRIC) == 360


def test_the_transfer_set_shares_no_wording_with_the_guidance_or_the_rubric_set() -> None:
    """Written apart: no run of six words of a principle's text or checking guidance, nor of a rubric item's
    judged turn, appears in a transfer item's turn."""
    def grams(text: str, n: int = 6) -> set[tuple[str, ...]]:
        w = _words(text)
        return {tuple(w[k:k + n]) for k in range(len(w) - n + 1)}

    guidance: set[tuple[str, ...]] = set()
    for p in builtin_constitution().principles:
        guidance |= grams(f"{p.text} {p.critique}")
    rubric = set().union(*(grams(i.turn.text) for i in RUBRIC))
    for item in TRANSFER:
        mine = grams(item.turn.text)
        assert not mine & guidance, item.id
        assert not mine & rubric, item.id


def _critic(say: dict[str, list[str]]) -> Critic:
    """Names, for each item (found by its turn text), the principles in ``say`` (none when absent)."""
    by_text = {i.turn.text: i for i in (*RUBRIC, *TRANSFER)}

    def reply(messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        item = by_text[TURN.search(messages[-1]["content"]).group("text")]  # type: ignore[union-attr]
        return json.dumps({"reasoning": "scripted", "violations": [
            {"principle_id": pid, "evidence": item.turn.text[:20], "severity": "minor"}
            for pid in say.get(item.id, [])]})

    return Critic("scripted", CriticAgent(ScriptedBackend(reply), SamplingParams(temperature=0.0, max_tokens=100)))


async def test_a_flag_of_either_broken_principle_catches_a_two_principle_turn() -> None:
    multi = [i for i in TRANSFER if i.also]
    principles = list(builtin_constitution().principles)
    say = {i.id: [i.also[0]] for i in multi}
    document = await calibrate([_critic(say)], multi, principles)
    rows = document["critics"][0]["verdicts"]
    assert all(r["flagged"] and r["also"] for r in rows)
    assert document["critics"][0]["figures"]["overall"]["recall"] == 1.0


async def test_figures_per_set_and_the_gap() -> None:
    privacy = [i for i in (*RUBRIC, *TRANSFER) if i.principle.startswith("privacy.")]
    principles = [p for p in builtin_constitution().principles if p.id.startswith("privacy.")]
    # Catches every rubric violation, none of the transfer ones; flags no near miss.
    say = {i.id: [i.principle] for i in privacy if i.label == "violates" and i.set_name == "rubric"}
    document = await calibrate([_critic(say)], privacy, principles)
    critic = document["critics"][0]
    sets = critic["figures"]["sets"]
    assert sets["rubric"]["recall"] == 1.0 and sets["transfer"]["recall"] == 0.0
    assert sets["rubric"]["recall_ci"]["low"] > 0.8 and sets["transfer"]["recall_ci"]["high"] < 0.5
    assert critic["gap"]["recall"] == -1.0 and critic["gap"]["false_flag_rate"] == 0.0
    assert document["items"]["sets"] == {"rubric": sum(i.set_name == "rubric" for i in privacy),
                                         "transfer": sum(i.set_name == "transfer" for i in privacy)}


def test_also_is_checked() -> None:
    import pytest
    from pydantic import ValidationError

    base = {"principle": "privacy.no-doxxing", "context": [], "turn": {"A": "x"}}
    with pytest.raises(ValidationError, match="a near miss breaks none"):
        LabelledItem.model_validate({**base, "label": "near-miss", "also": ["privacy.no-unmasking"]})
    with pytest.raises(ValidationError, match="repeats a principle"):
        LabelledItem.model_validate({**base, "label": "violates", "also": ["privacy.no-doxxing"]})


async def test_the_verifier_on_labelled_revisions() -> None:
    from sparring.principles.revision_items import builtin_revision_items

    revisions = builtin_revision_items()
    assert {i.label for i in revisions} == {"fixes", "still-breaks"} and all(i.note for i in revisions)
    # A verifier that finds the principle again in every revision: stops every bad one, passes no good one.
    def reply(messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        item = next(i for i in revisions if f'"""\n{i.revision}\n"""' in messages[-1]["content"])
        return json.dumps({"reasoning": "scripted", "violations": [
            {"principle_id": item.principle, "evidence": item.revision[:20], "severity": "minor"}]})

    verifier = CriticAgent(ScriptedBackend(reply), SamplingParams(temperature=0.0, max_tokens=100), name="verifier")
    critic = _critic({})
    critic = Critic(critic.name, critic.agent, verifier=verifier)
    principles = list(builtin_constitution().principles)
    document = await calibrate([critic], [i for i in RUBRIC if i.principle == "privacy.no-doxxing"], principles)
    f = document["critics"][0]["verifier"]["figures"]
    assert (f["fixes"], f["passed"], f["still_breaks"], f["stopped"]) == (8, 0, 8, 8)
    assert f["stop_rate_ci"]["low"] > 0.6 and f["pass_rate_ci"]["high"] < 0.4
    assert document["critics"][0]["critic_scope"] == "set"
    skipped = await calibrate([_critic({})], RUBRIC[:2], principles)
    assert "skipped" in skipped["critics"][0]["verifier"]


async def test_a_targeted_critic_is_shown_the_item_principle_alone() -> None:
    privacy = [p for p in builtin_constitution().principles if p.id.startswith("privacy.")]
    items = [i for i in RUBRIC if i.principle.startswith("privacy.")]
    shown: list[list[str]] = []

    def reply(messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        shown.append([p.id for p in privacy if p.id in messages[-1]["content"]])
        quote = TURN.search(messages[-1]["content"]).group("text")[:15]  # type: ignore[union-attr]
        return json.dumps({"reasoning": "scripted", "violations": [
            {"principle_id": shown[-1][0], "evidence": quote, "severity": "minor"}]})

    critic = Critic("targeted", CriticAgent(ScriptedBackend(reply), SamplingParams(temperature=0.0, max_tokens=100)),
                    scope="targeted")
    document = await calibrate([critic], items, privacy)
    assert all(len(ids) == 1 for ids in shown) and len(shown) == len(items)
    f = document["critics"][0]["figures"]["overall"]
    # Flags everything it is asked about: recall 1, every near miss a false flag.
    assert (f["recall"], f["false_flag_rate"]) == (1.0, 1.0) and document["critics"][0]["critic_scope"] == "targeted"
