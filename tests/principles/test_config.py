"""The ``principles:`` block: defaults, validation, and errors that point into the config file."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sparring.errors import InputError
from sparring.graphs.run_config import RunConfig, load_config
from sparring.principles.loader import builtin_constitution
from sparring.principles.principles_config import PrincipleSelection
from sparring.principles.yamlfile import load_yaml

from .conftest import VALID_SET


class ConfigWithPrinciples(RunConfig):
    """Stands in for the run config until the lead embeds the block there."""

    principles: PrincipleSelection = PrincipleSelection()


def test_default_is_the_full_builtin_constitution() -> None:
    selection = PrincipleSelection()
    assert selection.sets == ["all"] and selection.ids is None
    assert selection.resolve().ids == builtin_constitution().ids


def test_block_is_strict_and_frozen() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PrincipleSelection(set=["privacy"])
    with pytest.raises(ValidationError, match="frozen"):
        PrincipleSelection().ids = ["privacy.no-doxxing"]  # type: ignore[misc]


@pytest.mark.parametrize("field", ["sets", "ids"])
def test_empty_lists_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError, match="an empty list selects nothing"):
        PrincipleSelection(**{field: []})


def test_resolve_reads_user_files_relative_to_the_config_folder(write_yaml, tmp_path, monkeypatch) -> None:
    write_yaml("exp/rules.yaml", VALID_SET)
    config = write_yaml("exp/run.yaml", """\
        principles:
          sets: [quickstart, rules.yaml]
          ids: [acme.*, honesty.no-fabrication]
        """)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(config, model=ConfigWithPrinciples)
    constitution = cfg.principles.resolve(config.parent)
    assert constitution.ids == ("acme.no-competitor-names", "acme.plain-words", "honesty.no-fabrication")


def test_errors_about_an_entry_point_at_the_config_line(write_yaml) -> None:
    config = write_yaml("run.yaml", """\
        name: demo
        principles:
          sets:
            - quickstart
            - privcy
          ids:
            - honesty.no-fabrication
            - honesty.no-fabricated
        """)
    data, lines = load_yaml(config)
    selection = PrincipleSelection.model_validate(data["principles"])
    with pytest.raises(InputError) as err:
        selection.resolve(config.parent, source=str(config), lines=lines)
    assert str(err.value).startswith(f"{config}: principles.sets[1] (line 5): unknown built-in principle set 'privcy'")

    fixed = selection.model_copy(update={"sets": ["quickstart"]})
    with pytest.raises(InputError) as err:
        fixed.resolve(config.parent, source=str(config), lines=lines)
    assert str(err.value) == (f"{config}: principles.ids[1] (line 8): unknown principle id "
                              "'honesty.no-fabricated' (did you mean 'honesty.no-fabrication'?)")


def test_a_missing_user_file_is_reported_at_its_entry(write_yaml, tmp_path) -> None:
    config = write_yaml("run.yaml", "principles:\n  sets: [all, ./mine.yaml]\n")
    data, lines = load_yaml(config)
    with pytest.raises(InputError) as err:
        PrincipleSelection.model_validate(data["principles"]).resolve(tmp_path, source=str(config), lines=lines)
    assert (err.value.source, err.value.field, err.value.line) == (str(config), "principles.sets[1]", 2)
    assert "mine.yaml' not found" in err.value.message


def test_a_typo_in_the_block_is_caught_by_the_config_loader(write_yaml) -> None:
    config = write_yaml("run.yaml", "principles:\n  sets: [quickstart]\n  idz: [honesty.no-fabrication]\n")
    with pytest.raises(InputError) as err:
        load_config(config, model=ConfigWithPrinciples)
    assert str(err.value) == f"{config}: principles.idz (line 3): unknown key 'idz' (did you mean 'ids'?)"
