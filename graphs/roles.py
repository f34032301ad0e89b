"""Which backend serves each role: the ``backends:`` and ``roles:`` blocks of a run config.

A config names its model either with the single ``backend:`` block, the shorthand for "every
role on this one" (its name is ``default``), or with ``backends:`` (name -> a backend block)
and ``roles:`` (role -> backend name). A role not named under ``roles:`` uses the backend named
``default``. Two roles on one name share one backend: its client, ``max_in_flight`` and retries.

    backends:
      default: {kind: openai_compat, base_url: http://judge:8000/v1, model: Qwen/Qwen2.5-72B-Instruct}
      target:  {kind: openai_compat, base_url: http://policy:8000/v1, model: my-org/policy-7b}
    roles: {side_b: target}

In redteam mode ``side_b`` may list several backends (``side_b: [base, tuned]``): every attack is then
played against each of them (``targets``).

Everything here reads a config; the started backends are ``graphs.runtime.role_backends``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, field_validator

from sparring.agents.backends.backend_config import BackendConfig
from sparring.principles.yamlfile import error_at

if TYPE_CHECKING:
    from .run_config import RunConfig

__all__ = ["DEFAULT", "ROLES", "Role", "RolesConfig", "backends_in_use", "check_backends", "models_by_role",
           "named_backends", "role_backends", "roles_in_use", "targets"]

Role = Literal["planner", "side_a", "side_b", "critic", "reviser", "verifier", "summary", "judge", "subtopics",
               "personas"]
ROLES: tuple[Role, ...] = get_args(Role)
DEFAULT = "default"
"""The backend of every role ``roles:`` does not name, and the name of the single ``backend:`` block."""
IN_PROCESS = ("embedded", "vllm")


class RolesConfig(BaseModel):
    """The ``roles:`` block: the backend (a name under ``backends:``) of each role that does not use ``default``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    planner: str | None = None
    """Plans each dialogue (briefs, goal; the attacker's strategy in redteam mode)."""
    side_a: str | None = None
    """Speaks for side A: the user (assistant mode), the first peer (peers), the attacker (redteam)."""
    side_b: str | list[str] | None = None
    """Speaks for side B: the assistant (assistant mode), the second peer (peers), the target (redteam).
    Redteam mode may list several backends (``[base, tuned]``): every attack, planned once, is played
    against each target, and the figures compare them."""
    critic: str | None = None
    """Judges the turns of the judged side against the principles."""
    reviser: str | None = None
    """Rewrites violating turns."""
    verifier: str | None = None
    """Re-judges revisions."""
    summary: str | None = None
    """Summarises dialogues (``dialogue.summaries``)."""
    judge: str | None = None
    """Scores dialogues (``dialogue.judge``, ``sparring judge``)."""
    subtopics: str | None = None
    """Writes subtopics (DiaSynth expansion)."""
    personas: str | None = None
    """Writes personas (DiaSynth expansion)."""

    @field_validator("side_b")
    @classmethod
    def _targets_once_each(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("names no backend; give one name, or a list of the targets' backend names")
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"names {', '.join(repr(n) for n in twice)} twice; each target once")
        return value

    def named(self) -> dict[Role, str]:
        """The roles this block names, with their backend names (side B: its first target)."""
        return {role: name[0] if isinstance(name, list) else name
                for role in ROLES if (name := getattr(self, role)) is not None}

    def target_list(self) -> list[str] | None:
        """The backends ``side_b`` lists, when it is a list (several targets); None for one name or none."""
        return list(self.side_b) if isinstance(self.side_b, list) else None


def roles_in_use(config: RunConfig) -> tuple[Role, ...]:
    """The roles a run of ``config`` calls a model for."""
    roles: list[Role] = ["planner", "side_a", "side_b", "critic", "reviser", "verifier"]
    if config.dialogue.summaries:
        roles.append("summary")
    if config.dialogue.judge is not None:
        roles.append("judge")
    if config.diasynth is not None:
        roles += ["subtopics", "personas"]
    return tuple(roles)


def named_backends(config: RunConfig) -> dict[str, BackendConfig]:
    """Every backend the config defines, by name: ``backends:``, or ``{default: backend}``."""
    return dict(config.backends) if config.backends else {DEFAULT: config.backend}


def role_backends(config: RunConfig, roles: tuple[Role, ...] | None = None) -> dict[Role, str]:
    """The backend name of each role in use (or of ``roles``). Call ``check_backends`` first: an
    unresolved role raises KeyError here."""
    named = config.roles.named()
    out: dict[Role, str] = {}
    for role in roles if roles is not None else roles_in_use(config):
        name = named.get(role, DEFAULT)
        if name not in named_backends(config):
            raise KeyError(f"role {role} has no backend (no backend named {name!r})")
        out[role] = name
    return out


def targets(config: RunConfig) -> tuple[str, ...] | None:
    """The backend names of several targets (``roles.side_b`` as a list, redteam mode), in order; None
    when side B runs on one backend (its jobs then carry no ``target``)."""
    listed = config.roles.target_list()
    return tuple(listed) if listed is not None else None


def backends_in_use(config: RunConfig, roles: tuple[Role, ...] | None = None) -> dict[str, BackendConfig]:
    """Each backend a run of ``config`` uses (or ``roles`` use), by name, in the order of first use:
    what to start, probe and describe (every target of a list). One call, computed from the config alone."""
    defined = named_backends(config)
    names = []
    for role, name in role_backends(config, roles).items():
        names += list(targets(config) or (name,)) if role == "side_b" else [name]
    return {name: defined[name] for name in dict.fromkeys(names)}


def models_by_role(config: RunConfig, roles: tuple[Role, ...] | None = None) -> dict[str, str]:
    """The model behind each role in use, as records name it (``models``)."""
    defined = named_backends(config)
    return {role: defined[name].model_name() for role, name in role_backends(config, roles).items()}


def check_backends(config: RunConfig) -> None:
    """Every role in use resolves to a backend; at most one in-process engine; workers only on
    HTTP backends, each with room for them. Raises ``error_at`` errors naming the key."""
    defined = named_backends(config)
    named = config.roles.named()
    listed = [(("roles", "side_b", i), name) for i, name in enumerate(targets(config) or ())]
    for at, name in [*((("roles", role), name) for role, name in named.items()), *listed]:
        if name not in defined:
            where = f"the config names {', '.join(repr(n) for n in defined)}" if config.backends else \
                "with the single backend: block its name is 'default' (name others under backends:)"
            raise error_at(at, f"no backend named {name!r}; {where}")
    for role in roles_in_use(config):
        if role not in named and DEFAULT not in defined:
            raise error_at(("roles",) if named else ("backends",),
                           f"role {role} has no backend: name one for it under roles:, or add a backend named "
                           f"'{DEFAULT}' under backends:")
    used = backends_in_use(config)
    engines = [name for name, b in used.items() if b.kind in IN_PROCESS]
    if len(engines) > 1:
        raise error_at(("backends", engines[1]), f"a second in-process engine ({used[engines[1]].kind}; "
                       f"backends.{engines[0]} is one already): one process runs one engine; put these roles on "
                       f"'{engines[0]}', or serve one of the models over HTTP (kind: openai_compat)")
    _check_workers(config, used)


def _check_workers(config: RunConfig, used: dict[str, BackendConfig]) -> None:
    workers = config.workers
    if workers == 1:
        return
    for name, backend in used.items():
        label = "backend" if not config.backends else f"backends.{name}"
        if backend.kind != "openai_compat":
            engine = "the" if not config.backends else f"{label}: the"
            raise error_at(("workers",), f"{workers} workers need backend kind openai_compat; {engine} {backend.kind} "
                           "engine lives in one process (use workers: 1)")
        if workers > min(config.concurrency, backend.max_in_flight):
            raise error_at(("workers",), f"{workers} workers is more than concurrency ({config.concurrency}) or "
                           f"{label}.max_in_flight ({backend.max_in_flight}): each worker needs at least one of each")
