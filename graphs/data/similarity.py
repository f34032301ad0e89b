"""How alike the dialogues of a run are: for each dialogue, its highest similarity to any other.

Both measures are "max over the others", which is quadratic in the number of
dialogues. Exact below a limit; above it, a seeded sample, and the result says
which it was (``method``, ``queries``, ``references``, ``population``):

- ROUGE-L (DiaSynth's diversity): exact for at most ``exact_limit`` dialogues
  (default 500, ~125k pairs). Above, a seeded sample of ``queries`` dialogues
  (default 200) each compared with a seeded sample of ``references`` others
  (default 1000): a bounded 200k pairs however large the run. A max over fewer
  references can only be lower, so the sampled figure errs low (more diverse).
- Embedding cosine: every dialogue is encoded (linear); the similarity matrix
  is computed in row chunks, exact for at most ``exact_limit`` dialogues
  (default 20000), above that for a seeded sample of that many query rows
  against all dialogues.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .rouge import LcsIndex, rouge_l_from_lcs


@dataclass(frozen=True)
class SamplingRule:
    """When to stop comparing everything with everything, and how large the samples are then."""

    exact_limit: int
    """Exact (every dialogue against every other) up to this many dialogues."""
    queries: int
    """Above the limit: how many dialogues get a max similarity (a seeded sample)."""
    references: int | None
    """Above the limit: how many dialogues each is compared with (a seeded sample); None = all."""
    seed: int = 0


ROUGE_RULE = SamplingRule(exact_limit=500, queries=200, references=1000)
EMBEDDING_RULE = SamplingRule(exact_limit=20_000, queries=20_000, references=None)


@dataclass(frozen=True)
class MaxSimilarity:
    """Per query dialogue, its highest similarity to another dialogue, and how it was obtained."""

    queries: list[int]
    """Indexes of the dialogues that got a figure (all of them when exact)."""
    best: list[float]
    """``best[k]``: max similarity of dialogue ``queries[k]`` to any compared other."""
    method: str
    """``exact`` or ``sampled``."""
    references: int
    """How many dialogues each query was compared with (itself excluded)."""
    population: int

    def mean(self) -> float | None:
        return sum(self.best) / len(self.best) if self.best else None

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "queries": len(self.queries), "references": self.references,
                "population": self.population}


def choose_samples(n: int, rule: SamplingRule) -> tuple[list[int], list[int], str]:
    """(query indexes, reference indexes, method) for ``n`` dialogues under ``rule``."""
    everything = list(range(n))
    if n <= rule.exact_limit:
        return everything, everything, "exact"
    rng = random.Random(rule.seed)
    queries = sorted(rng.sample(everything, min(rule.queries, n)))
    if rule.references is None or rule.references >= n:
        return queries, everything, "sampled"
    return queries, sorted(rng.sample(everything, rule.references)), "sampled"


def compute_max_rouge_l(token_lists: Sequence[Sequence[str]], rule: SamplingRule = ROUGE_RULE) -> MaxSimilarity:
    """Each (query) dialogue's highest ROUGE-L F to any other dialogue (of the reference sample)."""
    n = len(token_lists)
    queries, references, method = choose_samples(n, rule)
    if n < 2:
        return MaxSimilarity([], [], method, 0, n)
    best = {q: 0.0 for q in queries}
    if method == "exact":
        # ROUGE-L F is symmetric: each unordered pair once.
        for i in range(n):
            index = LcsIndex(token_lists[i])
            for j in range(i + 1, n):
                score = rouge_l_from_lcs(index.lcs(token_lists[j]), index.length, len(token_lists[j]))
                if score > best[i]:
                    best[i] = score
                if score > best[j]:
                    best[j] = score
        return MaxSimilarity(queries, [best[q] for q in queries], method, n - 1, n)
    for q in queries:
        index = LcsIndex(token_lists[q])
        for r in references:
            if r != q:
                score = rouge_l_from_lcs(index.lcs(token_lists[r]), index.length, len(token_lists[r]))
                if score > best[q]:
                    best[q] = score
    return MaxSimilarity(queries, [best[q] for q in queries], method, len(references), n)


def compute_max_cosine(vectors: Any, rule: SamplingRule = EMBEDDING_RULE, *, chunk: int = 1024) -> MaxSimilarity:
    """Each (query) row's highest cosine similarity to any other row of unit ``vectors`` (n x d)."""
    import numpy as np

    n = int(vectors.shape[0])
    queries, _, method = choose_samples(n, rule)
    if n < 2:
        return MaxSimilarity([], [], method, 0, n)
    best: list[float] = []
    for start in range(0, len(queries), chunk):
        rows = np.asarray(queries[start:start + chunk])
        sims = vectors[rows] @ vectors.T
        sims[np.arange(len(rows)), rows] = -np.inf  # not itself
        best.extend(float(min(x, 1.0)) for x in sims.max(axis=1))
    return MaxSimilarity(queries, best, method, n - 1, n)


def find_near_duplicates(vectors: Any, threshold: float, *, chunk: int = 1024) -> dict[int, tuple[int, float]]:
    """Rows that repeat an earlier kept row: ``{row: (kept row it repeats, cosine)}``.

    First occurrence wins, as in ``diasynth_agents.dedup.dedup``; unlike it, the
    similarity matrix is never held whole (blocks of ``chunk`` rows against the
    rows kept so far), so memory stays linear in the number of dialogues."""
    import numpy as np

    n = int(vectors.shape[0])
    kept: list[int] = []
    dropped: dict[int, tuple[int, float]] = {}
    for start in range(0, n, chunk):
        block = np.arange(start, min(start + chunk, n))
        if kept:
            earlier = vectors[kept] @ vectors[block].T
            earlier_best, earlier_arg = earlier.max(axis=0), earlier.argmax(axis=0)
        within = vectors[block] @ vectors[block].T
        kept_here: list[int] = []  # positions within the block
        for k, row in enumerate(block.tolist()):
            score, match = -1.0, -1
            if kept:
                score, match = float(earlier_best[k]), kept[int(earlier_arg[k])]
            if kept_here:
                column = within[kept_here, k]
                if float(column.max()) > score:
                    score, match = float(column.max()), int(block[kept_here[int(column.argmax())]])
            if match >= 0 and score >= threshold:
                dropped[row] = (match, min(score, 1.0))
            else:
                kept_here.append(k)
        kept.extend(int(block[k]) for k in kept_here)
    return dropped
