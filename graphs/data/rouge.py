"""ROUGE-L between two texts, and the word tokenizer every figure of ``sparring stats`` uses.

Tokenizer: lowercase, then every maximal run of letters and digits is a token
(punctuation, spaces and underscores separate tokens; no stemming). That is
the tokenizer of Lin's ROUGE as the ``rouge-score`` package implements it,
widened from ASCII to Unicode letters, so ROUGE-L and tokens-per-turn figures
are comparable with DiaSynth's Table 1 (which reports ROUGE-L diversity).

ROUGE-L F is the F1 of LCS precision and recall (beta = 1, ``rouge-score``'s
``fmeasure``). The LCS length is computed bit-parallel (Hyyro 2004) on Python
integers: O(len(a) * len(b) / word size), about a hundred times faster than the
textbook table, which is what makes an exact all-pairs pass over a few hundred
dialogues affordable on a laptop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[^\W_]+")

TOKENIZER = "lowercased runs of letters and digits (rouge-score's tokenizer, Unicode letters kept, no stemming)"
"""How ``tokenize`` splits text, as stats outputs state it."""


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` (see the module docstring)."""
    return _TOKEN.findall(text.lower())


class LcsIndex:
    """One side of many LCS computations, prepared once: for each distinct token, the bit
    mask of its positions. Comparing a dialogue with hundreds of others reuses it."""

    __slots__ = ("length", "masks")

    def __init__(self, tokens: Sequence[str]) -> None:
        self.length = len(tokens)
        masks: dict[str, int] = {}
        for position, token in enumerate(tokens):
            masks[token] = masks.get(token, 0) | (1 << position)
        self.masks = masks

    def lcs(self, other: Sequence[str]) -> int:
        """Length of the longest common subsequence of the indexed tokens and ``other``."""
        if not self.length or not other:
            return 0
        full = (1 << self.length) - 1
        row = full
        masks = self.masks
        for token in other:
            match = row & masks.get(token, 0)
            row = ((row + match) | (row - match)) & full
        return self.length - row.bit_count()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    return LcsIndex(a).lcs(b)


def rouge_l_from_lcs(lcs: int, len_a: int, len_b: int) -> float:
    """ROUGE-L F1 from an LCS length and the two lengths (0 when either side is empty)."""
    if not lcs:
        return 0.0
    precision, recall = lcs / len_b, lcs / len_a
    return 2 * precision * recall / (precision + recall)


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of token sequences ``a`` (reference) and ``b`` (candidate); symmetric."""
    return rouge_l_from_lcs(lcs_length(a, b), len(a), len(b))
