"""Reading user-authored YAML so that every error can name file, field and line.

Config files, principle sets and few-shot files are all written by hand, and a
mistake in them should be reported as ``file: field (line N): what is wrong``
rather than as a traceback. This module is the one place that knows how.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import PydanticCustomError

from sparring.errors import InputError

Path_ = tuple[str | int, ...]

# Keys whose values must never be echoed back in an error message.
_SECRET_NAMES = {"key", "apikey", "token", "secret", "password", "authorization", "credentials"}
_SECRET_SUFFIXES = ("_key", "_token", "_secret", "_password")


@dataclass
class LineMap:
    """Where each value of a loaded YAML document stood in its file."""

    lines: dict[Path_, int] = field(default_factory=dict)
    overridden: set[Path_] = field(default_factory=set)
    """Paths whose value came from the command line, not the file."""

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Line of the value at ``path``, or of its nearest parent that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def dotted(path: Iterable[str | int]) -> str:
    """``("backend", "max_in_flight")`` -> ``backend.max_in_flight``; list indexes as ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def looks_secret(key: str) -> bool:
    """True for names like ``api_key`` or ``hf_token`` (not ``api_key_env``, not ``max_tokens``)."""
    key = key.lower().replace("-", "_")
    return key in _SECRET_NAMES or key.endswith(_SECRET_SUFFIXES)


def load_yaml(path: str | Path, *, what: str = "file") -> tuple[Any, LineMap]:
    """Parse a YAML file, returning its data and the line of every value.

    Raises InputError for a missing file, a syntax error (with its line) or a
    key given twice in one mapping (PyYAML would silently keep the last).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=str(path)) from None
    except IsADirectoryError:
        raise InputError(f"{what} is a directory, expected a YAML file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what}: {exc}", source=str(path)) from None
    return parse_yaml(text, source=str(path))


def parse_yaml(text: str, *, source: str) -> tuple[Any, LineMap]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, LineMap()
        lines = LineMap()
        data = _build(loader, node, (), lines, source)
        return data, lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            problem += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        raise InputError(f"YAML syntax error: {problem}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"YAML syntax error: {exc}", source=source) from None
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, lines: LineMap, source: str,
           line: int | None = None) -> Any:
    # A value under a key is located at its key: for a block (``backend:`` then
    # indented keys) that is the line the user thinks of as the block's.
    lines.lines[path] = line if line is not None else node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise InputError("mapping keys must be plain scalars", source=source,
                                 field=dotted(path), line=key_node.start_mark.line + 1)
            key = str(key)
            if key in out:
                raise InputError(f"key '{key}' is given twice", source=source,
                                 field=dotted((*path, key)), line=key_node.start_mark.line + 1)
            out[key] = _build(loader, value_node, (*path, key), lines, source, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def list_file_keys(data: Any, top: Iterable[str], list_key: str, item: Iterable[str]) -> dict[Path_, list[str]]:
    """Field names at each path of a file that is a mapping (keys ``top``) holding a list under
    ``list_key`` whose entries have keys ``item``: the ``known_keys`` of ``pydantic_error``."""
    keys: dict[Path_, list[str]] = {(): list(top)}
    entries = data.get(list_key) if isinstance(data, dict) else None
    if isinstance(entries, list):
        keys.update({(list_key, i): list(item) for i in range(len(entries))})
    return keys


def pydantic_error(exc: Any, *, source: str, lines: LineMap, prefix: Path_ = (),
                   known_keys: Mapping[Path_, Iterable[str]] | None = None) -> InputError:
    """Turn the first error of a pydantic ValidationError into an InputError.

    One message, not a wall of them: users fix one thing at a time, and the
    first error is the one nearest the top of their file.
    """
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    loc += tuple((err.get("ctx") or {}).get("at", ()))  # a model-level check naming its key (``error_at``)
    full = (*prefix, *loc)
    kind = err["type"]
    line = lines.line_of(full)
    if _from_command_line(full, lines):
        source, line = "--set", None
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        msg = f"unknown key '{key}'"
        if known_keys is not None:
            choices = list(known_keys.get(tuple(full[:-1]), ()))
            close = difflib.get_close_matches(key, choices, n=1)
            if close:
                msg += f" (did you mean '{close[0]}'?)"
        if looks_secret(key):
            msg += "; secrets never go in a file: put the key in an environment variable and name it with api_key_env"
        return InputError(msg, source=source, field=dotted(full), line=line)
    if kind == "missing":
        return InputError("required key is missing", source=source, field=dotted(full), line=line)
    # "Value error, ..." is how pydantic wraps a validator's ValueError: our text is the message.
    msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    # Echo the offending value when it is short and cannot be a secret.
    value = err.get("input")
    last = str(full[-1]) if full else ""
    # api_key_env is checked because people paste the key itself there.
    if isinstance(value, str) and "@" in value:  # a URL with user:password@ is never echoed
        value = None
    if (isinstance(value, (str, int, float, bool)) and not looks_secret(last)
            and not last.endswith("_env") and len(repr(value)) <= 60):
        msg = f"{msg} (got {value!r})"
    return InputError(msg, source=source, field=dotted(full), line=line)


def error_at(path: Path_, message: str) -> PydanticCustomError:
    """The error a model validator raises about one key below it: ``pydantic_error`` then names
    that key and its line, not the whole block.

        raise error_at(("roles", "critic"), "no backend named 'judge' under backends:")
    """
    # Braces would be read as template fields by pydantic; the message is ours, so none are meant.
    return PydanticCustomError("value_error", message.replace("{", "(").replace("}", ")"), {"at": tuple(path)})


def _from_command_line(path: Path_, lines: LineMap) -> bool:
    """True when the value at ``path`` came from ``--set`` rather than the file: it lies inside an
    overridden value, or it is a block the file lacks that only an override created."""
    for overridden in lines.overridden:
        if path[:len(overridden)] == overridden:
            return True
        if overridden[:len(path)] == path and path not in lines.lines:
            return True
    return False
