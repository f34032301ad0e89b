"""ROUGE-L and its tokenizer, on values worked out by hand."""

from __future__ import annotations

import random

import pytest

from sparring.graphs.data.rouge import LcsIndex, lcs_length, rouge_l, tokenize


def test_tokenizer_lowercases_and_splits_on_everything_but_letters_and_digits() -> None:
    assert tokenize("Yes! It's 3pm, café_au-lait.") == ["yes", "it", "s", "3pm", "café", "au", "lait"]
    assert tokenize("  ...  ") == []


@pytest.mark.parametrize(("a", "b", "lcs"), [
    ("the cat sat on the mat", "the cat ran to the mat yes", 4),  # the cat .. the mat
    ("a b c d", "d c b a", 1),
    ("a b a b", "b a b a", 3),
    ("x y", "", 0),
])
def test_lcs_length(a: str, b: str, lcs: int) -> None:
    assert lcs_length(a.split(), b.split()) == lcs
    assert lcs_length(b.split(), a.split()) == lcs


def test_rouge_l_is_the_f1_of_lcs_precision_and_recall() -> None:
    a, b = "the cat sat on the mat".split(), "the cat ran to the mat yes".split()
    # P = 4/7, R = 4/6, F = 2PR/(P+R) = 8/13
    assert rouge_l(a, b) == pytest.approx(8 / 13)
    assert rouge_l(a, a) == 1.0
    assert rouge_l(a, []) == 0.0


def test_bit_parallel_lcs_matches_the_textbook_table() -> None:
    def table_lcs(a: list[str], b: list[str]) -> int:
        row = [0] * (len(b) + 1)
        for x in a:
            prev_diag, row[0] = 0, 0
            for j, y in enumerate(b, start=1):
                prev_diag, row[j] = row[j], prev_diag + 1 if x == y else max(row[j], row[j - 1])
        return row[-1]

    rng = random.Random(3)
    for _ in range(200):
        a = rng.choices("abcde", k=rng.randint(0, 70))
        b = rng.choices("abcde", k=rng.randint(0, 70))
        assert LcsIndex(a).lcs(b) == table_lcs(a, b), (a, b)


def test_matches_the_rouge_score_package() -> None:
    scorer = pytest.importorskip("rouge_score.rouge_scorer").RougeScorer(["rougeL"])
    rng = random.Random(5)
    words = "the a cat dog sat on mat went home to eat".split()
    for _ in range(50):
        a = " ".join(rng.choices(words, k=rng.randint(1, 40)))
        b = " ".join(rng.choices(words, k=rng.randint(1, 40)))
        assert rouge_l(tokenize(a), tokenize(b)) == pytest.approx(scorer.score(a, b)["rougeL"].fmeasure)
