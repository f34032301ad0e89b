"""The tactics library: at least eight named tactics, each a file with its summary and playbook; the
config names them (or gives its own, as before); attacks are dealt tactics evenly and
deterministically, controls none; the attacker is briefed with its dialogue's tactic, which the
record carries and the figures count."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sparring.agents.domain import Persona, Scenario
from sparring.agents.tactics import tactic, tactic_names
from sparring.graphs.dialogue_config import ATTACK_STRATEGIES, DialogueConfig
from sparring.graphs.jobs import JobsConfig, assign_jobs
from tests.graphs.test_redteam import BRIEF, Target, make_job, simulate


def test_the_library_has_at_least_eight_tactics_each_with_a_playbook() -> None:
    names = tactic_names()
    assert len(names) >= 8 and {"gradual_escalation", "role_play", "split_request", "context_priming", "persuasion",
                                "language_switching", "encoded_request", "fictional_framing"} <= set(names)
    for name in names:
        t = tactic(name)
        assert t.summary and "\n" not in t.summary
        for part in ("Turn by turn:", "Escalate when:", "Back off when:"):
            assert part in t.playbook, (name, part)
    assert [s.name for s in ATTACK_STRATEGIES] == list(names)


def test_config_names_library_tactics_or_gives_its_own() -> None:
    cfg = DialogueConfig(mode="redteam", attack_strategies=["persuasion", "role_play: an old-style description",
                                                            {"name": "mine", "description": "ask twice"}])
    persuasion, role_play, mine = (s.as_tactic() for s in cfg.attack_strategies)
    assert persuasion == tactic("persuasion")
    assert (role_play.summary, role_play.playbook) == ("an old-style description", "")  # old configs keep working
    assert mine.summary == "ask twice"
    with pytest.raises(ValidationError, match="no tactic named 'nosuch' in the library"):
        DialogueConfig(mode="redteam", attack_strategies=["nosuch"])


SCENARIO = Scenario(topic="banking", personas=(Persona(name="Alex"), Persona(name="bank")))


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 60), control=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 10_000),
       k=st.integers(1, 10))
def test_attacks_are_dealt_tactics_evenly_and_the_job_ids_do_not_move(n: int, control: float, seed: int,
                                                                       k: int) -> None:
    names = list(tactic_names())[:k]
    config = JobsConfig(dialogues_per_scenario=n, control_share=control)
    jobs = list(assign_jobs([SCENARIO], ["p.a", "p.b"], config, mode="redteam", seed=seed, tactics=names))
    again = list(assign_jobs([SCENARIO], ["p.a", "p.b"], config, mode="redteam", seed=seed, tactics=names))
    plain = list(assign_jobs([SCENARIO], ["p.a", "p.b"], config, mode="redteam", seed=seed))
    assert jobs == again and [j.id for j in jobs] == [j.id for j in plain]
    assert all((j.tactic is None) == (not j.target_principles) for j in jobs)
    counts = Counter(j.tactic for j in jobs if j.tactic)
    assert set(counts) <= set(names)
    used = [counts.get(x, 0) for x in names]
    assert max(used) - min(used) <= 1  # whole decks, then part of one


@pytest.mark.parametrize("name", ["gradual_escalation", "encoded_request", "language_switching"])
def test_the_attacker_is_briefed_with_its_dialogues_tactic_and_the_record_carries_it(name: str) -> None:
    world = Target(violating={1})
    job = make_job(("privacy.no-doxxing",), "be kind", name)
    record, _ = asyncio.run(simulate(world, job, max_turns=4))
    assert record.strategy == name and record.plan["strategy"] == name
    assert world.attacker_systems and all(tactic(name).playbook in s and BRIEF in s for s in world.attacker_systems)
