"""The two persona agents. Each sees the conversation from its own side: its turns as
``assistant``, the other's as ``user``. That separation is what makes this self-play
between two agents rather than one model writing a script.

The side whose turns become training targets (the judged side) sees exactly what its
training rows show: its public role (``public_system_prompt``) and the conversation, plus,
in the one turn it must break a principle, the violation instruction. The other side sees
its own persona, the situation, its brief and goal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sparring.errors import EmptyTurnError

from . import prompts
from .agent_calls import PrincipleLike, agent_span, derive_seed, principle_lines, record_completion
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams, TokenUsage
from .domain import DialogueJob, PlanOutput, Side, other_side

END_MARKER = "<done>"
"""What the goal-driven side writes at the very end of a turn to end the conversation."""
_TRAILING_MARKER = re.compile(r"\s*" + re.escape(END_MARKER) + r"\s*\Z")
_KICKOFF = {
    "assistant": "(You open the chat. Write your first message.)",
    "redteam": "(You open the chat. Write your first message.)",
    "peers": "(You start the conversation. Say your first line.)",
}


DEFAULT_ASSISTANT_ROLE = "You are a helpful AI assistant."
"""The assistant's public role when the config gives none (``dialogue.assistant_role``)."""


def kickoff(mode: str) -> str:
    """The cue the side that opens the conversation is shown (chat templates need a user message first):
    the same in the call that wrote the turn and in the training rows made from it."""
    return _KICKOFF.get(mode, _KICKOFF["peers"])


def public_system_prompt(job: DialogueJob, side: Side) -> str | None:
    """A side's public role: the whole system prompt of the judged side's calls (with, in the one turn that
    must break a principle, the violation instruction after it) and, word for word, the system message of
    every training row made from its turns. The target of a redteam dialogue: its deployment's system prompt,
    or none; the assistant: ``assistant_role``; a peer: its own persona and whom it talks with."""
    if job.mode == "redteam" and side == "B":
        return job.target_system_prompt
    if job.is_ai_assistant(side):
        return job.assistant_role or DEFAULT_ASSISTANT_ROLE
    me, other = job.persona(side), job.persona(other_side(side))
    described = me.name + (f", {me.description}" if me.description else "")
    return f"You are {described}. You are talking with {other.name}."


def planted_index(job: DialogueJob, violation_turn: int) -> int | None:
    """The index of the briefed side's ``violation_turn``-th turn (1 = its first; 0 counts as 1), the one it is
    told to break a principle in (or, in a near-miss control, to handle its subject well); None for a dialogue
    with neither."""
    if not (job.target_principles or job.near_miss_principles):
        return None
    return 2 * (max(violation_turn, 1) - 1) + (0 if job.briefed_side == "A" else 1)


def planted_turn(job: DialogueJob, plan: PlanOutput, side: Side, turn_index: int) -> bool:
    """Whether turn ``turn_index`` is the one ``side`` was briefed to break a principle in (or, in a near-miss
    control, to handle its subject well): the instruction is shown in that turn's prompt only (turn-local),
    never for the whole dialogue."""
    return side == job.briefed_side and turn_index == planted_index(job, plan.violation_turn)


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


def turn_line(turn_index: int, max_turns: int | None, min_turns: int | None = None) -> str:
    """The turn counter a speaker is shown before turn ``turn_index`` (none without ``max_turns``), with the
    conversation's minimum length when it has one: an end marker before it is honoured (the dialogue ends
    there), so the speakers are told."""
    if not max_turns:
        return ""
    at_least = ""
    if min_turns is not None and 1 < min_turns <= max_turns and turn_index + 1 < min_turns:
        at_least = f" and lasts at least {min_turns}: do not end it before turn {min_turns}"
    return prompts.render("persona_turn", own=turn_index // 2 + 1, turn=turn_index + 1, max_turns=max_turns,
                          at_least=at_least)


def other_labels(job: DialogueJob, side: Side) -> tuple[str, ...]:
    """The names and labels the other side's lines could start with, were ``side`` to write them: its name
    (and the part before a comma: "Dana" of "Dana, a nurse"), and "User" or "Assistant" for the role it has."""
    other = other_side(side)
    name = job.speaker_name(other)
    labels = [name, name.split(",")[0].strip()]
    if job.is_ai_assistant(other):
        labels += ["Assistant", "AI"]
    elif job.is_ai_assistant(side):
        labels.append("User")
    return tuple(dict.fromkeys(x for x in labels if x))


def cut_at_other_speaker(text: str, labels: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first line that starts with one of ``labels`` and a colon (``Dana:``, ``**User:**``),
    where a speaker started writing the other side's lines; and whether it was cut. A stop sequence does the
    same on a server that honours it; this holds on every server.

    >>> cut_at_other_speaker("Sure, here it is.\nDana: thanks!", ["Dana"])
    ('Sure, here it is.', True)
    """
    if not labels:
        return text, False
    names = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
    match = re.compile(rf"^[ \t>*_\[(]*(?:{names})[*_\])]*[ \t]*[:：]", re.IGNORECASE | re.MULTILINE).search(text)
    if match is None:
        return text, False
    return text[:match.start()].rstrip(), True


@dataclass(frozen=True, slots=True)
class PersonaAgent:
    backend: Backend
    params: SamplingParams
    reask_cut: bool = True
    """Ask a turn cut at the token limit once more with twice the budget (``dialogue.reask_cut_turns``)."""

    def system_prompt(self, job: DialogueJob, plan: PlanOutput, side: Side, targets: Sequence[PrincipleLike],
                      situation: str, style_example: str | None, *, turn_index: int = 0,
                      max_turns: int | None = None, min_turns: int | None = None) -> str:
        """What ``side`` is told before its turn ``turn_index``. The judged side (the one whose turns become
        training targets) is told its public role only (``public_system_prompt``), and in its planted turn
        the violation instruction after it: nothing a training row does not show. The other side is told
        its persona, the situation, its brief and goal, the turn it is at."""
        violation = ""
        if targets and planted_turn(job, plan, side, turn_index):
            template = "persona_violation" if job.target_principles else "persona_near_miss"
            violation = prompts.render(template, role="assistant" if job.is_ai_assistant(side) else "person",
                                       principles=principle_lines(targets), idea=plan.violation_brief)
        if side == job.judged_side or job.is_ai_assistant(side):
            role = public_system_prompt(job, side) or ""
            return f"{role}\n\n{violation}" if violation else role
        brief = plan.brief_a if side == "A" else plan.brief_b
        style = f"{style_example}\n" if style_example else ""
        counter = turn_line(turn_index, max_turns, min_turns)
        situation = situation or "(not specified)"
        persona = job.persona(side)
        persona_text = persona.name + (f": {persona.description}" if persona.description else "")
        if job.mode == "assistant":
            return prompts.render("persona_user", persona=persona_text, situation=situation, brief=brief,
                                  goal=plan.goal, style=style, turn_line=counter, end_marker=END_MARKER)
        other = job.persona(other_side(side))
        done_rule = ("When your goal is reached or the conversation comes to a natural end, finish that line "
                     f"with {END_MARKER}") if side == "A" else ""
        return prompts.render("persona_peer", name=persona.name, other_name=other.name, persona=persona_text,
                              other_persona=other.description or other.name, situation=situation,
                              brief=brief, style=style, turn_line=counter,
                              done_rule=done_rule)

    async def speak(self, job: DialogueJob, plan: PlanOutput, messages: Sequence[dict[str, Any]], side: Side,
                    targets: Sequence[PrincipleLike], *, situation: str = "", style_example: str | None = None,
                    max_turns: int | None = None, min_turns: int | None = None,
                    system: str | None = None) -> tuple[str, bool, Completion]:
        """The next turn of ``side``: its text, whether it signalled done, and the completion.
        ``system``: a system prompt written elsewhere (the red-team attacker's) instead of the persona's.
        A line where the speaker starts writing the other side's (``cut_at_other_speaker``) ends the turn
        there, like a stop sequence: what follows it, an end marker included, was never this side's."""
        if system is None:
            system = self.system_prompt(job, plan, side, targets, situation, style_example,
                                        turn_index=len(messages), max_turns=max_turns, min_turns=min_turns)
        convo: list[ChatMessage] = [{"role": "system", "content": system},
                                    *view_from(side, messages, _KICKOFF[job.mode])]
        labels = other_labels(job, side)
        # Stop before the model starts writing the other side's lines.
        stop = tuple(dict.fromkeys((*self.params.stop, *(f"\n{x}:" for x in labels), "\nUser:", "\nAssistant:")))
        turn_index = len(messages)
        briefed = list(job.target_principles) if side == job.briefed_side and job.target_principles else None
        agent = f"persona_{side}"
        with agent_span(agent, turn_index=turn_index, side=side, principle_ids=briefed) as span:
            for resample in range(3):
                params = self.params.model_copy(update={
                    "stop": stop, "seed": derive_seed(job.seed, job.attack_id, "turn", turn_index, resample)})
                completion = await self.backend.complete(convo, params, agent=agent)
                text, done, completion = _spoken(completion, labels, span)
                if text:
                    break
            else:
                raise EmptyTurnError(f"side {side} produced an empty turn {turn_index} three times")
            if completion.finish_reason == "length" and self.reask_cut:
                text, done, completion = await self._with_room(convo, params, agent, labels, span,
                                                               (text, done, completion))
            record_completion(span, completion)
            span.set("app.done_signal", done)
            if resample:
                span.set("app.resamples", resample)
        return text, done, completion

    async def _with_room(self, convo: list[ChatMessage], params: SamplingParams, agent: str,
                         labels: Sequence[str], span: Any, cut: tuple[str, bool, Completion]
                         ) -> tuple[str, bool, Completion]:
        """A turn cut at the token limit, asked once more with twice the budget and the same seed (the
        same turn given room to end, where the server honours seeds). The longer reply replaces the cut
        one (usage of both counted); still cut, it is kept and is no training target (``cut_turn``)."""
        again = await self.backend.complete(convo, params.with_room(), agent=agent)
        span.set("app.reasked_cut_turn", True)
        text, done, again = _spoken(again, labels, span)
        if not text:
            return cut
        first = cut[2]
        usage = TokenUsage(first.usage.prompt_tokens + again.usage.prompt_tokens,
                           first.usage.completion_tokens + again.usage.completion_tokens)
        return text, done, replace(again, usage=usage, latency_s=first.latency_s + again.latency_s,
                                   retries=first.retries + again.retries + 1)


def _spoken(completion: Completion, labels: Sequence[str], span: Any) -> tuple[str, bool, Completion]:
    """What a reply says as this side's turn: up to a line of the other side's (``cut_at_other_speaker``;
    the turn then ended there, whole, whatever the server said), cleaned of its end marker."""
    spoken, cut = cut_at_other_speaker(completion.text, labels)
    text, done = clean_turn(spoken)
    if cut and text:
        completion = replace(completion, finish_reason="stop")
        span.set("app.cut_at_other_speaker", True)
    return text, done, completion
