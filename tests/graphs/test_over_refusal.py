"""Over-refusal probes: harmless questions that sound risky, in several categories; a probe's target
turns are judged against helpfulness.no-needless-refusal (whatever the run's principle set), and the
figures report the over-refusal rate beside the attack success rate, each with a 95% Wilson interval."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sparring.agents.over_refusal import OVER_REFUSAL_PRINCIPLE, probe_library
from sparring.graphs.data.attack import compute_attack_stats, wilson_interval
from sparring.graphs.jobs import JobsConfig, assign_jobs
from sparring.graphs.run_config import RunConfig
from tests.graphs.test_redteam import Target, make_job, simulate
from tests.graphs.test_redteam_tactics import SCENARIO


def test_the_library_has_several_categories_of_probes() -> None:
    probes = probe_library()
    categories = {p.category for p in probes}
    assert len(categories) >= 5 and all(sum(p.category == c for p in probes) >= 3 for c in categories)
    assert len({p.id for p in probes}) == len(probes) and all(p.question.strip() for p in probes)


def test_probes_are_dealt_as_their_share_without_targets_or_tactics() -> None:
    config = JobsConfig(dialogues_per_scenario=400, control_share=0.2, over_refusal_share=0.25)
    jobs = list(assign_jobs([SCENARIO], ["p.a", "p.b"], config, mode="redteam", seed=3, tactics=["persuasion"],
                            probes=probe_library()))
    probes = [j for j in jobs if j.probe]
    assert 70 <= len(probes) <= 130
    assert all(not j.target_principles and j.tactic is None for j in probes)
    assert len({j.probe.id for j in probes if j.probe}) == len(probe_library())  # the whole library is used
    with pytest.raises(ValidationError, match="over-refusal probes are for redteam mode"):
        RunConfig.model_validate({"jobs": {"over_refusal_share": 0.1}})


@pytest.mark.parametrize("refuses", [True, False])
def test_a_probe_is_judged_for_needless_refusal_and_counted_apart(refuses: bool) -> None:
    probe = probe_library()[0]
    world = Target(violating={1} if refuses else set())
    job = make_job((), "be helpful").model_copy(update={"probe": probe})
    plans: list[str] = []
    original = world.reply

    def spy(messages, params, schema):  # type: ignore[no-untyped-def]
        if (schema or {}).get("title") == "AttackPlan":
            plans.append(messages[-1]["content"])
        return original(messages, params, schema)

    world.reply = spy  # type: ignore[method-assign]
    record, pairs = asyncio.run(simulate(world, job, max_turns=2))
    assert probe.question in plans[0] and all("Your approach" not in s for s in world.attacker_systems)
    assert record.probe == probe and record.target_principles == []
    assert (OVER_REFUSAL_PRINCIPLE in record.violated_principles) == refuses
    assert bool(pairs) == refuses  # a needless refusal is revised into a helpful answer: a pair
    attack = compute_attack_stats([json.loads(record.model_dump_json())], lambda pid: "c")
    assert attack is not None and attack["attacks"] == 0 and attack["controls"]["dialogues"] == 0
    refusal = attack["over_refusal"]
    assert (refusal["probes"], refusal["refused"]) == (1, int(refuses))
    assert refusal["per_category"] == {probe.category: {"probes": 1, "refused": int(refuses),
                                                        "rate": float(refuses)}}


@given(n=st.integers(1, 2000), data=st.data())
def test_wilson_interval(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = wilson_interval(k, n)  # type: ignore[misc]
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert [round(1 - hi, 4), round(1 - lo, 4)] == pytest.approx(wilson_interval(n - k, n), abs=1e-4)
    # The bounds solve |p - x| = z * sqrt(x (1 - x) / n) (the score test's definition).
    for x in (lo, hi):
        if 0 < x < 1:
            assert abs(abs(k / n - x) - 1.96 * math.sqrt(x * (1 - x) / n)) < 2e-3


def test_wilson_known_values() -> None:
    assert wilson_interval(5, 10) == [0.2366, 0.7634]
    assert wilson_interval(0, 10) == [0.0, 0.2775]
    assert wilson_interval(0, 0) is None
