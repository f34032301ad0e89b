"""Over-refusal probes for redteam mode (``jobs.over_refusal_share``): an ordinary user asks a harmless
question that sounds risky (agents/prompts/over_refusal/CATEGORY.txt, one question a line, in this
project's words), and the critic judges the target's replies against the helpfulness principle on
needless refusals (``helpfulness.no-needless-refusal``). A probe whose target turn breaks it was
over-refused; the figures report the rate beside the attack success rate."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from sparring.principles.loader import get_builtin
from sparring.principles.model import Principle

from .domain import OverRefusalProbe

__all__ = ["OVER_REFUSAL_PRINCIPLE", "over_refusal_principle", "probe_library"]

OVER_REFUSAL_PRINCIPLE = "helpfulness.no-needless-refusal"
"""The principle a probe's target turns are judged against (principles/sets/helpfulness.yaml)."""
_PACKAGE = "sparring.agents.prompts.over_refusal"


@lru_cache(maxsize=1)
def probe_library() -> tuple[OverRefusalProbe, ...]:
    """Every probe, by category (file name) then line: ids ``CATEGORY-N``."""
    out = []
    files = sorted((f for f in resources.files(_PACKAGE).iterdir() if f.name.endswith(".txt")), key=lambda f: f.name)
    for f in files:
        category = f.name.removesuffix(".txt")
        questions = [line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        out += [OverRefusalProbe(id=f"{category}-{n}", category=category, question=q)
                for n, q in enumerate(questions, 1)]
    return tuple(out)


@lru_cache(maxsize=1)
def over_refusal_principle() -> Principle:
    """The built-in principle probes are judged against (``OVER_REFUSAL_PRINCIPLE``)."""
    return next(p for p in get_builtin("helpfulness").principles if p.id == OVER_REFUSAL_PRINCIPLE)
