"""Loading principle set files and resolving a selection of them into one Constitution.

Built-in sets are the YAML files in ``principles/sets/``, one per category plus
``quickstart``; they are read the first time something asks for them, then
cached. The name ``all`` selects every built-in set. A selection entry that
ends in ``.yaml``/``.yml`` or contains a path separator is a user's file;
anything else names a built-in set.

Every failure is an InputError naming the file, the field path and the line.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sparring.errors import InputError

from .model import Constitution, Origin, Principle, PrincipleSet, suggest
from .yamlfile import LineMap, Path_, dotted, list_file_keys, load_yaml, parse_yaml, pydantic_error

ALL_SETS = "all"
"""Selection name of every built-in set together: the full built-in constitution."""

_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _LoadedSet:
    """A set with its includes resolved, and where each of its principles was defined."""

    principle_set: PrincipleSet
    origins: Mapping[str, Origin]


def load_principle_file(path: str | Path) -> PrincipleSet:
    """Read and validate a user's principle set file; its ``include:`` ids come from the built-in sets."""
    return _load_user_file(Path(path)).principle_set


def builtin_sets() -> tuple[PrincipleSet, ...]:
    """The shipped sets, ordered by id (``all`` is not among them: it is a selection name)."""
    return tuple(loaded.principle_set for loaded in _builtins().values())


def get_builtin(set_id: str) -> PrincipleSet:
    """A shipped set by id; ``all`` gives one set holding every built-in principle."""
    return _get_builtin_loaded(set_id).principle_set


def builtin_constitution() -> Constitution:
    """Every built-in principle, each once: what a run uses when it selects nothing."""
    return resolve_principles([ALL_SETS])


def is_path_entry(entry: str) -> bool:
    """True when a selection entry names a file rather than a built-in set."""
    return entry.endswith(_YAML_SUFFIXES) or "/" in entry or os.sep in entry


def resolve_principles(sets: Sequence[str], ids: Sequence[str] | None = None, *,
                       base_dir: str | Path | None = None, source: str | None = None,
                       lines: LineMap | None = None, prefix: Path_ | None = None) -> Constitution:
    """Combine the selected sets into one ordered, de-duplicated Constitution.

    ``sets`` holds built-in set ids and/or paths to user files (relative paths
    are read from ``base_dir``); ``ids`` optionally keeps only those principles
    (in that order; ``*`` patterns allowed). A principle selected twice through
    the same definition is kept once; two definitions of one id are an error.
    ``source``/``lines``/``prefix`` say where the selection itself was written
    (a config file and the key path of its ``principles:`` block), so that
    errors about an entry point at it.
    """
    def where(*path: str | int) -> dict[str, Any]:
        if prefix is None:
            return {"source": source}
        full = (*prefix, *path)
        return {"source": source, "field": dotted(full), "line": lines.line_of(full) if lines else None}

    if not sets:
        raise InputError("select at least one principle set (built-in name or file path)", **where("sets"))
    chosen: dict[str, Principle] = {}
    origins: dict[str, Origin] = {}
    set_ids: list[str] = []
    for i, entry in enumerate(sets):
        loaded = _load_entry(entry, base_dir, where("sets", i))
        set_ids.append(loaded.principle_set.id)
        for principle in loaded.principle_set.principles:
            origin = loaded.origins[principle.id]
            earlier = origins.get(principle.id)
            if earlier is None:
                chosen[principle.id] = principle
                origins[principle.id] = origin
            elif not earlier.same_place(origin):
                raise InputError(f"principle id '{principle.id}' is already defined in {earlier}; "
                                 "give this one a new id", source=origin.source, field=origin.field,
                                 line=origin.line)
    constitution = Constitution(tuple(chosen.values()), origins, tuple(dict.fromkeys(set_ids)))
    if ids is None:
        return constitution
    if not ids:
        raise InputError("the list of principle ids is empty; leave it out to use every selected principle",
                         **where("ids"))
    id_lines = [where("ids", j).get("line") for j in range(len(ids))]
    return constitution.select(ids, source=source, field_name=where("ids").get("field"), lines=id_lines)


def _load_entry(entry: str, base_dir: str | Path | None, site: dict[str, Any]) -> _LoadedSet:
    if not isinstance(entry, str) or not entry.strip():
        raise InputError("a principle set entry must be a built-in set name or a file path", **site)
    if not is_path_entry(entry):
        return _get_builtin_loaded(entry, site)
    path = Path(entry).expanduser()
    relative = not path.is_absolute() and base_dir is not None
    if relative:
        path = Path(base_dir or ".") / path
    if path.is_dir():
        raise InputError(f"principle file '{path}' is a directory, expected a YAML file", **site)
    if not path.is_file():
        hint = f" (relative paths are read from {base_dir})" if relative else ""
        raise InputError(f"principle file '{path}' not found{hint}", **site)
    return _load_user_file(path)


def _get_builtin_loaded(set_id: str, site: dict[str, Any] | None = None) -> _LoadedSet:
    if set_id == ALL_SETS:
        return _all_builtins()
    builtins = _builtins()
    if set_id not in builtins:
        names = [ALL_SETS, *builtins]
        raise InputError(f"unknown built-in principle set '{set_id}'{suggest(set_id, names)}; "
                         f"built-in sets: {', '.join(names)}; a file path must end in .yaml or .yml",
                         **(site or {}))
    return builtins[set_id]


def _load_user_file(path: Path) -> _LoadedSet:
    data, lines = load_yaml(path, what="principle file")
    parsed = _validate(data, lines, source=str(path))
    return _with_includes(parsed, lines, _builtin_pool(), source=str(path), builtin=False)


def _validate(data: Any, lines: LineMap, *, source: str) -> PrincipleSet:
    if not isinstance(data, dict):
        raise InputError("a principle set file must be a mapping with id, title and principles",
                         source=source, line=lines.line_of(()) or 1)
    try:
        return PrincipleSet.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source=source, lines=lines, known_keys=_known_keys(data)) from None


def _known_keys(data: dict[str, Any]) -> dict[Path_, list[str]]:
    """Field names at each path of this file, for 'did you mean' hints."""
    return list_file_keys(data, PrincipleSet.model_fields, "principles", Principle.model_fields)


def _own_origins(principle_set: PrincipleSet, lines: LineMap, *, source: str,
                 builtin: bool) -> dict[str, Origin]:
    """Where each principle the file defines stands; a second definition of an id is an error."""
    origins: dict[str, Origin] = {}
    for i, principle in enumerate(principle_set.principles):
        path = ("principles", i, "id")
        origin = Origin(source, lines.line_of(path), principle_set.id, dotted(path), builtin)
        if principle.id in origins:
            raise InputError(f"duplicate principle id '{principle.id}' (first defined on line "
                             f"{origins[principle.id].line})", source=source, field=origin.field,
                             line=origin.line)
        origins[principle.id] = origin
    return origins


def _with_includes(principle_set: PrincipleSet, lines: LineMap,
                   pool: Mapping[str, tuple[Principle, Origin]], *, source: str, builtin: bool) -> _LoadedSet:
    """Append the ``include:`` principles (taken from ``pool``) after the set's own ones."""
    origins = _own_origins(principle_set, lines, source=source, builtin=builtin)
    own_ids = set(origins)
    included: list[Principle] = []
    for j, principle_id in enumerate(principle_set.include):
        where = ("include", j)
        site: dict[str, Any] = {"source": source, "field": dotted(where), "line": lines.line_of(where)}
        if principle_id in own_ids:
            raise InputError(f"'{principle_id}' is defined in this file and included too; drop one", **site)
        if principle_id in origins:
            continue  # listed twice in include: harmless
        if principle_id not in pool:
            raise InputError(f"unknown principle id '{principle_id}'{suggest(principle_id, pool)} "
                             "(include takes ids of built-in principles)", **site)
        principle, origins[principle_id] = pool[principle_id]
        included.append(principle)
    resolved = principle_set.model_copy(update={"principles": [*principle_set.principles, *included]})
    return _LoadedSet(resolved, origins)


@functools.cache
def _builtins() -> dict[str, _LoadedSet]:
    """Every shipped set by id, includes resolved. Read once per process."""
    pool = _builtin_pool()
    return {s.id: _with_includes(s, lines, pool, source=src, builtin=True)
            for s, lines, src in _parse_builtin_files()}


@functools.cache
def _builtin_pool() -> dict[str, tuple[Principle, Origin]]:
    return _pool(_parse_builtin_files())


@functools.cache
def _all_builtins() -> _LoadedSet:
    constitution = resolve_principles(list(_builtins()))
    principle_set = PrincipleSet(
        id=ALL_SETS, title="Full built-in constitution",
        description="Every principle of every built-in set, each once.",
        principles=list(constitution.principles))
    return _LoadedSet(principle_set, constitution.origins)


@functools.cache
def _parse_builtin_files() -> tuple[tuple[PrincipleSet, LineMap, str], ...]:
    folder = resources.files("sparring.principles").joinpath("sets")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(_YAML_SUFFIXES)), key=lambda f: f.name)
    out = []
    seen: dict[str, str] = {}
    for file in files:
        source = str(file)
        data, lines = parse_yaml(file.read_text(encoding="utf-8"), source=source)
        principle_set = _validate(data, lines, source=source)
        if principle_set.id == ALL_SETS or principle_set.id in seen:
            raise InputError(f"built-in set id '{principle_set.id}' is reserved or already used by "
                             f"{seen.get(principle_set.id, 'the selection name')}", source=source, field="id",
                             line=lines.line_of(("id",)))
        seen[principle_set.id] = source
        out.append((principle_set, lines, source))
    return tuple(out)


def _pool(parsed: Iterable[tuple[PrincipleSet, LineMap, str]]) -> dict[str, tuple[Principle, Origin]]:
    """Every principle the built-in files define (not include), by id; an id defined twice is an error."""
    pool: dict[str, tuple[Principle, Origin]] = {}
    for principle_set, lines, source in parsed:
        for principle_id, origin in _own_origins(principle_set, lines, source=source, builtin=True).items():
            if principle_id in pool:
                raise InputError(f"principle id '{principle_id}' is already defined in {pool[principle_id][1]}",
                                 source=source, field=origin.field, line=origin.line)
            principle = principle_set.get(principle_id)
            assert principle is not None
            pool[principle_id] = (principle, origin)
    return pool
