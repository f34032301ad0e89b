"""Subtopic generation (DiaSynth 3.1): m specific subtopics per broad topic, deduplicated, topped up."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, Field, create_model

from sparring.agents.agent_calls import call_agent, derive_seed
from sparring.agents.backends import ChatBackend, ChatMessage, SamplingParams

from .dedup import Embedder
from .expansion_report import DroppedItem, ListReport
from .templates import render
from .text import clean_item, normalize
from .topup import generate_distinct
from .topup_sampling import topup_params

AGENT_NAME = "subtopic_generator"
SubtopicText = Annotated[str, Field(min_length=1, max_length=160)]


class SubtopicsOutput(BaseModel):
    """The subtopics of one topic, as the LLM returns them."""

    subtopics: list[SubtopicText]
    """Short phrases, each one specific aspect of the topic."""


@lru_cache(maxsize=64)
def sized_output(count: int) -> type[SubtopicsOutput]:
    """SubtopicsOutput holding exactly ``count`` items: a constrained decoder stops the list there.

    Cached so every call with the same count sends the same class (the
    backend caches schemas per class).
    """
    return create_model("SubtopicsOutput", __base__=SubtopicsOutput,
                        subtopics=(list[SubtopicText], Field(min_length=count, max_length=count)))


def avoid_block(kind: str, taken: list[str]) -> str:
    """The top-up paragraph naming what is already taken; empty on a first call."""
    return render("avoid.txt", kind=kind, items="\n".join(f"- {t}" for t in taken)) if taken else ""


def subtopic_messages(topic: str, count: int, taken: list[str]) -> list[ChatMessage]:
    return [
        {"role": "system", "content": render("subtopics_system.txt")},
        {"role": "user", "content": render("subtopics_user.txt", topic=topic, count=count,
                                           avoid=avoid_block("subtopics", taken))},
    ]


async def generate_subtopics(backend: ChatBackend, topic: str, count: int, params: SamplingParams, *,
                             threshold: float, max_topups: int, seed: int,
                             embedder: Embedder | None = None) -> tuple[list[str], ListReport]:
    """Up to ``count`` distinct subtopics of ``topic``, in the order generated, and what happened."""
    report = ListReport(kind="subtopics", topic=topic, asked=count)

    async def ask(call: int, taken: list[str], needed: int) -> list[str]:
        completion = await call_agent(
            backend, AGENT_NAME, subtopic_messages(topic, needed, taken),
            topup_params(params, call, derive_seed(seed, "subtopics", topic, call)), sized_output(needed),
            topic=topic, call=call + 1, asked=needed)
        assert isinstance(completion.parsed, SubtopicsOutput)
        subtopics = []
        for text in map(clean_item, completion.parsed.subtopics):
            # Only an exact repeat: real subtopics share the topic's words, and
            # their embeddings sit as close to it (~0.8) as paraphrases do.
            if normalize(text) == normalize(topic):
                report.dropped.append(DroppedItem(text=text, reason="repeats the topic", call=call + 1))
            else:
                subtopics.append(text)
        return subtopics

    kept = await generate_distinct(ask, wanted=count, threshold=threshold, text=lambda s: s,
                                   max_topups=max_topups, report=report, embedder=embedder)
    return kept, report
