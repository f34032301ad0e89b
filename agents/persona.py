"""The two persona agents. Each sees only its own persona, its own brief and the
conversation from its own side: its turns as ``assistant``, the other's as ``user``.
That separation is what makes this self-play between two agents rather than one
model writing a script.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sparring.errors import EmptyTurnError

from . import prompts
from ._common import PrincipleLike, agent_span, derive_seed, principle_lines, record_completion
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams
from .domain import DialogueJob, PlanOutput, Side, other_side

DONE_MARKER = re.compile(r"\s*(?:<\s*/?\s*done\s*/?\s*>|\[\s*done\s*\]|\bDONE\b)\s*", re.I)
_KICKOFF = {
    "assistant": "(You open the chat. Write your first message.)",
    "peers": "(You start the conversation. Say your first line.)",
}


def view_from(side: Side, messages: Sequence[dict[str, Any]], kickoff: str) -> list[ChatMessage]:
    """The conversation as ``side`` sees it. Chat templates need a user message first,
    so the side that opens gets a short cue to start."""
    out: list[ChatMessage] = []
    if not messages or messages[0]["speaker"] == side:
        out.append({"role": "user", "content": kickoff})
    for m in messages:
        out.append({"role": "assistant" if m["speaker"] == side else "user", "content": m["content"]})
    return out


def clean_turn(text: str, names: Sequence[str]) -> tuple[str, bool]:
    """Strip the done marker and a leading ``Name:`` the model may add; report whether it said done."""
    done = bool(DONE_MARKER.search(text))
    text = DONE_MARKER.sub(" ", text).strip()
    for name in (*names, "User", "Assistant", "AI assistant", "AI", "A", "B"):
        prefix = f"{name}:"
        if text.lower().startswith(prefix.lower()):
            text = text[len(prefix):].strip()
            break
    return text.strip().strip('"').strip(), done


@dataclass(frozen=True, slots=True)
class PersonaAgent:
    backend: Backend
    params: SamplingParams

    def system_prompt(self, job: DialogueJob, plan: PlanOutput, side: Side, targets: Sequence[PrincipleLike],
                      situation: str, style_example: str | None) -> str:
        brief = plan.brief_a if side == "A" else plan.brief_b
        violation = ""
        if targets and side == job.briefed_side:
            violation = prompts.render("persona_violation", role="assistant" if job.is_ai_assistant(side) else "person",
                                       turn=max(plan.violation_turn, 1),
                                       principles=principle_lines(targets))
        style = f"{style_example}\n" if style_example else ""
        persona = job.persona(side)
        persona_text = persona.name + (f": {persona.description}" if persona.description else "")
        if job.mode == "assistant":
            if side == "A":
                return prompts.render("persona_user", persona=persona_text, brief=brief, goal=plan.goal, style=style)
            return prompts.render("persona_assistant", expertise=f" You have the expertise of {persona_text}.",
                                  brief=brief, violation=violation)
        other = job.persona(other_side(side))
        done_rule = ("When your goal is reached or the conversation comes to a natural end, finish that line "
                     "with <done>.") if side == "A" else ""
        return prompts.render("persona_peer", name=persona.name, other_name=other.name, persona=persona_text,
                              other_persona=other.description or other.name, situation=situation or "(not specified)",
                              brief=brief, violation=violation, style=style, done_rule=done_rule)

    async def speak(self, job: DialogueJob, plan: PlanOutput, messages: Sequence[dict[str, Any]], side: Side,
                    targets: Sequence[PrincipleLike], *, situation: str = "", style_example: str | None = None,
                    ) -> tuple[str, bool, Completion]:
        """The next turn of ``side``: its text, whether it signalled done, and the completion."""
        system = self.system_prompt(job, plan, side, targets, situation, style_example)
        convo: list[ChatMessage] = [{"role": "system", "content": system},
                                    *view_from(side, messages, _KICKOFF[job.mode])]
        me, other = job.speaker_name(side), job.speaker_name(other_side(side))
        # Stop before the model starts writing the other side's lines.
        stop = tuple(dict.fromkeys((*self.params.stop, f"\n{other}:", "\nUser:", "\nAssistant:")))
        turn_index = len(messages)
        briefed = list(job.target_principles) if side == job.briefed_side and job.target_principles else None
        with agent_span(f"persona_{side}", turn_index=turn_index, side=side, principle_ids=briefed) as span:
            for resample in range(3):
                params = self.params.model_copy(update={
                    "stop": stop, "seed": derive_seed(job.seed, job.id, "turn", turn_index, resample)})
                completion = await self.backend.complete(convo, params, agent=f"persona_{side}")
                text, done = clean_turn(completion.text, (me, other))
                if text:
                    break
            else:
                raise EmptyTurnError(f"side {side} produced an empty turn {turn_index} three times")
            record_completion(span, completion)
            span.set("app.done_signal", done)
            if resample:
                span.set("app.resamples", resample)
        return text, done, completion
