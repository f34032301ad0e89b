"""The reviser: rewrites one violating turn so it complies, keeping intent, voice and context."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, create_model

from . import prompts
from .agent_calls import PrincipleLike, call_agent, derive_seed, transcript
from .backends.base import Backend
from .backends.messages import ChatMessage, SamplingParams
from .domain import RevisionOutput, TurnVerdict, bounded
from .persona import clean_turn


@lru_cache(maxsize=32)
def revision_schema(max_chars: int) -> type[BaseModel]:
    """RevisionOutput whose text is 1 to ``max_chars`` characters under constrained decoding (an empty
    revision fixes nothing, so it is re-asked like any reply that misses the schema)."""
    return create_model("RevisionOutput", __doc__=RevisionOutput.__doc__,
                        revision=(str, bounded(max_chars, nonempty=True)))


def revision_bound(original: str) -> int:
    """Room for a revision: half again the original, in steps of 250 characters (few distinct schemas)."""
    return min(6000, max(500, math.ceil(len(original) * 1.5 / 250) * 250))


@dataclass(frozen=True, slots=True)
class ReviserAgent:
    backend: Backend
    params: SamplingParams

    def messages(self, messages: Sequence[dict[str, Any]], verdict: TurnVerdict,
                 principles: dict[str, PrincipleLike], system_prompt: str | None = None) -> list[ChatMessage]:
        """The reviser's prompt: the conversation, the turn, what it breaks; with ``system_prompt`` (a redteam
        target's deployment) that prompt too, which the revision must follow."""
        lines = []
        for finding in verdict.findings:
            p = principles.get(finding.principle_id)
            if p is None:
                continue
            lines.append(f"- {p.id}: {p.text}")
            lines.append(f'  Evidence: "{finding.evidence}"')
            if p.revision:
                lines.append(f"  How to revise: {p.revision.strip()}")
        turn = messages[verdict.turn_index]
        deployment = (prompts.render("reviser_deployment", speaker=turn["name"], system_prompt=system_prompt) + "\n"
                      if system_prompt else "")
        user = prompts.render("reviser_user", history=transcript(messages, limit=verdict.turn_index),
                              speaker=turn["name"], turn=turn["content"], violations="\n".join(lines),
                              deployment=deployment)
        return [{"role": "system", "content": prompts.render("reviser_system")}, {"role": "user", "content": user}]

    async def revise(self, job_seed: int, job_id: str, messages: Sequence[dict[str, Any]], verdict: TurnVerdict,
                     principles: dict[str, PrincipleLike], *,
                     system_prompt: str | None = None) -> tuple[str, str | None]:
        """The revised turn (stored by the rule turns are: ``clean_turn``) and why the reply ended."""
        msgs = self.messages(messages, verdict, principles, system_prompt)
        params = self.params.with_seed(derive_seed(job_seed, job_id, "revise", verdict.turn_index))
        schema = revision_schema(revision_bound(messages[verdict.turn_index]["content"]))
        completion = await call_agent(self.backend, "reviser", msgs, params, schema, turn_index=verdict.turn_index,
                                      side=verdict.side, principle_ids=verdict.violated)
        parsed: Any = completion.parsed
        text, _ = clean_turn(parsed.revision)
        return text, completion.finish_reason
