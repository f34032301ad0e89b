"""The G-Eval judge on the real embedded engine: vLLM returns the rating token's top log-probabilities,
so scores are probability-weighted, within 1-3."""

from __future__ import annotations

import pytest

from sparring.agents.backends import Backend
from sparring.agents.geval_judge import JudgeAgent, JudgeConfig
from sparring.graphs.run_config import StageSampling
from tests.agents.test_judge import DIALOGUE, SCENARIO
from tests.engines import seeded


@pytest.mark.engine
async def test_judge_scores_with_logprobs_on_the_embedded_engine(embedded_backend: Backend) -> None:
    judge = JudgeAgent(embedded_backend, StageSampling().judge, JudgeConfig(criteria=("coherence", "naturalness")))
    result = await judge.score(seeded(1), "engine-judge", SCENARIO, "find out why the cat sneezes", DIALOGUE)
    assert judge.logprobs_supported is True
    assert result.method == "logprobs"
    assert result.scores, "no rating could be read from the model's replies"
    assert all(1.0 <= value <= 3.0 for value in result.scores.values())
