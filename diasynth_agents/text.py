"""Small text normalizations shared by the generators, deduplication and the config."""

from __future__ import annotations


def normalize(text: str) -> str:
    """How two texts are compared for sameness: case and runs of whitespace do not matter."""
    return " ".join(text.split()).casefold()


def clean_item(text: str) -> str:
    """One generated phrase without list markers, quotes or trailing punctuation ("1. Foo," -> "Foo")."""
    text = " ".join(text.split())
    while text[:1] in {"-", "*", "\u2022"}:
        text = text[1:].lstrip()
    head, sep, rest = text.partition(" ")
    if sep and head.rstrip(".):").isdigit() and head[-1:] in {".", ")", ":"}:
        text = rest
    return text.strip().strip("\"'").rstrip(",;").strip()
