"""The reviser: rewrites one violating turn so it complies, keeping intent, voice and context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import prompts
from ._common import PrincipleLike, agent_span, derive_seed, record_completion, transcript
from .backends.base import Backend
from .backends.types import ChatMessage, SamplingParams
from .persona import clean_turn
from .types import RevisionOutput, TurnVerdict


@dataclass(frozen=True, slots=True)
class ReviserAgent:
    backend: Backend
    params: SamplingParams

    def messages(self, messages: Sequence[dict[str, Any]], verdict: TurnVerdict,
                 principles: dict[str, PrincipleLike]) -> list[ChatMessage]:
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
        user = prompts.render("reviser_user", history=transcript(messages, limit=verdict.turn_index),
                              speaker=turn["name"], turn=turn["content"], violations="\n".join(lines))
        return [{"role": "system", "content": prompts.render("reviser_system")}, {"role": "user", "content": user}]

    async def revise(self, job_seed: int, job_id: str, messages: Sequence[dict[str, Any]], verdict: TurnVerdict,
                     principles: dict[str, PrincipleLike]) -> str:
        msgs = self.messages(messages, verdict, principles)
        params = self.params.with_seed(derive_seed(job_seed, job_id, "revise", verdict.turn_index))
        with agent_span("reviser", turn_index=verdict.turn_index, side=verdict.side,
                        principle_ids=verdict.violated) as span:
            completion = await self.backend.complete(msgs, params, RevisionOutput, agent="reviser")
            record_completion(span, completion)
        parsed = completion.parsed
        assert isinstance(parsed, RevisionOutput)
        text, _ = clean_turn(parsed.revision, (messages[verdict.turn_index]["name"],))
        return text
