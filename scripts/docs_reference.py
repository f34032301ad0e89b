"""What keeps the documentation site true to the code (used by scripts/mkdocs_hooks.py and tests/test_docs.py).

- ``config_reference()``: the configuration reference, rendered from the pydantic models of the run
  config (``sparring.RunConfig`` and every block it holds): each field with its type, default, bounds
  and the docstring written under it. The page cannot go stale: it is written at every build.
- ``stale_references(text)``: every repository path and dotted Python name a page names in backticks
  (``graphs/runtime/runlock.py``, ``sparring.graphs.runtime.manifest.CHANGED_DEFAULTS``,
  ``agents/backends/_retry.SchemaSupport``),
  every ``sparring.NAME`` in its prose and examples and every name its examples import from sparring
  that no longer exists, so a page naming a moved module or a removed name fails the strict build.
- ``place_new_pages(nav, pages)``: pages added under docs/ without a nav entry join the section of
  their prefix (``redteam-*.md`` beside ``redteam.md``), or "More".
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import json
import re
import textwrap
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

REPO = Path(__file__).resolve().parents[1]
# Folders a page may name by path; anything else in backticks (RUN_DIR/engine.log, runs/<name>/) is not a path.
ROOTS = ("agents", "graphs", "principles", "traces", "diasynth_agents", "sparring", "tests", "benchmarks",
         "examples", "scripts", "docs", ".ci")
PACKAGES = ("agents", "graphs", "principles", "traces", "diasynth_agents")
MARKER = "<!-- sparring:config-reference -->"


# ---------------------------------------------------------------- configuration reference

@dataclass(frozen=True)
class Field:
    """One row of the reference: a field of a config block."""

    name: str
    type: str
    default: str
    bounds: str
    doc: str


@functools.cache
def attribute_docs(model: type) -> dict[str, str]:
    """The docstrings written under the fields of a class (and of its bases), by field name."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if cls in (object, BaseModel) or not cls.__module__.startswith("sparring"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The config models an annotation holds (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``, ...)."""
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield ann
        else:
            stack.extend(reversed(typing.get_args(ann)))


def _type_text(ann: Any) -> str:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_text(a) for a in args if a is not type(None)) + " \\| null"
    if origin in (list, tuple):
        inner = [a for a in args if a is not Ellipsis]
        if origin is tuple and len(inner) > 1 and len(set(inner)) == 1 and Ellipsis not in args:
            return f"list of {len(inner)} {_type_text(inner[0])}"
        return f"list of {_type_text(inner[0])}" if inner else "list"
    if origin is dict:
        return f"map {_type_text(args[0])} -> {_type_text(args[1])}"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return f"[{ann.__name__}](#{_anchor(ann)})"
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return " \\| ".join(str(m.value) for m in ann)
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if ann is Any:
        return "any"
    return names.get(ann, getattr(ann, "__name__", str(ann)))


def _value_text(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
        return f"`{json.dumps(value)}`" if value else "its defaults"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    text = json.dumps(value, default=str)
    return f"`{text}`" if len(text) <= 80 else f"`{text[:77]}...`"


def _default_text(info: Any) -> str:
    if info.default_factory is not None:
        return _value_text(info.default_factory())
    if info.default is PydanticUndefined:
        return "required"
    return _value_text(info.default)


_BOUNDS = ((annotated_types.Ge, "ge", "≥ {}"), (annotated_types.Gt, "gt", "> {}"),
           (annotated_types.Le, "le", "≤ {}"), (annotated_types.Lt, "lt", "< {}"),
           (annotated_types.MinLen, "min_length", "length ≥ {}"), (annotated_types.MaxLen, "max_length", "length ≤ {}"))


def _bounds_text(info: Any) -> str:
    found = []
    for item in info.metadata:
        for kind, attr, fmt in _BOUNDS:
            if isinstance(item, kind):
                found.append(fmt.format(getattr(item, attr)))
    return ", ".join(found)


def fields_of(model: type[BaseModel]) -> list[Field]:
    """The reference rows of one config block, in the model's order."""
    docs = attribute_docs(model)
    return [Field(name, _type_text(info.annotation), _default_text(info), _bounds_text(info),
                  docs.get(name) or (info.description or ""))
            for name, info in model.model_fields.items()]


def _anchor(model: type) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", model.__name__).lower()


def config_blocks(root: type[BaseModel]) -> dict[type[BaseModel], list[str]]:
    """Every config model reachable from ``root``, with the key paths it is found at, in walk order."""
    found: dict[type[BaseModel], list[str]] = {root: ["(top level)"]}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            ann = info.annotation
            path = f"{prefix}{name}"
            container = _container(ann)
            path += {dict: ".NAME", list: "[]", tuple: "[]"}.get(container, "")  # type: ignore[call-overload]
            for sub in _models_in(ann):
                if path not in found.setdefault(sub, []) and sub not in inside:
                    found[sub].append(path)
                    inside.add(sub)
                    walk(sub, path + ".")
                    inside.discard(sub)

    inside = {root}
    walk(root, "")
    return found


def _container(ann: Any) -> type | None:
    """``dict``, ``list`` or ``tuple`` when the annotation is one (under ``Annotated`` and ``| None``)."""
    origin = typing.get_origin(ann)
    if origin in (dict, list, tuple):
        return origin
    if origin is typing.Annotated:
        return _container(typing.get_args(ann)[0])
    if origin in (typing.Union, types.UnionType):
        return next((c for c in map(_container, typing.get_args(ann)) if c is not None), None)
    return None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if "\\|" not in text else text


def config_reference(root: type[BaseModel] | None = None) -> str:
    """The configuration reference as Markdown: one section per block, one row per field."""
    if root is None:
        import sparring
        root = sparring.RunConfig
    out: list[str] = []
    for model, paths in config_blocks(root).items():
        where = ", ".join(f"`{p}`" for p in paths)
        doc = " ".join((model.__doc__ or "").split())
        out += [f"### {model.__name__} {{#{_anchor(model)}}}", "",
                f"At {where}. `{model.__module__}.{model.__qualname__}`. {doc}", "",
                "| key | type | default | bounds | what it does |", "|---|---|---|---|---|"]
        out += [f"| `{f.name}` | {_cell(f.type)} | {_cell(f.default)} | {f.bounds} | {_cell(f.doc)} |"
                for f in fields_of(model)]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- stale references

_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_PATH = re.compile(r"^\.?[A-Za-z_][\w.-]*(/[\w.*-]+)*/?$")
_FILE_SUFFIXES = {"jsonl", "json", "yaml", "yml", "html", "md", "txt", "py", "sqlite", "log", "toml", "lock",
                  "zst", "gz", "csv", "parquet", "arrow", "zip"}
_PLACEHOLDER = re.compile(r"(?<![\w*])[A-Z][A-Z0-9_]*(?![\w*])")  # agents/prompts/tactics/NAME.txt: any name there
_DOTTED = re.compile(r"^(sparring|" + "|".join(PACKAGES) + r")(\.[A-Za-z_]\w*)+$")


def _top_level_names(path: Path) -> dict[str, set[str]]:
    """A module's top-level names, each with the names defined in it (methods, fields) when it is a class."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, set[str]] = {}
    for node in tree.body:
        for stmt in ([node] if not isinstance(node, ast.If) else [*node.body, *node.orelse]):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = set()
                if isinstance(stmt, ast.ClassDef):
                    for sub in stmt.body:
                        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                            inner.add(sub.name)
                        elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                            inner.add(sub.target.id)
                        elif isinstance(sub, ast.Assign):
                            inner.update(t.id for t in sub.targets if isinstance(t, ast.Name))
                names[stmt.name] = inner
            elif isinstance(stmt, ast.Assign):
                names.update({t.id: set() for t in stmt.targets if isinstance(t, ast.Name)})
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                names[stmt.target.id] = set()
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names.update({(a.asname or a.name).split(".")[0]: set() for a in stmt.names})
    return names


def _module_file(parts: list[str], root: Path) -> Path | None:
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _dotted_exists(parts: list[str], root: Path) -> bool:
    """``graphs.runtime.manifest.CHANGED_DEFAULTS``: the longest module prefix, then names defined in it."""
    if parts[0] == "sparring":
        parts = parts[1:] if len(parts) > 1 and parts[1] in PACKAGES else ["sparring", *parts[1:]]
    for cut in range(len(parts), 0, -1):
        module = _module_file(parts[:cut], root)
        if module is None:
            continue
        rest = parts[cut:]
        if not rest:
            return True
        names = _top_level_names(module)
        if module.name == "__init__.py" and rest[0] in _lazy_names(module):
            return True
        return rest[0] in names and (len(rest) == 1 or (len(rest) == 2 and rest[1] in names[rest[0]]))
    return False


def _lazy_names(init: Path) -> set[str]:
    """Names a package exports through ``__all__`` (sparring/__init__.py loads them on first use)."""
    match = re.search(r"__all__\s*=\s*\[(.*?)\]", init.read_text(encoding="utf-8"), re.S)
    return set(re.findall(r"[\"'](\w+)[\"']", match.group(1))) if match else set()


def _path_exists(text: str, root: Path) -> bool:
    """``graphs/plan.py``, ``agents/prompts/*.txt``, ``principles/calibration/``, or a name in a module:
    ``agents/backends/_retry.SchemaSupport``."""
    text = _PLACEHOLDER.sub("*", text)
    if any(ch in text for ch in "*?"):
        return any(root.glob(text.rstrip("/")))
    if (root / text).exists():
        return True
    folder, _, last = text.rpartition("/")
    module, dot, names = last.partition(".")
    if dot and (root / folder / f"{module}.py").is_file():  # path.Name: a name defined in that module
        return _dotted_exists([*folder.split("/"), module, *names.split(".")], root)
    return False


_SPARRING_NAME = re.compile(r"(?<![\w/.-])sparring(?:\.[A-Za-z_]\w*)+")
_IMPORT = re.compile(r"^\s*from (sparring(?:\.\w+)*) import \(?([\w, ]+)\)?\s*(?:#.*)?$", re.M)


def _spans(text: str) -> Iterator[str]:
    """What a page names: code spans, and the names its examples import from sparring."""
    for match in _CODE_SPAN.finditer(text):
        yield re.sub(r"(\(\))?:?$", "", match.group(1).strip()).replace(":", ".")
    for match in _SPARRING_NAME.finditer(text):  # prose and examples: sparring.run(...), python -m sparring.x
        yield match.group(0)
    for match in _IMPORT.finditer(text):
        for name in match.group(2).split(","):
            if name.strip():
                yield f"{match.group(1)}.{name.split(' as ')[0].strip()}"


def stale_references(text: str, root: Path = REPO) -> list[str]:
    """The paths and dotted names a page names (code spans, imports in its examples) that do not exist."""
    stale = []
    for span in dict.fromkeys(_spans(text)):
        if "/" in span and _PATH.match(span) and span.split("/")[0] in ROOTS:
            if not _path_exists(span, root):
                stale.append(span)
        elif (_DOTTED.match(span) and not _FILE_SUFFIXES & set(span.split(".")[1:])
              and not _dotted_exists(span.split("."), root)):
            stale.append(span)
    return stale


# ---------------------------------------------------------------- nav

def nav_files(nav: list[Any]) -> set[str]:
    """Every page file a nav lists."""
    found: set[str] = set()
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            found |= nav_files(value)
        elif isinstance(value, str):
            found.add(value)
    return found


def place_new_pages(nav: list[Any], pages: list[str]) -> list[Any]:
    """The nav with every page it does not list added: beside the section of its prefix, else in "More"."""
    listed = nav_files(nav)
    more: list[Any] = []
    for page in sorted(p for p in pages if p not in listed):
        prefix = Path(page).stem.split("-")[0]
        section = _section_of(nav, f"{prefix}.md")
        (section if section is not None else more).append(page)
    if more:
        nav.append({"More": more})
    return nav


def _section_of(nav: list[Any], page: str) -> list[Any] | None:
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            if any((next(iter(v.values())) if isinstance(v, dict) else v) == page for v in value):
                return value
            inner = _section_of(value, page)
            if inner is not None:
                return inner
    return None
