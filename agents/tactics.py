"""The tactics library: named multi-turn attack tactics for redteam mode, one file each in
``agents/prompts/tactics/NAME.txt``, written in this project's words. A file's first paragraph is the
tactic in one or two sentences (what the planner reads when it plans the attack); the rest is the
attacker's playbook: what it does turn by turn, when to escalate, when to back off.

    tactic("gradual_escalation").summary, tactic_names()
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["Tactic", "tactic", "tactic_names"]

_PACKAGE = "sparring.agents.prompts.tactics"


@dataclass(frozen=True, slots=True)
class Tactic:
    """One named tactic: its summary (for the planner) and its playbook (for the attacker)."""

    name: str
    summary: str
    playbook: str


@lru_cache(maxsize=1)
def tactic_names() -> tuple[str, ...]:
    """The names of the library's tactics, sorted."""
    return tuple(sorted(f.name.removesuffix(".txt") for f in resources.files(_PACKAGE).iterdir()
                        if f.name.endswith(".txt")))


@lru_cache(maxsize=64)
def tactic(name: str) -> Tactic:
    """The library tactic ``name`` (KeyError when there is none by that name)."""
    if name not in tactic_names():
        raise KeyError(name)
    text = resources.files(_PACKAGE).joinpath(f"{name}.txt").read_text(encoding="utf-8").strip()
    summary, _, playbook = text.partition("\n\n")
    return Tactic(name=name, summary=" ".join(summary.split()), playbook=playbook.strip())
