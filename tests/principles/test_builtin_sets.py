"""The shipped constitution: enough principles, every category covered, guidance filled in."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import pytest

from sparring.errors import InputError
from sparring.principles.loader import ALL_SETS, builtin_constitution, builtin_sets, get_builtin
from sparring.principles.model import BUILTIN_CATEGORIES

CATEGORY_SETS = [s for s in builtin_sets() if s.id != "quickstart"]


def test_at_least_40_unique_principles_across_the_seven_categories() -> None:
    constitution = builtin_constitution()
    assert len(constitution) >= 40
    assert len(set(constitution.ids)) == len(constitution)
    per_category = Counter(p.category for p in constitution)
    assert set(per_category) == set(BUILTIN_CATEGORIES)
    assert all(n >= 5 for n in per_category.values()), per_category


@pytest.mark.parametrize("principle", builtin_constitution().principles, ids=lambda p: p.id)
def test_every_principle_is_complete_and_short(principle) -> None:
    assert principle.critique and principle.revision
    # "One or two sentences": count sentence ends (a period/question mark followed by space or end).
    assert len(re.findall(r"[.?!](?:\s|$)", principle.text)) <= 2, principle.text
    # The critic must learn what does NOT count, or it flags everything.
    assert "not" in principle.critique.lower()


def test_ids_are_namespaced_by_their_defining_set_and_categories_are_consistent() -> None:
    for principle_set in CATEGORY_SETS:
        assert principle_set.include == []
        categories = {p.category for p in principle_set.principles}
        assert len(categories) == 1, (principle_set.id, categories)
        for principle in principle_set.principles:
            assert principle.id.split(".")[0] == principle_set.id


def test_no_two_principles_share_text_or_guidance() -> None:
    constitution = builtin_constitution()
    for field in ("text", "critique", "revision"):
        values = [getattr(p, field) for p in constitution]
        assert len(set(values)) == len(values), field


def test_quickstart_reuses_existing_ids() -> None:
    quickstart = get_builtin("quickstart")
    assert 4 <= len(quickstart.principles) <= 6
    assert [p.id for p in quickstart.principles] == quickstart.include
    everything = builtin_constitution()
    for principle in quickstart.principles:
        assert everything[principle.id] == principle


def test_all_is_every_category_set_once() -> None:
    everything = get_builtin(ALL_SETS)
    expected = [p.id for s in CATEGORY_SETS for p in s.principles]
    assert [p.id for p in everything.principles] == expected


def test_unknown_builtin_set_lists_the_available_ones() -> None:
    with pytest.raises(InputError) as err:
        get_builtin("privcy")
    message = str(err.value)
    assert "unknown built-in principle set 'privcy'" in message
    assert "did you mean 'privacy'?" in message
    for principle_set in builtin_sets():
        assert principle_set.id in message
    assert ALL_SETS in message


def test_importing_reads_no_file() -> None:
    # Built-ins are read lazily; importing the package, the config block or the CLI must not.
    code = ("import principles.principles_config, principles.loader as l, graphs.cli;"
            "print(l._parse_builtin_files.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
