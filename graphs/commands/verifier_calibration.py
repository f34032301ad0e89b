"""The verifier on labelled revisions (``sparring calibrate`` when the config critiques turns).

In a run the verifier re-judges each revision against the principles its turn broke, and the pair
counts as verified when none is found again (``graphs._branching.verify_revisions``). Here each
labelled revision (``sparring.principles.revision_items``) goes through the same call: the config's
verifier, the original conversation, the revision as the turn's text, its one principle. Figures:
the share of good revisions (``fixes``) it passes and of bad ones (``still-breaks``) it stops, each
with its 95% interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sparring.agents.agent_calls import PrincipleLike
from sparring.agents.critic import CriticAgent
from sparring.graphs.data.intervals import rate
from sparring.principles.revision_items import RevisionItem

from .critic_calibration import conversation_key

__all__ = ["judge_revisions", "verifier_figures"]

_ERROR_CHARS = 300


async def judge_revisions(verifier: CriticAgent, seed: int, items: Sequence[RevisionItem],
                          principles: Mapping[str, PrincipleLike],
                          on_done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """One row per item whose principle is in ``principles``: ``stopped`` when the verifier found the
    principle again in the revision (the run would not verify it); ``error`` when the call failed."""
    async def one(item: RevisionItem) -> dict[str, Any]:
        messages = item.messages()
        row: dict[str, Any] = {"item": item.id, "principle": item.principle, "label": item.label,
                               "revision": item.revision}
        try:
            verdict = await verifier.judge(seed, item.id, messages, len(messages) - 1, [principles[item.principle]],
                                           text=item.revision, order_key=conversation_key(messages))
        except Exception as exc:  # recorded against this item; the others go on
            row.update(stopped=None, error=f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])
        else:
            row.update(stopped=item.principle in verdict.violated, reasoning=verdict.reasoning)
        if on_done is not None:
            on_done()
        return row

    chosen = [i for i in items if i.principle in principles]
    return list(await asyncio.gather(*(one(i) for i in chosen)))


def verifier_figures(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Good revisions passed and bad ones stopped, with 95% intervals, and failed calls."""
    judged = [r for r in rows if r.get("error") is None]
    good = [r for r in judged if r["label"] == "fixes"]
    bad = [r for r in judged if r["label"] == "still-breaks"]
    passed = sum(not r["stopped"] for r in good)
    stopped = sum(bool(r["stopped"]) for r in bad)
    return {"fixes": len(good), "passed": passed, "pass_rate_ci": rate(passed, len(good)),
            "still_breaks": len(bad), "stopped": stopped, "stop_rate_ci": rate(stopped, len(bad)),
            "errors": len(rows) - len(judged)}
