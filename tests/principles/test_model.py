"""Principle / PrincipleSet validation and Constitution lookup."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sparring.errors import InputError
from sparring.principles.model import Constitution, Origin, Principle, PrincipleSet


def make(pid: str, category: str = "privacy") -> Principle:
    return Principle(id=pid, category=category, text=f"Text of {pid}.")


@pytest.mark.parametrize("pid", ["privacy.no-doxxing", "acme.v2.plain-words", "a.b", "x1.y-2"])
def test_good_ids_are_accepted(pid: str) -> None:
    assert make(pid).id == pid


@pytest.mark.parametrize("pid", ["privacy", "Privacy.no-doxxing", "privacy.no_doxxing", "privacy..x",
                                 "privacy.no-", "-privacy.x", "1privacy.x", "privacy.no doxxing", ""])
def test_bad_ids_are_rejected_with_the_format_explained(pid: str) -> None:
    with pytest.raises(ValidationError) as err:
        make(pid)
    assert "e.g. 'privacy.no-doxxing'" in str(err.value)


def test_category_and_set_id_must_be_slugs() -> None:
    with pytest.raises(ValidationError, match="a category must be lowercase"):
        make("a.b", category="Fairness and bias")
    with pytest.raises(ValidationError, match="a set id must be lowercase"):
        PrincipleSet(id="my.set", title="t", principles=[make("a.b")])


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Principle(id="a.b", category="c", text="t", severity="high")


def test_guidance_is_optional_and_whitespace_is_trimmed() -> None:
    principle = Principle(id="a.b", category="c", text="  Be kind.\n")
    assert principle.text == "Be kind."
    assert principle.critique == "" and principle.revision == ""


def test_a_set_needs_a_principle() -> None:
    with pytest.raises(ValidationError, match="at least one principle"):
        PrincipleSet(id="empty", title="Empty")


def test_constitution_lookup() -> None:
    first, second = make("privacy.a"), make("honesty.b", "honesty")
    constitution = Constitution((first, second))
    assert len(constitution) == 2
    assert constitution["honesty.b"] is second
    assert "privacy.a" in constitution and "privacy.zzz" not in constitution
    assert constitution.get("nope") is None
    assert constitution.ids == ("privacy.a", "honesty.b")
    assert constitution.categories == ("privacy", "honesty")
    with pytest.raises(ValueError, match="unique"):
        Constitution((first, first))


def test_select_keeps_the_requested_order_and_expands_patterns() -> None:
    origins = {"privacy.a": Origin("f.yaml", 3, "s")}
    constitution = Constitution((make("privacy.a"), make("privacy.b"), make("honesty.c", "honesty")), origins)
    picked = constitution.select(["honesty.c", "privacy.*", "privacy.a"])
    assert picked.ids == ("honesty.c", "privacy.a", "privacy.b")
    assert dict(picked.origins) == origins


def test_select_rejects_unknown_ids_with_a_suggestion_and_location() -> None:
    constitution = Constitution((make("privacy.no-doxxing"),))
    with pytest.raises(InputError) as err:
        constitution.select(["privacy.no-doxxing", "privacy.no-doxing"], source="run.yaml",
                            field_name="principles.ids", lines=[4, 5])
    assert str(err.value) == ("run.yaml: principles.ids[1] (line 5): unknown principle id "
                              "'privacy.no-doxing' (did you mean 'privacy.no-doxxing'?)")
    with pytest.raises(InputError, match="pattern 'honesty.\\*' matches no principle id"):
        constitution.select(["honesty.*"])


def test_in_categories() -> None:
    constitution = Constitution((make("privacy.a"), make("honesty.b", "honesty")))
    assert constitution.in_categories(["honesty"]).ids == ("honesty.b",)
    with pytest.raises(InputError, match="no principle has category 'honsty' \\(did you mean 'honesty'\\?\\)"):
        constitution.in_categories(["honsty"])


def test_origin_names_builtin_sets_and_compares_real_paths(tmp_path) -> None:
    assert str(Origin("/x/sets/privacy.yaml", 10, "privacy", builtin=True)) == \
        "built-in set 'privacy' (privacy.yaml line 10)"
    assert str(Origin("mine.yaml", 4, "mine")) == "mine.yaml line 4"
    (tmp_path / "sub").mkdir()
    assert Origin(str(tmp_path / "a.yaml"), 4, "a").same_place(Origin(str(tmp_path / "sub/../a.yaml"), 4, "a"))
    assert not Origin(str(tmp_path / "a.yaml"), 4, "a").same_place(Origin(str(tmp_path / "a.yaml"), 9, "a"))
