"""Persona generation (DiaSynth 3.2): p personas per subtopic, conditioned on it, deduplicated, topped up."""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import BaseModel, Field, create_model

from sparring.agents.agent_calls import call_agent, derive_seed
from sparring.agents.backends import ChatBackend, ChatMessage, SamplingParams
from sparring.agents.domain import Persona

from .dedup import Embedder
from .expansion_report import DroppedItem, ListReport
from .subtopics import avoid_block
from .templates import render
from .text import clean_item, normalize
from .topup import generate_distinct
from .topup_sampling import topup_params

AGENT_NAME = "persona_generator"


class PersonaItem(BaseModel):
    """One generated person."""

    name: str = Field(min_length=1, max_length=100)
    """First name and role, e.g. ``Dana, a night-shift nurse``."""
    description: str = Field(max_length=400)
    """Who they are and what they care about in the subtopic."""


class PersonasOutput(BaseModel):
    """The personas of one subtopic, as the LLM returns them."""

    personas: list[PersonaItem]


@lru_cache(maxsize=64)
def sized_output(count: int) -> type[PersonasOutput]:
    """PersonasOutput holding exactly ``count`` items (see subtopics.sized_output)."""
    return create_model("PersonasOutput", __base__=PersonasOutput,
                        personas=(list[PersonaItem], Field(min_length=count, max_length=count)))


def first_name(persona: Persona) -> str:
    """The personal name, compared without case: ``Dana`` for ``Dana, a night-shift nurse``."""
    return normalize(persona.name.partition(",")[0])


def persona_text(persona: Persona) -> str:
    """What deduplication compares: the role and the description, without the personal name.

    Sentence embeddings weigh first names heavily: two personas whose
    descriptions are word for word the same but who are called Jane and
    Michael score only ~0.6, far below any useful threshold. A name is a label,
    not a difference in who the person is, so it is left out.
    """
    first, sep, role = persona.name.partition(",")
    first = first.strip()
    if not sep and len(first.split()) > 1:
        first, role = "", persona.name  # no comma and several words: a role such as "Night-shift nurse"
    text = f"{role.strip()}. {persona.description}" if role.strip() else persona.description
    if first:
        text = re.sub(rf"\b{re.escape(first)}\b", "", text)
    text = " ".join(text.split()).strip(" .")
    return text or persona.name


def persona_messages(topic: str, subtopic: str, count: int, taken: list[Persona]) -> list[ChatMessage]:
    return [
        {"role": "system", "content": render("personas_system.txt")},
        {"role": "user", "content": render("personas_user.txt", topic=topic, subtopic=subtopic, count=count,
                                           avoid=avoid_block("people", [persona_text(p) for p in taken]))},
    ]


def to_persona(item: PersonaItem) -> Persona | None:
    name = clean_item(item.name)
    return Persona(name=name, description=" ".join(item.description.split())) if name else None


async def generate_personas(backend: ChatBackend, topic: str, subtopic: str, count: int, params: SamplingParams,
                            *, threshold: float, max_topups: int, seed: int,
                            embedder: Embedder | None = None) -> tuple[list[Persona], ListReport]:
    """Up to ``count`` distinct personas for ``subtopic`` of ``topic``, and what happened."""
    report = ListReport(kind="personas", topic=topic, subtopic=subtopic, asked=count)

    async def ask(call: int, taken: list[Persona], needed: int) -> list[Persona]:
        completion = await call_agent(
            backend, AGENT_NAME, persona_messages(topic, subtopic, needed, taken),
            topup_params(params, call, derive_seed(seed, "personas", topic, subtopic, call)), sized_output(needed),
            topic=topic, subtopic=subtopic, call=call + 1, asked=needed)
        assert isinstance(completion.parsed, PersonasOutput)
        personas: list[Persona] = []
        for item in completion.parsed.personas:
            persona = to_persona(item)
            if persona is None:
                report.dropped.append(DroppedItem(text=item.description, reason="no name", call=call + 1))
                continue
            # Two speakers of one dialogue must be told apart by name, however
            # different their descriptions (a small model reuses one name a lot).
            clash = next((p for p in (*taken, *personas) if first_name(p) == first_name(persona)), None)
            if clash is not None:
                report.dropped.append(DroppedItem(text=persona_text(persona), duplicate_of=clash.name, call=call + 1,
                                                  reason=f"same first name as {clash.name!r}"))
                continue
            personas.append(persona)
        return personas

    kept = await generate_distinct(ask, wanted=count, threshold=threshold, text=persona_text,
                                   max_topups=max_topups, report=report, embedder=embedder)
    return kept, report
