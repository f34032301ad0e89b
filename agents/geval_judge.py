"""LLM-as-judge dialogue scores in the G-Eval manner (Liu et al. 2023), as DiaSynth reports them.

One call per criterion, each with its own definition and evaluation steps, the
model answering with a single rating digit 1-3. That is G-Eval's form, and it
is what makes the probability-weighted score possible: the rating is the first
generated token, so the top log-probabilities at that position are the model's
distribution over "1", "2", "3", and the score is sum(k * p(k)) / sum(p(k)).
One structured call rating all criteria would put the later ratings after
generated JSON, where their distributions are conditioned on the earlier ones.

Backends that return no log-probabilities (some servers) get G-Eval's fallback:
``samples`` ratings sampled at ``sample_temperature``, their mean is the score.
The judge notices the first reply without log-probabilities and samples from
then on, without asking again.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import prompts
from .agent_calls import call_agent, derive_seed, transcript
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams, TokenLogprob

Criterion = Literal["engagingness", "naturalness", "coherence", "groundedness"]
CRITERIA: tuple[Criterion, ...] = ("engagingness", "naturalness", "coherence", "groundedness")
RATINGS = ("1", "2", "3")
AGENT_NAME = "judge"
_RATING = re.compile(r"[1-3]")
_LOOKAHEAD = 4
"""Generated tokens searched for the rating position (a chat model may open with a space or newline)."""


class JudgeConfig(BaseModel):
    """The ``dialogue.judge`` block (``judge: true`` is all defaults). Sampling: ``sampling.judge``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    criteria: tuple[Criterion, ...] = Field(CRITERIA, min_length=1)
    """What to rate, each on 1-3 (DiaSynth's Table 4 criteria by default)."""
    samples: int = Field(5, ge=1, le=50)
    """Ratings sampled per criterion when the backend returns no log-probabilities; the score is their mean."""
    sample_temperature: float = Field(1.0, ge=0.0, le=2.0)
    """Temperature of those sampled ratings (G-Eval samples at 1)."""


def rating_position(logprobs: Sequence[TokenLogprob]) -> TokenLogprob | None:
    """The generated token that carries the rating: the first with visible text, among the first few."""
    for token in logprobs[:_LOOKAHEAD]:
        if token.token.strip():
            return token
    return None


def score_from_logprobs(top: Mapping[str, float]) -> float | None:
    """sum(k * p(k)) / sum(p(k)) over the alternatives "1", "2", "3" (spacing ignored); None when
    none of them is among the top alternatives."""
    mass = dict.fromkeys(RATINGS, 0.0)
    for token, logprob in top.items():
        key = token.strip()
        if key in mass and logprob > -math.inf:
            mass[key] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    return sum(int(k) * p for k, p in mass.items()) / total


def rating_from_text(text: str) -> int | None:
    """The first digit 1-3 of a reply, if there is one."""
    match = _RATING.search(text)
    return int(match.group()) if match else None


def describe_situation(scenario: Mapping[str, Any], goal: str | None) -> str:
    """Topic, goal and participants, as the judge reads them (groundedness is judged against this)."""
    lines = [f"Topic: {scenario.get('topic', '')}" + (f" ({scenario['subtopic']})" if scenario.get("subtopic") else "")]
    if goal:
        lines.append(f"Goal: {goal}")
    for persona in scenario.get("personas") or []:
        about = persona.get("description") or ""
        lines.append(f"Participant: {persona.get('name', '')}" + (f", {about}" if about else ""))
    return "\n".join(lines)


@dataclass
class JudgeResult:
    scores: dict[str, float]
    """Criterion -> score in [1, 3]; a criterion no reply could be read for is left out."""
    method: str
    """``logprobs`` (probability-weighted), ``samples:N`` (mean of N sampled ratings) or ``mixed``."""


@dataclass
class JudgeAgent:
    backend: Backend
    params: SamplingParams
    """``sampling.judge``: its ``logprobs`` asks for the top alternatives (5 by default)."""
    config: JudgeConfig = field(default_factory=JudgeConfig)
    logprobs_supported: bool | None = None
    """None until the first reply shows whether the backend returns log-probabilities."""

    def messages(self, criterion: str, situation: str, dialogue: Sequence[Mapping[str, Any]]) -> list[ChatMessage]:
        definition, _, steps = prompts.template_in(prompts.__name__, f"judge_{criterion}.txt").template.partition("---")
        user = prompts.render("judge_user", criterion=criterion, definition=definition.strip(), steps=steps.strip(),
                              context=situation, dialogue=transcript(dialogue))
        return [{"role": "system", "content": prompts.render("judge_system")}, {"role": "user", "content": user}]

    async def score(self, job_seed: int, job_id: str, scenario: Mapping[str, Any], goal: str | None,
                    dialogue: Sequence[Mapping[str, Any]]) -> JudgeResult:
        """Every configured criterion of one dialogue. The first criterion is asked alone, so its reply
        settles whether log-probabilities come back; the others are then asked at once."""
        situation = describe_situation(scenario, goal)

        def rate(criterion: str) -> Any:
            return self._rate(job_seed, job_id, criterion, self.messages(criterion, situation, dialogue))

        first, *rest = self.config.criteria
        rated = [await rate(first), *await asyncio.gather(*(rate(c) for c in rest))]
        scores: dict[str, float] = {c: round(value, 4) for c, (value, _) in zip(self.config.criteria, rated)
                                    if value is not None}
        methods = {method for _, method in rated}
        return JudgeResult(scores=scores, method=methods.pop() if len(methods) == 1 else "mixed")

    async def _rate(self, job_seed: int, job_id: str, criterion: str,
                    msgs: list[ChatMessage]) -> tuple[float | None, str]:
        if self.logprobs_supported is not False and self.params.logprobs:
            params = self.params.with_seed(derive_seed(job_seed, job_id, AGENT_NAME, criterion))
            completion = await call_agent(self.backend, AGENT_NAME, msgs, params, criterion=criterion)
            if completion.logprobs:
                self.logprobs_supported = True
                return _weighted_or_greedy(completion), "logprobs"
            self.logprobs_supported = False
        return await self._sampled(job_seed, job_id, criterion, msgs), f"samples:{self.config.samples}"

    async def _sampled(self, job_seed: int, job_id: str, criterion: str, msgs: list[ChatMessage]) -> float | None:
        base = self.params.model_copy(update={"temperature": self.config.sample_temperature, "logprobs": None})
        completions = await asyncio.gather(*(
            call_agent(self.backend, AGENT_NAME, msgs, base.with_seed(derive_seed(job_seed, job_id, AGENT_NAME,
                                                                                  criterion, i)),
                       criterion=criterion, sample=i)
            for i in range(self.config.samples)))
        ratings = [r for r in (rating_from_text(c.text) for c in completions) if r is not None]
        return sum(ratings) / len(ratings) if ratings else None


def _weighted_or_greedy(completion: Completion) -> float | None:
    """The probability-weighted rating; the reply's own digit when no rating is among the top alternatives."""
    position = rating_position(completion.logprobs or [])
    if position is not None:
        weighted = score_from_logprobs({position.token: position.logprob, **position.top})
        if weighted is not None:
            return weighted
    rating = rating_from_text(completion.text)
    return float(rating) if rating is not None else None

