"""What an expansion produced against what was asked, and why any list fell short."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .counts import Counts


class DroppedItem(BaseModel):
    """A generated item that was not kept."""

    model_config = ConfigDict(extra="forbid")

    text: str
    reason: str
    """``near-duplicate of '...' (cosine 0.912 >= threshold 0.85)``, ``repeats '...'``, ``blank``."""
    duplicate_of: str | None = None
    similarity: float | None = None
    call: int = 1
    """Which generation call produced it (1 = the first, 2+ = top-ups)."""

    def brief(self) -> str:
        """``'a' ~ 'b' (0.91)``: the reason with long texts cut, for one-line explanations."""
        if self.duplicate_of is not None and self.similarity is not None:
            return f"{_cut(self.text)!r} ~ {_cut(self.duplicate_of)!r} ({self.similarity:.2f})"
        return f"{_cut(self.text)!r}: {self.reason}"


def _cut(text: str, limit: int = 50) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


class ListReport(BaseModel):
    """One generated list: the subtopics of a topic, or the personas of a subtopic."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["subtopics", "personas"]
    topic: str
    subtopic: str | None = None
    asked: int
    kept: int = 0
    calls: int = 0
    """Generation calls made, failed ones included (at most 1 + max_topup_attempts)."""
    dropped: list[DroppedItem] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    """Calls that failed for good (after the backend's retries and re-asks)."""
    missing_pairs: int = 0
    """Persona pairs lost because this list fell short (filled in by the scenario graph)."""

    @property
    def shortfall(self) -> int:
        return max(self.asked - self.kept, 0)

    @property
    def label(self) -> str:
        if self.kind == "subtopics":
            return f"topic {self.topic!r}"
        return f"subtopic {self.subtopic!r} of topic {self.topic!r}"

    def explain(self) -> str:
        """One line: what fell short, and why."""
        why = []
        if self.dropped:
            shown = "; ".join(d.brief() for d in self.dropped[:3])
            more = f"; and {len(self.dropped) - 3} more" if len(self.dropped) > 3 else ""
            why.append(f"{len(self.dropped)} dropped ({shown}{more})")
        if self.errors:
            why.append(f"{len(self.errors)} failed call(s) ({self.errors[-1]})")
        if not why:
            why.append("the model returned too few items")
        line = (f"{self.label}: {self.kept} of {self.asked} {self.kind} after {self.calls} call(s); "
                f"{', '.join(why)}")
        if self.missing_pairs:
            line += f" -> {self.missing_pairs} pairs missing"
        return line


class ExpansionReport(BaseModel):
    """Expected vs actual counts, and every list that explains the difference."""

    model_config = ConfigDict(extra="forbid")

    expected: Counts
    actual: Counts
    threshold: float
    lists: list[ListReport] = Field(default_factory=list)
    sampled: bool = False
    """True when ``max_scenarios`` cut the pairs down to a seeded sample."""

    @property
    def shortfalls(self) -> list[ListReport]:
        return [r for r in self.lists if r.shortfall]

    @property
    def dropped_count(self) -> int:
        return sum(len(r.dropped) for r in self.lists)

    def explain(self) -> list[str]:
        """Human-readable lines: totals first, then each list that fell short."""
        e, a = self.expected, self.actual
        lines = [f"expected: {e.describe()}", f"actual:   {a.describe()}"]
        if self.dropped_count:
            lines.append(f"{self.dropped_count} generated item(s) dropped as duplicates "
                         f"(threshold {self.threshold:.2f}); top-ups replaced what they could")
        if a.pairs < e.pairs:
            lines.append(f"{e.pairs - a.pairs} of {e.pairs} persona pairs missing:")
            lines.extend(f"  - {r.explain()}" for r in self.shortfalls)
        if self.sampled:
            lines.append(f"max_scenarios: a seeded sample of {a.scenarios} of {a.pairs} pairs kept")
        return lines
