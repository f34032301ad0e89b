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
from .agent_calls import PrincipleLike, agent_span, derive_seed, principle_lines, record_completion
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams
from .domain import DialogueJob, PlanOutput, Side, other_side

END_MARKER = "<done>"
"""What the goal-driven side writes at the very end of a turn to end the conversation."""
_TRAILING_MARKER = re.compile(r"\s*" + re.escape(END_MARKER) + r"\s*\Z")
_KICKOFF = {
    "assistant": "(You open the chat. Write your first message.)",
    "redteam": "(You open the chat. Write your first message.)",
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


def clean_turn(text: str) -> tuple[str, bool]:
    """The turn as it is stored, and whether it ends the conversation.

    Only an end marker at the very end of the turn (whitespace around it allowed) is removed,
    with the whitespace at both ends of the text; every word stays, ``done`` included, and a
    marker anywhere else is part of what was said and does not end anything.

    >>> clean_turn("Have you done the blood test yet?")
    ('Have you done the blood test yet?', False)
    >>> clean_turn("Thanks, that helps. <done>")
    ('Thanks, that helps.', True)
    """
    match = _TRAILING_MARKER.search(text)
    if match is None:
        return text.strip(), False
    return text[:match.start()].strip(), True


def turn_line(turn_index: int, max_turns: int | None) -> str:
    """The turn counter a speaker is shown before turn ``turn_index`` (none without ``max_turns``)."""
    return prompts.render("persona_turn", own=turn_index // 2 + 1, turn=turn_index + 1,
                          max_turns=max_turns) if max_turns else ""


@dataclass(frozen=True, slots=True)
class PersonaAgent:
    backend: Backend
    params: SamplingParams

    def system_prompt(self, job: DialogueJob, plan: PlanOutput, side: Side, targets: Sequence[PrincipleLike],
                      situation: str, style_example: str | None, *, turn_index: int = 0,
                      max_turns: int | None = None) -> str:
        """What ``side`` is told before its turn ``turn_index``: its persona, the situation, its own
        brief (and, for the briefed side only, the violation plan), the turn it is at."""
        brief = plan.brief_a if side == "A" else plan.brief_b
        violation = ""
        if targets and side == job.briefed_side:
            template = "persona_violation" if job.target_principles else "persona_near_miss"
            violation = prompts.render(template, role="assistant" if job.is_ai_assistant(side) else "person",
                                       turn=max(plan.violation_turn, 1), principles=principle_lines(targets),
                                       idea=plan.violation_brief)
        style = f"{style_example}\n" if style_example else ""
        counter = turn_line(turn_index, max_turns)
        situation = situation or "(not specified)"
        persona = job.persona(side)
        persona_text = persona.name + (f": {persona.description}" if persona.description else "")
        if job.mode == "assistant":
            if side == "A":
                return prompts.render("persona_user", persona=persona_text, situation=situation, brief=brief,
                                      goal=plan.goal, style=style, turn_line=counter, end_marker=END_MARKER)
            return prompts.render("persona_assistant", expertise=f" You have the expertise of {persona_text}.",
                                  situation=situation, brief=brief, violation=violation, turn_line=counter)
        other = job.persona(other_side(side))
        done_rule = ("When your goal is reached or the conversation comes to a natural end, finish that line "
                     f"with {END_MARKER}") if side == "A" else ""
        return prompts.render("persona_peer", name=persona.name, other_name=other.name, persona=persona_text,
                              other_persona=other.description or other.name, situation=situation,
                              brief=brief, violation=violation, style=style, turn_line=counter,
                              done_rule=done_rule)

    async def speak(self, job: DialogueJob, plan: PlanOutput, messages: Sequence[dict[str, Any]], side: Side,
                    targets: Sequence[PrincipleLike], *, situation: str = "", style_example: str | None = None,
                    max_turns: int | None = None, system: str | None = None) -> tuple[str, bool, Completion]:
        """The next turn of ``side``: its text, whether it signalled done, and the completion.
        ``system``: a system prompt written elsewhere (the red-team attacker's) instead of the persona's."""
        if system is None:
            system = self.system_prompt(job, plan, side, targets, situation, style_example,
                                        turn_index=len(messages), max_turns=max_turns)
        convo: list[ChatMessage] = [{"role": "system", "content": system},
                                    *view_from(side, messages, _KICKOFF[job.mode])]
        other = job.speaker_name(other_side(side))
        # Stop before the model starts writing the other side's lines.
        stop = tuple(dict.fromkeys((*self.params.stop, f"\n{other}:", "\nUser:", "\nAssistant:")))
        turn_index = len(messages)
        briefed = list(job.target_principles) if side == job.briefed_side and job.target_principles else None
        with agent_span(f"persona_{side}", turn_index=turn_index, side=side, principle_ids=briefed) as span:
            for resample in range(3):
                params = self.params.model_copy(update={
                    "stop": stop, "seed": derive_seed(job.seed, job.id, "turn", turn_index, resample)})
                completion = await self.backend.complete(convo, params, agent=f"persona_{side}")
                text, done = clean_turn(completion.text)
                if text:
                    break
            else:
                raise EmptyTurnError(f"side {side} produced an empty turn {turn_index} three times")
            record_completion(span, completion)
            span.set("app.done_signal", done)
            if resample:
                span.set("app.resamples", resample)
        return text, done, completion
