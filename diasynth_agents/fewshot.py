"""Few-shot example dialogues that set a dialogue's register (formal like DialogSum, chatty like SAMSum).

A few-shot file is JSONL, one example dialogue per line, in either shape::

    {"id": "clinic-1", "style": "formal", "turns": [{"speaker": "Receptionist", "text": "Good morning."}, ...]}
    {"id": "pals-2", "style": "chatty", "dialogue": "Ana: u up?\\nBo: yeah"}

``id`` defaults to ``<file stem>-<line>`` and ``style`` to the file stem. Each
dialogue gets one example, chosen from the seed and its job id, and records
the example's id (``DialogueJob.few_shot_id``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from sparring.agents.domain import derive_seed
from sparring.errors import InputError
from sparring.principles.yamlfile import LineMap, pydantic_error

from .templates import render as render_template


def _resolve_paths(value: list[Path], info: ValidationInfo) -> list[Path]:
    # The config loader passes context={"config_dir": ...}: then paths are
    # resolved and checked here, so a missing file is reported with its line.
    base = (info.context or {}).get("config_dir") if isinstance(info.context, dict) else None
    if base is None:
        return value
    resolved = [p if p.is_absolute() else Path(base) / p for p in value]
    for given, path in zip(value, resolved):
        if path.is_dir():
            raise ValueError(f"few-shot file {str(given)!r} is a directory, expected a JSONL file")
        if not path.is_file():
            raise ValueError(f"few-shot file {str(given)!r} not found (looked at {path})")
    return resolved


FewShotPaths = Annotated[list[Path], AfterValidator(_resolve_paths)]
"""Few-shot JSONL files in a config, relative to the config file's folder."""


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    speaker: str = Field(min_length=1, max_length=100)
    """Who speaks: a name or a label like ``Person1``."""
    text: str = Field(min_length=1)
    """What they say."""


class ExampleLine(BaseModel):
    """One line of a few-shot file, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, min_length=1, max_length=100)
    """Unique across all few-shot files of a run; defaults to ``<file stem>-<line>``."""
    style: str | None = Field(None, min_length=1, max_length=50)
    """A label for the register, e.g. ``formal`` or ``chatty``; defaults to the file stem."""
    turns: list[Turn] | None = Field(None, min_length=2)
    """The dialogue as turns (at least two)."""
    dialogue: str | None = Field(None, min_length=1)
    """Or the dialogue as one text, a ``Speaker: text`` line per turn."""

    @model_validator(mode="after")
    def _one_shape(self) -> ExampleLine:
        if (self.turns is None) == (self.dialogue is None):
            raise ValueError("give exactly one of 'turns' (a list) or 'dialogue' (a text)")
        return self


@dataclass(frozen=True)
class FewShotExample:
    id: str
    style: str
    text: str
    """The dialogue as ``Speaker: text`` lines, ready for a prompt."""
    source: str
    line: int


@dataclass(frozen=True)
class FewShotPool:
    """All examples of a run, in file order."""

    examples: tuple[FewShotExample, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def choose(self, seed: int, job_id: str) -> FewShotExample | None:
        """The example for one dialogue: depends only on ``seed`` and ``job_id``; None when the pool is empty."""
        if not self.examples:
            return None
        return self.examples[derive_seed(seed, "few_shot", job_id) % len(self.examples)]

    def get(self, example_id: str) -> FewShotExample:
        """The example a dialogue recorded (KeyError when it is not in the pool)."""
        for example in self.examples:
            if example.id == example_id:
                return example
        raise KeyError(example_id)


def render(example: FewShotExample) -> str:
    """The example dialogue, one ``Speaker: text`` line per turn."""
    return example.text


def style_instruction(example: FewShotExample) -> str:
    """A prompt paragraph asking to match the example's register without copying its content."""
    return render_template("fewshot.txt", style=example.style, dialogue=example.text)


def _parse_line(raw: str, path: Path, lineno: int) -> FewShotExample:
    source = str(path)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})", source=source, line=lineno) from None
    if not isinstance(data, dict):
        raise InputError("each line must be a JSON object (one example dialogue)", source=source, line=lineno)
    try:
        line = ExampleLine.model_validate(data)
    except ValidationError as exc:
        err = pydantic_error(exc, source=source, lines=LineMap(lines={(): lineno}))
        if not exc.errors()[0]["loc"]:  # a whole-line rule, not a field
            err = InputError(err.message.removeprefix("Value error, "), source=source, line=lineno)
        raise err from None
    if line.turns is not None:
        text = "\n".join(f"{t.speaker.strip()}: {' '.join(t.text.split())}" for t in line.turns)
    else:
        text = "\n".join(s.strip() for s in (line.dialogue or "").strip().splitlines() if s.strip())
    return FewShotExample(id=line.id or f"{path.stem}-{lineno}", style=line.style or path.stem, text=text,
                          source=source, line=lineno)


def load_file(path: str | Path) -> list[FewShotExample]:
    """Every example of one JSONL file; blank lines are skipped. Bad input raises InputError."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("few-shot file not found", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("few-shot file is a directory, expected a JSONL file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read few-shot file: {exc}", source=str(path)) from None
    examples = [_parse_line(raw, path, n) for n, raw in enumerate(content.splitlines(), 1) if raw.strip()]
    if not examples:
        raise InputError("few-shot file holds no example dialogues", source=str(path))
    return examples


def load_pool(paths: Sequence[str | Path] | Iterable[str | Path]) -> FewShotPool:
    """All examples of all files, ids checked unique across them."""
    examples: list[FewShotExample] = []
    seen: dict[str, FewShotExample] = {}
    for path in paths:
        for example in load_file(path):
            first = seen.get(example.id)
            if first is not None:
                raise InputError(f"example id {example.id!r} is already used at {first.source} line {first.line}",
                                 source=example.source, field="id", line=example.line)
            seen[example.id] = example
            examples.append(example)
    return FewShotPool(tuple(examples))
