"""The run config: one YAML file, validated by pydantic, overridable with ``--set``.

Each component owns its block (``backend`` in agents.backends.backend_config, ...);
this module composes them and turns every mistake into one InputError that
names the file, the key path and the line.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from sparring.agents.backends.backend_config import BackendConfig
from sparring.agents.backends.messages import SamplingParams
from sparring.diasynth_agents.diasynth_config import DiaSynthConfig
from sparring.errors import InputError
from sparring.principles.principles_config import PrincipleSelection
from sparring.principles.yamlfile import LineMap, dotted, error_at, load_yaml, pydantic_error

from .dialogue_config import DialogueConfig
from .jobs import JobsConfig, ScenarioSpec
from .roles import DEFAULT, RolesConfig, check_backends

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BACKEND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class StageSampling(BaseModel):
    """Sampling per stage. DiaSynth's published settings are the defaults of its stages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    planner: SamplingParams = SamplingParams(temperature=0.7, max_tokens=1200)
    """The conversation plan and the chain of thought over dialogue characteristics."""
    persona: SamplingParams = SamplingParams(temperature=0.8, max_tokens=220)
    """Each turn of the two persona agents (and of the attacker in redteam mode)."""
    target: SamplingParams = SamplingParams(temperature=0.7, max_tokens=400)
    """Each turn of the target in redteam mode: sampled as its deployment would, no stop words added."""
    critic: SamplingParams = SamplingParams(temperature=0.0, max_tokens=600)
    """The per-turn verdicts."""
    reviser: SamplingParams = SamplingParams(temperature=0.4, max_tokens=300)
    """Rewrites of violating turns."""
    verifier: SamplingParams = SamplingParams(temperature=0.0, max_tokens=500)
    """Re-judging a revision."""
    subtopics: SamplingParams = SamplingParams(temperature=0.1, max_tokens=2048)
    """DiaSynth subtopic generation (paper: 0.1 / 2048)."""
    personas: SamplingParams = SamplingParams(temperature=0.1, max_tokens=2048)
    """DiaSynth persona generation (paper: 0.1 / 2048)."""
    summary: SamplingParams = SamplingParams(temperature=0.2, max_tokens=400)
    """Dialogue summaries (the paper's downstream task)."""
    judge: SamplingParams = SamplingParams(temperature=0.0, max_tokens=8, logprobs=5)
    """LLM-as-judge scores (G-Eval)."""

    @model_validator(mode="before")
    @classmethod
    def _over_stage_defaults(cls, data: Any) -> Any:
        """``critic: {temperature: 0.3}`` changes the critic's temperature and keeps the rest of
        the critic's defaults; without this, pydantic would fill the rest from SamplingParams'
        generic defaults (max_tokens 512, and the judge would lose its logprobs)."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, dict) and isinstance(field.default, SamplingParams):
                merged[name] = {**field.default.model_dump(exclude_unset=True), **value}
        return merged


class ReportConfig(BaseModel):
    """The ``report:`` block: what a finished run writes about its own data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stats: bool = True
    """Write stats.json and report.html when the run ends (``sparring stats``/``report`` can do it later)."""
    embeddings: bool = True
    """Include the embedding diversity and near-duplicate rate in stats.json. They load a
    sentence-embedding model (seconds to tens of seconds on a CPU); off for quick or test runs."""


class TracingConfig(BaseModel):
    """The ``tracing:`` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_content: bool = True
    """Record prompts and completions in spans. Turn off for sensitive data; structure and usage stay
    (replay needs them)."""
    otlp_endpoint: str | None = None
    """Also export every span to this OpenTelemetry collector (OTLP/HTTP, protobuf), e.g.
    ``http://localhost:4318`` (``/v1/traces`` is added to a URL without a path). Needs
    ``pip install 'sparring[otel]'``."""
    otlp_headers_env: dict[str, str] = Field(default_factory=dict)
    """Headers sent to the collector, as header name -> NAME of the environment variable holding its
    value (e.g. ``{Authorization: OTLP_AUTH}``); values never sit in the file."""
    otlp_project: str | None = Field(None, min_length=1, max_length=200)
    """The project the exported spans land in, sent as the resource attribute
    ``openinference.project.name`` (Arize Phoenix and Arize read it; Langfuse picks the project by
    its keys, in ``otlp_headers_env``). Unset: the receiver's default project."""

    @field_validator("otlp_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("otlp_endpoint must start with http:// or https:// (OTLP over HTTP)")
        return value

    @field_validator("otlp_headers_env")
    @classmethod
    def _check_header_vars(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env in value.items():
            if not _ENV_NAME.match(env):
                raise ValueError(f"otlp_headers_env.{header} must be the NAME of an environment variable, "
                                 "not the header value itself")
        return value


class RunConfig(BaseModel):
    """A whole run: what to simulate, on which model, how hard to drive it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "run"
    """Names the run; the default output directory is ``runs/<name>``."""
    seed: int = Field(0, ge=0)
    """Seeds every sampling decision and every per-request seed; same config + seed = same jobs."""
    output_dir: Path | None = None
    """Run directory. ``sparring run --out DIR`` overrides it."""
    backend: BackendConfig = BackendConfig()
    """Which model serves the agents: every role on this one (its name is ``default``). With
    ``backends:`` instead, it reads as the backend named ``default`` (or the first named)."""
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    """Named backends (name -> a backend block like ``backend:``), for roles on different models; give
    either this or ``backend:``. Each keeps its own client, ``max_in_flight`` and retries."""
    roles: RolesConfig = RolesConfig()
    """Role -> backend name (``planner``, ``side_a``, ``side_b``, ``critic``, ``reviser``, ``verifier``,
    ``summary``, ``judge``, ``subtopics``, ``personas``); a role not named uses ``default``."""
    concurrency: int = Field(16, ge=1, le=100_000)
    """Dialogues in flight at once (over all workers)."""
    workers: int = Field(1, ge=1, le=64)
    """Processes that run the dialogues (``openai_compat`` only). One Python process keeps up
    with ~500 model calls a second; past that its event loop, not the server, sets the pace.
    ``concurrency`` and ``backend.max_in_flight`` are shared out among the workers; the
    records, traces and manifest are still written by the one process you started."""
    sampling: StageSampling = StageSampling()
    """Sampling parameters per stage."""
    principles: PrincipleSelection = PrincipleSelection()
    """Which constitution the dialogues are briefed with and judged against."""
    dialogue: DialogueConfig = DialogueConfig()
    """How one conversation runs and is judged."""
    jobs: JobsConfig = JobsConfig()
    """How scenarios and principles combine into dialogues."""
    scenarios: list[ScenarioSpec] = Field(default_factory=list)
    """Scenarios written out in the config."""
    diasynth: DiaSynthConfig | None = None
    """Expand topics into scenarios (subtopics, personas, persona pairs) before simulating."""
    tracing: TracingConfig = TracingConfig()
    """What spans record."""
    report: ReportConfig = ReportConfig()
    """What a finished run writes about its data (stats.json, report.html)."""
    max_failures: int | None = Field(None, ge=0)
    """Stop the run cleanly once more than this many dialogues have failed."""
    license: str = Field("apache-2.0", max_length=64)
    """The license the run's data is published under: the ``license`` of the dataset card that
    ``sparring export`` writes, as a Hugging Face Hub license id
    (https://huggingface.co/docs/hub/repositories-licenses). Default ``apache-2.0``, the license of
    sparring and of the embedded model. The generating model's terms come first: name what they allow
    (``llama3.1`` for Llama 3.1's outputs, ...); ``sparring export --license`` overrides it."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("name may use letters, digits, '.', '_' and '-' (it names a folder)")
        return value

    @field_validator("jobs")
    @classmethod
    def _check_sides(cls, value: JobsConfig, info: ValidationInfo) -> JobsConfig:
        dialogue = info.data.get("dialogue")
        if dialogue is not None and dialogue.mode == "redteam" and value.briefed_side not in (None, "A"):
            raise error_at(("briefed_side",), "in redteam mode the attacker (side A) is briefed and the target "
                                              "(side B) judged, by definition; leave briefed_side out")
        if dialogue is not None and dialogue.mode == "redteam" and value.control_kind == "near_miss":
            raise error_at(("control_kind",), "near_miss controls are for assistant and peers modes; a redteam "
                                              "control is an ordinary user talking to the target")
        if value.briefed_side == "drawn" and dialogue is not None and dialogue.mode != "peers":
            raise ValueError(f"briefed_side: drawn is for peers mode (two people); in {dialogue.mode} mode "
                             "side A is the user and side B the assistant, so give A or B")
        return value

    @field_validator("license")
    @classmethod
    def _check_license(cls, value: str) -> str:
        from .data.hub import hub_licenses

        if value not in hub_licenses():
            close = difflib.get_close_matches(value, sorted(hub_licenses()), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"not a Hugging Face Hub license id{hint}; see "
                             "https://huggingface.co/docs/hub/repositories-licenses")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_way_to_name_backends(cls, data: Any) -> Any:
        if isinstance(data, dict) and "backends" in data and "backend" in data:
            raise error_at(("backends",), "give either backend: (one backend for every role) or backends: "
                                          "(named backends, with roles:), not both")
        named = data.get("backends") if isinstance(data, dict) else None
        if isinstance(named, dict) and named:  # ``backend`` reads as the default one (not written back: the serializer)
            try:
                default = BackendConfig.model_validate(named.get(DEFAULT, next(iter(named.values()))))
            except ValidationError:
                return data  # reported where it was written, under backends.NAME
            data = {**data, "backend": default}
        return data

    @field_validator("backends")
    @classmethod
    def _check_backend_names(cls, value: dict[str, BackendConfig]) -> dict[str, BackendConfig]:
        if not value:
            raise ValueError(f"names no backend; name at least one, e.g. {DEFAULT}: {{kind: openai_compat, ...}}")
        for name in value:
            if not _BACKEND_NAME.match(name):
                raise error_at((name,), "a backend name may use letters, digits, '_' and '-'")
        return value

    @model_validator(mode="after")
    def _check_roles(self) -> RunConfig:
        if self.roles.target_list() is not None and self.dialogue.mode != "redteam":
            raise error_at(("roles", "side_b"), f"a list of targets is for redteam mode (this run is in "
                                                f"{self.dialogue.mode} mode); name one backend")
        check_backends(self)
        if self.jobs.over_refusal_share and self.dialogue.mode != "redteam":
            raise error_at(("jobs", "over_refusal_share"), "over-refusal probes are for redteam mode")
        if self.dialogue.adaptive_attacks and self.workers > 1:
            raise error_at(("dialogue", "adaptive_attacks"), "adaptive attacks wait for the earlier rounds on "
                                                             "their goal in one process; set workers: 1")
        return self

    @model_serializer(mode="wrap")
    def _without_the_shorthand(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Dumped with one of ``backend:`` and ``backends:``, the one it uses, so that it reads back the same."""
        data = handler(self)
        if isinstance(data, dict):
            data.pop("backend" if self.backends else "backends", None)
        return data

    def run_dir(self) -> Path:
        return self.output_dir if self.output_dir is not None else Path("runs") / self.name


def _known_keys(model: type[BaseModel], prefix: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], list[str]]:
    """Field names at each path, for 'did you mean' hints."""
    out: dict[tuple[str | int, ...], list[str]] = {prefix: list(model.model_fields)}
    for name, info in model.model_fields.items():
        for ann in (info.annotation, *typing.get_args(info.annotation)):  # unwrap `X | None`
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out.update(_known_keys(ann, (*prefix, name)))
    return out


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``backend.max_in_flight=8`` -> (["backend", "max_in_flight"], 8). Values are parsed as YAML."""
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected dotted.key=value")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise InputError(f"--set {text!r}: the key must be a dotted path like backend.max_in_flight")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise InputError(f"--set {key}: the value is not valid YAML") from None
    path: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return path, value


Overrides = Sequence[str] | Mapping[str, Any]
"""``--set`` texts (``"backend.max_in_flight=8"``, values parsed as YAML), or a mapping of dotted keys to
values (``{"backend.max_in_flight": 8}``, values taken as they are: the Python API)."""


def _parsed_overrides(overrides: Overrides) -> list[tuple[list[str | int], Any]]:
    if isinstance(overrides, Mapping):
        out = []
        for key, value in overrides.items():
            path, _ = parse_override(f"{key}=")  # the same checks of the key as on the command line
            out.append((path, value))
        return out
    if isinstance(overrides, str):
        overrides = [overrides]
    return [parse_override(text) for text in overrides]


def apply_overrides(data: dict[str, Any], overrides: Overrides, lines: LineMap) -> dict[str, Any]:
    for path, value in _parsed_overrides(overrides):
        node: Any = data
        for i, part in enumerate(path[:-1]):
            if isinstance(node, list) and isinstance(part, int):
                if part >= len(node):
                    raise InputError(f"--set {dotted(path)}: index {part} is past the end of {dotted(path[:i])}")
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise InputError(f"--set {dotted(path)}: {dotted(path[:i]) or 'the config'} is not a mapping")
            node = node.setdefault(str(part), {})
        last = path[-1]
        if isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = value
        elif isinstance(node, dict):
            node[str(last)] = value
        else:
            raise InputError(f"--set {dotted(path)}: {dotted(path[:-1])} is not a mapping, it cannot have keys")
        lines.lines.pop(tuple(path), None)  # its line in the file no longer applies
        lines.overridden.add(tuple(path))
    return data


def load_config(path: str | Path | None, overrides: Overrides = (), *,
                model: type[RunConfig] = RunConfig) -> RunConfig:
    """Read, override and validate a run config; every failure is an InputError.

    ``path=None`` means an empty config: every default (the embedded backend).
    """
    return load_config_with_lines(path, overrides, model=model)[0]


def load_config_with_lines(path: str | Path | None, overrides: Overrides = (), *,
                           model: type[RunConfig] = RunConfig) -> tuple[RunConfig, LineMap]:
    """``load_config`` plus where each value stood, for errors found later (principle ids, files)."""
    source = str(path) if path is not None else "(defaults)"
    if path is None:
        data: Any = {}
        lines = LineMap()
    else:
        data, lines = load_yaml(path, what="config file")
        if data is None:
            data = {}
    base = Path(path).parent if path is not None else Path.cwd()
    return _validated(data, overrides, lines, source=source, base=base, model=model), lines


def read_config(config: str | Path | Mapping[str, Any] | RunConfig | None, overrides: Overrides = ()
                ) -> tuple[RunConfig, LineMap, str, Path]:
    """A config given as a file (``str`` or ``Path``), a mapping of its keys, or a ``RunConfig`` built in
    code, with ``overrides`` applied and checked as a file would be: (config, line map, the name errors
    give it, the folder its relative paths are read from: the file's, else the working directory).
    Every failure is an InputError."""
    if config is None or isinstance(config, (str, Path)):
        cfg, lines = load_config_with_lines(config, overrides)
        return cfg, lines, str(config) if config is not None else "(defaults)", \
            Path(config).parent if config is not None else Path.cwd()
    if isinstance(config, RunConfig):
        source, data = "(RunConfig)", config.model_dump(mode="python")
    elif isinstance(config, Mapping):
        source, data = "(config mapping)", copy.deepcopy(dict(config))
    else:
        raise InputError(f"a config is a file path, a mapping or a RunConfig, not {type(config).__name__}")
    lines = LineMap()
    return _validated(data, overrides, lines, source=source, base=Path.cwd()), lines, source, Path.cwd()


def _validated(data: Any, overrides: Overrides, lines: LineMap, *, source: str, base: Path,
               model: type[RunConfig] = RunConfig) -> RunConfig:
    if not isinstance(data, dict):
        raise InputError("the config must be a mapping of keys to values", source=source, line=1)
    data = apply_overrides(data, overrides, lines)
    try:
        # The context lets file-valued fields (few-shot files) resolve against the config's folder.
        return model.model_validate(data, context={"config_dir": base})
    except ValidationError as exc:
        known = _known_keys(model)
        named = data.get("backends")
        for name in named if isinstance(named, dict) else ():  # 'did you mean' under each named backend
            known[("backends", name)] = list(BackendConfig.model_fields)
        raise pydantic_error(exc, source=source, lines=lines, known_keys=known) from None
