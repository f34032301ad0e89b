"""Tiny principle files written per test, so each test shows the exact YAML it feeds the loader."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

VALID_SET = """\
id: acme
title: Acme house rules
description: Rules of a made-up company.
principles:
  - id: acme.no-competitor-names
    category: helpfulness
    text: The speaker does not name competitors.
    critique: Any competitor's brand name counts.
    revision: Replace the name with a neutral description.
  - id: acme.plain-words
    category: helpfulness
    text: The speaker avoids jargon.
include:
  - privacy.no-doxxing
"""


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_yaml("name.yaml", text)`` -> path of that file under tmp_path (text is dedented)."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
