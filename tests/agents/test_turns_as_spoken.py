"""Turns are stored exactly as spoken: only an end marker at the very end of a turn is removed,
never a word ("done" in any casing stays), and a marker anywhere else is text, not a signal."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.domain import TurnVerdict, ViolationFinding
from sparring.agents.persona import END_MARKER, clean_turn
from sparring.agents.reviser import ReviserAgent
from sparring.errors import StructuredOutputError

DONE_WORDS = ["done", "Done", "DONE", "dOnE", "done.", "<done", "done>", "[done]", "</done>", "<DONE>", "< done >"]
words = st.one_of(st.sampled_from(DONE_WORDS), st.sampled_from([END_MARKER]),
                  st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8))
spaces = st.sampled_from(["", " ", "  ", "\n", "\t", " \n "])


@st.composite
def spoken(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(what the model said, the text before any trailing marker, whether it ends with the marker)."""
    body = "".join(f"{w}{draw(spaces) or ' '}" for w in draw(st.lists(words, max_size=12))).rstrip()
    ends = draw(st.booleans())
    said = draw(spaces) + body + (draw(spaces) + END_MARKER + draw(spaces) if ends else draw(spaces))
    return said, body, ends


@settings(max_examples=400, deadline=None)
@given(spoken())
def test_stored_turn_is_the_spoken_text_minus_only_a_trailing_marker(case: tuple[str, str, bool]) -> None:
    said, body, ends = case
    stored, done = clean_turn(said)
    # The rule: the marker counts only at the very end; then it alone goes (with the whitespace at the ends).
    assert done == said.rstrip().endswith(END_MARKER)
    assert stored == (said.rstrip()[: -len(END_MARKER)].strip() if done else said.strip())
    if ends:
        assert done and stored == body.strip()
    # Every word is kept, in order: "done" in any casing, a marker inside the text, labels, quotes.
    before = said.rstrip()[: -len(END_MARKER)] if done else said
    assert stored.split() == before.split()


def test_the_issue_examples() -> None:
    assert clean_turn("Have you done the blood test yet?") == ("Have you done the blood test yet?", False)
    assert clean_turn("DONE deal, see you <done>  ") == ("DONE deal, see you", True)
    assert clean_turn("I typed <done> by mistake, sorry.") == ("I typed <done> by mistake, sorry.", False)
    assert clean_turn("  <done> ") == ("", True)
    assert clean_turn('Priya: "quoted"') == ('Priya: "quoted"', False)  # no label or quote is taken away


@settings(max_examples=60, deadline=None)
@given(spoken())
def test_a_revision_is_stored_as_the_reviser_wrote_it(case: tuple[str, str, bool]) -> None:
    said, body, ends = case
    backend = ScriptedBackend(lambda messages, params, schema: json.dumps({"revision": said}))
    reviser = ReviserAgent(backend, SamplingParams())
    turns = [{"role": "user", "speaker": "A", "name": "Dana", "content": "hello"},
             {"role": "assistant", "speaker": "B", "name": "AI assistant", "content": "original"}]
    verdict = TurnVerdict(turn_index=1, side="B", violated=["p"], reasoning="r",
                          findings=[ViolationFinding(principle_id="p", evidence="original", severity="minor")])
    if not said:  # the schema asks for at least one character: an empty revision is re-asked, then fails
        with pytest.raises(StructuredOutputError, match="at least 1 character"):
            asyncio.run(reviser.revise(1, "job", turns, verdict, {}))
        return
    text, _ = asyncio.run(reviser.revise(1, "job", turns, verdict, {}))
    assert text == clean_turn(said)[0]
    if ends:
        assert text == body.strip()
