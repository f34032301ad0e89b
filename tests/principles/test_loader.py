"""Loading user files and resolving selections: results, and errors that name file, field and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.principles.loader import builtin_constitution, get_builtin, load_principle_file, resolve_principles

from .conftest import VALID_SET


def acme(principles: str) -> str:
    """A set file with a three-line header, so the first of ``principles`` is on line 4."""
    return "id: acme\ntitle: Acme\nprinciples:\n" + textwrap.dedent(principles)


def error_of(func, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as err:
        func(*args, **kwargs)
    return err.value


def test_a_user_file_loads_with_its_includes_after_its_own_principles(write_yaml) -> None:
    loaded = load_principle_file(write_yaml("acme.yaml", VALID_SET))
    assert loaded.id == "acme" and loaded.title == "Acme house rules"
    assert [p.id for p in loaded.principles] == ["acme.no-competitor-names", "acme.plain-words",
                                                 "privacy.no-doxxing"]
    assert loaded.principles[2] == builtin_constitution()["privacy.no-doxxing"]
    assert loaded.principles[1].critique == ""


def test_broken_yaml_names_file_and_line(write_yaml) -> None:
    path = write_yaml("broken.yaml", """\
        id: broken
        title: Broken
        principles:
          - id: broken.a
            text: "never closed
            category: honesty
        """)
    err = error_of(load_principle_file, path)
    assert err.source == str(path)
    assert err.line in (5, 6, 7)  # where PyYAML notices the runaway quote
    assert str(err).startswith(f"{path}: (line {err.line}): YAML syntax error")


def test_missing_field_names_the_field_path_and_line(write_yaml) -> None:
    path = write_yaml("missing.yaml", acme("""\
          - id: acme.a
            category: honesty
            text: One.
          - id: acme.b
            category: honesty
        """))
    assert str(error_of(load_principle_file, path)) == \
        f"{path}: principles[1].text (line 7): required key is missing"


def test_wrong_type_names_the_field_path_and_line(write_yaml) -> None:
    path = write_yaml("wrong.yaml", acme("""\
          - id: acme.a
            category: honesty
            text: [not, a, string]
        """))
    err = error_of(load_principle_file, path)
    assert (err.field, err.line) == ("principles[0].text", 6)
    assert "string" in err.message


def test_unknown_key_gets_a_suggestion(write_yaml) -> None:
    path = write_yaml("typo.yaml", acme("""\
          - id: acme.a
            category: honesty
            text: One.
            critiqe: Typo.
        """))
    assert str(error_of(load_principle_file, path)) == \
        f"{path}: principles[0].critiqe (line 7): unknown key 'critiqe' (did you mean 'critique'?)"


def test_bad_id_format_names_the_field_and_line(write_yaml) -> None:
    path = write_yaml("badid.yaml", acme("""\
          - id: Acme_Rule
            category: honesty
            text: One.
        """))
    err = error_of(load_principle_file, path)
    assert (err.field, err.line) == ("principles[0].id", 4)
    assert "e.g. 'privacy.no-doxxing'" in err.message and "'Acme_Rule'" in err.message


def test_file_that_is_not_a_mapping(write_yaml) -> None:
    path = write_yaml("list.yaml", "- a\n- b\n")
    assert "must be a mapping with id, title and principles" in str(error_of(load_principle_file, path))
    empty = write_yaml("empty.yaml", "")
    assert error_of(load_principle_file, empty).source == str(empty)


def test_duplicate_id_within_a_file_names_the_id_and_both_lines(write_yaml) -> None:
    path = write_yaml("dup.yaml", acme("""\
          - id: acme.a
            category: honesty
            text: One.
          - id: acme.a
            category: honesty
            text: Two.
        """))
    assert str(error_of(load_principle_file, path)) == \
        f"{path}: principles[1].id (line 7): duplicate principle id 'acme.a' (first defined on line 4)"


def test_duplicate_id_across_selected_files_names_both_places(write_yaml) -> None:
    first = write_yaml("one.yaml", VALID_SET)
    second = write_yaml("two.yaml", """\
        id: other
        title: Other
        principles:
          - id: other.x
            category: honesty
            text: X.
          - id: acme.plain-words
            category: honesty
            text: Redefined.
        """)
    err = error_of(resolve_principles, [str(first), str(second)])
    assert (err.source, err.field, err.line) == (str(second), "principles[1].id", 7)
    assert f"'acme.plain-words' is already defined in {first} line 10" in err.message


def test_redefining_a_builtin_id_clashes_with_the_builtin_set(write_yaml) -> None:
    mine = write_yaml("mine.yaml", """\
        id: mine
        title: Mine
        principles:
          - id: privacy.no-doxxing
            category: privacy
            text: My own wording.
        """)
    err = error_of(resolve_principles, ["privacy", str(mine)])
    assert err.source == str(mine) and err.line == 4
    assert "already defined in built-in set 'privacy' (privacy.yaml line" in err.message
    # Alone, the file is self-consistent: its id only clashes when both are selected.
    assert resolve_principles([str(mine)])["privacy.no-doxxing"].text == "My own wording."


def test_the_same_definition_selected_twice_is_kept_once(write_yaml, tmp_path) -> None:
    path = write_yaml("acme.yaml", VALID_SET)
    twice = resolve_principles(["quickstart", "all", str(path), str(tmp_path / "." / "acme.yaml")])
    assert len(twice) == len(builtin_constitution()) + 2
    assert twice.ids[:5] == tuple(p.id for p in get_builtin("quickstart").principles)
    assert twice.set_ids == ("quickstart", "all", "acme")


def test_unknown_include_is_reported_at_its_line(write_yaml) -> None:
    path = write_yaml("inc.yaml", """\
        id: inc
        title: Inc
        include:
          - honesty.no-fabrication
          - honesty.no-fabricaton
        """)
    assert str(error_of(load_principle_file, path)) == (
        f"{path}: include[1] (line 5): unknown principle id 'honesty.no-fabricaton' "
        "(did you mean 'honesty.no-fabrication'?) (include takes ids of built-in principles)")


def test_unknown_id_in_the_selection_is_rejected_with_a_suggestion() -> None:
    err = error_of(resolve_principles, ["quickstart"], ["honesty.no-fabrication", "privacy.data-minimisation"])
    assert str(err) == "unknown principle id 'privacy.data-minimisation' (did you mean 'privacy.data-minimization'?)"
    # An id that exists in the built-ins but not in the selected sets is unknown too.
    assert "unknown principle id 'privacy.no-doxxing'" in str(error_of(resolve_principles, ["quickstart"],
                                                                     ["privacy.no-doxxing"]))


def test_ids_select_in_the_given_order() -> None:
    picked = resolve_principles(["all"], ["privacy.no-doxxing", "honesty.*"])
    assert picked.ids[0] == "privacy.no-doxxing"
    assert set(picked.ids[1:]) == {p.id for p in get_builtin("honesty").principles}


def test_unknown_set_name_lists_the_available_sets() -> None:
    err = error_of(resolve_principles, ["honesty", "privcy"])
    assert "unknown built-in principle set 'privcy' (did you mean 'privacy'?)" in err.message
    assert "built-in sets: all, " in err.message and "quickstart" in err.message


def test_relative_paths_are_read_from_the_base_dir(write_yaml, tmp_path, monkeypatch) -> None:
    write_yaml("configs/rules/acme.yaml", VALID_SET)
    monkeypatch.chdir(tmp_path)  # the file is NOT at ./rules/acme.yaml from here
    loaded = resolve_principles(["rules/acme.yaml"], base_dir=tmp_path / "configs")
    assert "acme.plain-words" in loaded
    err = error_of(resolve_principles, ["rules/acme.yaml"], base_dir=tmp_path)
    assert err.message == (f"principle file '{tmp_path / 'rules/acme.yaml'}' not found "
                           f"(relative paths are read from {tmp_path})")


def test_an_empty_selection_is_an_error() -> None:
    assert "select at least one principle set" in str(error_of(resolve_principles, []))
    assert "list of principle ids is empty" in str(error_of(resolve_principles, ["all"], []))


def test_a_name_with_a_yaml_suffix_is_a_path_not_a_set(tmp_path: Path) -> None:
    assert "principle file 'privacy.yaml' not found" in str(error_of(resolve_principles, ["privacy.yaml"]))


def test_selection_errors_point_into_the_file_that_wrote_it() -> None:
    # A file whose top level is the selection itself (prefix ()), e.g. a shared principles block.
    from sparring.principles.yamlfile import parse_yaml

    _, lines = parse_yaml("sets:\n  - honesty\nids:\n  - honesty.no-sycophancy\n  - honesty.sycophancy\n",
                          source="sel.yaml")
    err = error_of(resolve_principles, ["honesty"], ["honesty.no-sycophancy", "honesty.sycophancy"],
                   source="sel.yaml", lines=lines, prefix=())
    assert (err.source, err.field, err.line) == ("sel.yaml", "ids[1]", 5)
