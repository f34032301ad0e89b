"""Prompt templates of this package: text files under ``diasynth_agents/prompts/`` with ``$placeholders``."""

from __future__ import annotations

from sparring.agents.prompts import render_in


def render(name: str, **values: object) -> str:
    """The template file ``name`` (e.g. ``subtopics_user.txt``) with every placeholder filled."""
    return render_in("sparring.diasynth_agents.prompts", name, **values)
