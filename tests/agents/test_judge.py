"""The G-Eval judge on scripted models: probability-weighted scores from the top log-probabilities of
the rating token, the sampled fallback when a backend returns none, and the judge stage of the graph."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sparring.agents.backends.messages import RawCompletion, SamplingParams, TokenLogprob, TokenUsage
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.geval_judge import CRITERIA, JudgeAgent, JudgeConfig, rating_from_text, score_from_logprobs

JUDGE_PARAMS = SamplingParams(temperature=0.0, max_tokens=8, logprobs=5)
SCENARIO = {"topic": "pets", "subtopic": "cats", "personas": [{"name": "Dana", "description": "a cat owner"},
                                                                {"name": "Lee", "description": ""}]}
DIALOGUE = [{"name": "Dana", "content": "My cat sneezes."}, {"name": "Lee", "content": "Since when?"}]


def criterion_of(messages: list[dict[str, str]]) -> str:
    return next(c for c in CRITERIA if f"- {c} (1-3):" in messages[-1]["content"])


class LogprobBackend(ScriptedBackend):
    """Answers every criterion with a rating token whose top alternatives come from ``distributions``."""

    def __init__(self, distributions: dict[str, dict[str, float]], lead: list[str] = ()) -> None:
        super().__init__(lambda *a: "")
        self.distributions = distributions
        self.lead = list(lead)
        self.params_seen: list[SamplingParams] = []

    async def _generate(self, messages: Any, params: SamplingParams, json_schema: Any) -> RawCompletion:
        self.calls.append(messages)
        self.params_seen.append(params)
        top = {token: math.log(p) for token, p in self.distributions[criterion_of(messages)].items()}
        chosen = max(top, key=top.__getitem__)
        tokens = [TokenLogprob(token=t, logprob=0.0, top={t: 0.0}) for t in self.lead]
        tokens.append(TokenLogprob(token=chosen, logprob=top[chosen], top=top))
        return RawCompletion(text="".join(self.lead) + chosen, usage=TokenUsage(10, len(tokens)), finish_reason="stop",
                             model="scripted", logprobs=tokens)


def test_score_is_the_probability_weighted_rating() -> None:
    # (3*0.6 + 2*0.3 + 1*0.05) / 0.95: the mass outside 1-3 ("x") is renormalised away, " 1" counts as "1".
    top = {"3": math.log(0.6), "2": math.log(0.3), " 1": math.log(0.05), "x": math.log(0.05)}
    assert score_from_logprobs(top) == pytest.approx(2.45 / 0.95)
    assert score_from_logprobs({"yes": 0.0, "4": -1.0}) is None
    assert rating_from_text(" Rating: 2/3") == 2
    assert rating_from_text("five") is None


async def test_judge_weights_the_first_visible_token_of_each_criterion() -> None:
    backend = LogprobBackend({
        "engagingness": {"1": 0.5, "3": 0.5},  # 2.0
        "naturalness": {"3": 0.9, "2": 0.1},  # 2.9
        "coherence": {"2": 0.8, "1": 0.2},  # 1.8
        "groundedness": {"3": 1.0},  # 3.0
    }, lead=["\n"])
    result = await JudgeAgent(backend, JUDGE_PARAMS).score(1, "d1", SCENARIO, "help the cat", DIALOGUE)
    assert result.method == "logprobs"
    assert result.scores == {"engagingness": 2.0, "naturalness": 2.9, "coherence": 1.8, "groundedness": 3.0}
    assert len(backend.calls) == 4  # one call per criterion
    prompt = backend.calls[0][-1]["content"]
    assert "Topic: pets (cats)" in prompt and "Goal: help the cat" in prompt and "Dana: My cat sneezes." in prompt
    assert all(p.logprobs == 5 for p in backend.params_seen)


async def test_judge_without_logprobs_averages_sampled_ratings() -> None:
    replies = {"engagingness": iter(["3", "3", "2"]), "naturalness": iter(["2", "2", "2"]),
               "coherence": iter(["I'd say 1", "3", "no idea"]), "groundedness": iter(["?", "?", "?"])}
    seen: list[SamplingParams] = []

    def reply(messages: Any, params: SamplingParams, schema: Any) -> str:
        seen.append(params)
        if params.logprobs:  # the probe: a plain backend returns text only
            return "3"
        return next(replies[criterion_of(messages)])

    judge = JudgeAgent(ScriptedBackend(reply), JUDGE_PARAMS, JudgeConfig(samples=3))
    result = await judge.score(1, "d1", SCENARIO, None, DIALOGUE)
    assert result.method == "samples:3"
    # (3+3+2)/3, (2+2+2)/3, (1+3)/2 (an unreadable reply is not a rating); groundedness never readable: left out.
    assert result.scores == {"engagingness": round(8 / 3, 4), "naturalness": 2.0, "coherence": 2.0}
    assert judge.logprobs_supported is False
    assert len(seen) == 1 + 4 * 3  # one probe, then samples only: the probe is not repeated
    assert {p.temperature for p in seen[1:]} == {1.0} and all(p.logprobs is None for p in seen[1:])
    assert len({p.seed for p in seen[1:]}) == 12  # every sample its own seed


async def test_judge_stage_in_the_graph_writes_scores_into_the_record() -> None:
    from sparring.graphs.assemble import build_dialogue_record
    from sparring.graphs.records import DialogueUsage
    from tests.graphs.scripted_world import World
    from tests.graphs.test_selfplay import make_job, make_selfplay

    world = World()

    def reply(messages: Any, params: SamplingParams, schema: Any) -> str:
        if messages[0]["content"].startswith("You are a careful evaluator"):
            return {"coherence": "2", "naturalness": "3"}[criterion_of(messages)]
        return world.reply(messages, params, schema)

    selfplay = make_selfplay(world, max_turns=2)
    selfplay.agents.planner.backend.responder = reply  # one backend serves every agent
    selfplay.judge = JudgeAgent(selfplay.agents.planner.backend, SamplingParams(),
                                JudgeConfig(criteria=("coherence", "naturalness"), samples=2))
    job = make_job()
    state = await selfplay.build().ainvoke({"job": job.model_dump(mode="json")},
                                           {"recursion_limit": selfplay.recursion_limit()})
    record = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0)
    assert record.scores == {"coherence": 2.0, "naturalness": 3.0}
    assert record.scoring == "samples:2"
