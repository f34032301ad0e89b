"""The diasynth: config block: defaults, and bad input reported with field and line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sparring.diasynth_agents.diasynth_config import DiaSynthConfig
from sparring.errors import InputError
from sparring.principles.yamlfile import parse_yaml, pydantic_error


def load_block(text: str, *, context: dict | None = None) -> DiaSynthConfig:
    """Validate the block as the run config loader does: pydantic errors become InputError with a line."""
    data, lines = parse_yaml(text, source="run.yaml")
    try:
        return DiaSynthConfig.model_validate(data["diasynth"], context=context)
    except ValidationError as exc:
        raise pydantic_error(exc, source="run.yaml", lines=lines, prefix=("diasynth",)) from None


def test_defaults_follow_the_paper():
    config = DiaSynthConfig(topics=["Pets"])
    assert (config.subtopics_per_topic, config.personas_per_subtopic) == (6, 6)
    assert 0.0 < config.dedup_threshold < 1.0
    assert config.max_scenarios is None


def test_config_is_frozen_and_rejects_unknown_keys():
    config = DiaSynthConfig(topics=["Pets"])
    with pytest.raises(ValidationError):
        config.topics = ["Food"]  # type: ignore[misc]
    with pytest.raises(InputError, match="unknown key 'persona_count'"):
        load_block("diasynth:\n  topics: [Pets]\n  persona_count: 3\n")


@pytest.mark.parametrize("yaml_text, field, line, message", [
    ("diasynth:\n  topics: []\n", "diasynth.topics", 2, "at least 1"),
    ("diasynth:\n  subtopics_per_topic: 2\n", "diasynth.topics", 1, "required"),  # the block that lacks it
    ("diasynth:\n  topics: [Pets]\n  personas_per_subtopic: 1\n", "diasynth.personas_per_subtopic", 3,
     "greater than or equal to 2"),
    ("diasynth:\n  topics: [Pets]\n  dedup_threshold: 1.2\n", "diasynth.dedup_threshold", 3, "less than or equal to 1"),
    ("diasynth:\n  topics: [Pets]\n  dedup_threshold: -0.5\n", "diasynth.dedup_threshold", 3,
     "greater than or equal to 0"),
    ("diasynth:\n  topics:\n    - Pets\n    - '  '\n", "diasynth.topics", 2, "topic [1] is empty"),  # the key
    ("diasynth:\n  topics: [Pets, food, Food]\n", "diasynth.topics", 2, "repeats topic [1]"),
    ("diasynth:\n  topics: [Pets]\n  max_scenarios: 0\n", "diasynth.max_scenarios", 3, "greater than or equal to 1"),
])
def test_bad_values_name_field_and_line(yaml_text, field, line, message):
    with pytest.raises(InputError) as info:
        load_block(yaml_text)
    err = info.value
    assert (err.source, err.field, err.line) == ("run.yaml", field, line)
    assert message in err.message
    assert str(err).startswith(f"run.yaml: {field} (line {line}): ")
