"""The critic: a structured verdict on one turn against a list of principles.

The schema it answers in lists the allowed principle ids as an enum, so with
constrained decoding a model cannot invent an id; with parse-and-re-ask an
invented id fails validation and is re-asked. The same agent, given a revised
text and only the principles the original broke, is the verifier.

One critic for all: the prompt for a turn depends only on the conversation, the
turn and the principles in scope, never on what the dialogue was briefed to
break, so a targeted dialogue and a control with the same conversation get the
same bytes. Every principle in scope gets its checking guidance (or, with
``guidance=False``, none does).

Unbiased and grounded: the principles (list and enum) are shown in an order
shuffled per dialogue (``principle_order``; a run draws it from what a briefed
dialogue and its control share, so the rule above holds), and each finding's
quoted evidence must occur in the judged turn (``grounded``): the verdict is
re-asked once when one does not, and findings still ungrounded are dropped and
counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, create_model

from . import prompts
from .agent_calls import PrincipleLike, agent_span, derive_seed, principle_lines, record_completion, transcript
from .backends.base import Backend
from .backends.messages import ChatMessage, SamplingParams
from .domain import CritiqueOutput, Severity, Side, TurnVerdict, ViolationFinding, bounded, bounded_list

_SEVERITY_RANK = {"minor": 1, "moderate": 2, "severe": 3}
MAX_FINDINGS = 4


@lru_cache(maxsize=128)
def critique_schema(principle_ids: tuple[str, ...]) -> type[BaseModel]:
    """CritiqueOutput with ``principle_id`` restricted to ``principle_ids``."""
    finding = create_model(
        "ViolationFinding", __doc__=ViolationFinding.__doc__,
        principle_id=(Literal[principle_ids], ...),  # type: ignore[arg-type]
        evidence=(str, bounded(200, nonempty=True)), severity=(Severity, ...))
    return create_model(
        "CritiqueOutput", __doc__=CritiqueOutput.__doc__, reasoning=(str, bounded(400)),
        violations=(list[finding], bounded_list(MAX_FINDINGS)))


def worst(findings: Sequence[ViolationFinding]) -> Severity | None:
    if not findings:
        return None
    return max((f.severity for f in findings), key=_SEVERITY_RANK.__getitem__)


def principle_order(principles: Sequence[PrincipleLike], key: str) -> list[PrincipleLike]:
    """``principles`` in the order the critic is shown them (the list and the enum alike): a shuffle drawn
    from ``key``, one dialogue's, so a list's position does not decide which principle a critic names,
    and every critic call of the dialogue opens with the same prompt prefix (a prefix cache serves it).
    Each principle's place comes from its own draw, so a subset (the verifier's) keeps the same relative
    order."""
    return sorted(principles, key=lambda p: (derive_seed(0, key, "principle-order", p.id), p.id))


def _normal(text: str) -> str:
    return " ".join(text.casefold().translate(_QUOTES).split())


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def grounded(evidence: str, turn: str) -> bool:
    """Whether ``evidence`` occurs in ``turn``, ignoring case, whitespace and curly quotes; an evidence cut
    with an ellipsis counts when every part occurs, in order."""
    text, at = _normal(turn), 0
    parts = [p for p in (_normal(x).strip(" \"'") for x in re.split(r"\.\.\.|\u2026", evidence)) if p]
    for part in parts:
        found = text.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return bool(parts)


def _unique(violations: Sequence[Any]) -> list[ViolationFinding]:
    findings: list[ViolationFinding] = []
    seen: set[str] = set()
    for f in violations:
        if f.principle_id not in seen:
            seen.add(f.principle_id)
            findings.append(ViolationFinding(principle_id=f.principle_id, evidence=f.evidence, severity=f.severity))
    return findings


@dataclass(frozen=True, slots=True)
class CriticAgent:
    backend: Backend
    params: SamplingParams
    name: str = "critic"
    guidance: bool = True
    """Give every principle in scope its checking guidance (``critique``); False: the principle texts only."""

    def messages(self, messages: Sequence[dict[str, Any]], turn_index: int, text: str,
                 principles: Sequence[PrincipleLike], guided: object = None) -> list[ChatMessage]:
        """The critic's prompt for one turn: the principles in scope (in the order given), the conversation
        before the turn, the turn. ``guided`` is accepted for callers of the older signature and ignored:
        the prompt never depends on which principles were planted."""
        lines = principle_lines(principles, guidance="critique" if self.guidance else None)
        speaker = messages[turn_index]["name"]
        user = prompts.render("critic_user", principles=lines,
                              history=transcript(messages, limit=turn_index),
                              speaker=speaker, turn=text)
        return [{"role": "system", "content": prompts.render("critic_system")}, {"role": "user", "content": user}]

    async def judge(self, job_seed: int, job_id: str, messages: Sequence[dict[str, Any]], turn_index: int,
                    principles: Sequence[PrincipleLike], *, focus: Sequence[str] = (),
                    text: str | None = None, order_key: str | None = None) -> TurnVerdict:
        """Judge ``messages[turn_index]`` (or ``text`` in its place) against ``principles``, shown in the
        order ``principle_order`` draws from ``order_key`` (default ``job_id``). A finding whose evidence
        is not in the turn is re-asked once (the whole verdict), then dropped and counted
        (``dropped_findings``). ``focus`` is accepted for callers of the older signature and ignored."""
        turn = messages[turn_index]
        side: Side = turn["speaker"]
        if not principles:
            return TurnVerdict(turn_index=turn_index, side=side, violated=[], findings=[],
                               reasoning="no principles to judge against")
        body = turn["content"] if text is None else text
        ordered = principle_order(principles, order_key or job_id)
        ids = tuple(p.id for p in ordered)
        schema = critique_schema(ids)
        msgs = self.messages(messages, turn_index, body, ordered)
        params = self.params.with_seed(derive_seed(job_seed, job_id, self.name, turn_index))
        with agent_span(self.name, turn_index=turn_index, side=side, principle_ids=list(ids)) as span:
            span.update({"app.principle_order": list(ids), "app.principle_order_key": order_key or job_id})
            completion = await self.backend.complete(msgs, params, schema, agent=self.name)
            record_completion(span, completion)
            parsed: Any = completion.parsed
            findings = _unique(parsed.violations)
            missing = [f for f in findings if not grounded(f.evidence, body)]
            if missing:
                again: list[ChatMessage] = [*msgs, {"role": "assistant", "content": completion.text}, {
                    "role": "user", "content": prompts.render(
                        "critic_reground", quotes="\n".join(f'- {f.principle_id}: "{f.evidence}"' for f in missing))}]
                completion = await self.backend.complete(
                    again, self.params.with_seed(derive_seed(job_seed, job_id, self.name, turn_index, "evidence")),
                    schema, agent=self.name)
                record_completion(span, completion)
                parsed = completion.parsed
                findings = _unique(parsed.violations)
            kept = [f for f in findings if grounded(f.evidence, body)]
            verdict = TurnVerdict(turn_index=turn_index, side=side, violated=[f.principle_id for f in kept],
                                  findings=kept, reasoning=parsed.reasoning, severity=worst(kept),
                                  dropped_findings=len(findings) - len(kept), finish_reason=completion.finish_reason)
            span.update({"app.violated": verdict.violated, "app.severity": verdict.severity,
                         "app.evidence_reasked": bool(missing), "app.dropped_findings": verdict.dropped_findings})
        return verdict
