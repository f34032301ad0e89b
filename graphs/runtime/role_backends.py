"""The backends of a run, made from its config: one per name in use, and the one each role calls.

    backends = RoleBackends.create(config)      # not started yet: nothing is loaded or connected
    await backends.start()
    critic = CriticAgent(backends["critic"], ...)
    ...
    await backends.aclose()

Two roles on one name get the same Backend object, so they share its client, its
``max_in_flight`` slots and its retry policy. A worker process makes its own, each with its
share of ``max_in_flight`` (``share_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sparring.agents.backends import Backend, BackendConfig, create_backend
from sparring.agents.backends.probe import ProbeResult, probe_backends
from sparring.errors import InputError
from sparring.graphs.roles import DEFAULT, Role, backends_in_use, role_backends, roles_in_use, targets
from sparring.redaction import redact_url

if TYPE_CHECKING:
    from sparring.graphs.run_config import RunConfig

    from .manifest import RunManifest

__all__ = ["RoleBackends", "probe_roles"]


class RoleBackends:
    """Backends by name, and the name each role uses (``graphs.roles``)."""

    def __init__(self, backends: Mapping[str, Backend], roles: Mapping[Role, str],
                 targets: tuple[str, ...] | None = None) -> None:
        missing = sorted({name for name in [*roles.values(), *(targets or ())] if name not in backends})
        if missing:
            raise ValueError(f"no backend given for {', '.join(missing)}")
        self.backends = dict(backends)
        self.roles = dict(roles)
        self.targets = targets
        """Several targets (``roles.side_b: [a, b]``): their backend names; None with one."""
        for name, backend in self.backends.items():
            backend.name = name

    @classmethod
    def create(cls, config: RunConfig, *, roles: tuple[Role, ...] | None = None,
               share_of: Callable[[int], int] | None = None,
               make: Callable[[BackendConfig], Backend] = create_backend) -> RoleBackends:
        """The config's backends, not started: the one way every command makes them (run, plan, a shard,
        calibrate, judge, doctor, Studio, the Python API). ``roles``: only the backends these roles use
        (default: every role a run of the config calls); ``share_of(max_in_flight)``: this process's part
        of each backend's ``max_in_flight`` (a worker's share); ``make``: what makes one from its block.
        Raises InputError for an API-key variable that is not set, before anything is started.

            >>> from sparring.graphs.run_config import RunConfig
            >>> backends = RoleBackends.create(RunConfig(), roles=("critic",))
            >>> backends.roles
            {'critic': 'default'}
        """
        made: dict[str, Backend] = {}
        for name, backend in backends_in_use(config, roles).items():
            if share_of is not None:
                backend = backend.model_copy(update={"max_in_flight": share_of(backend.max_in_flight)})
            try:
                made[name] = make(backend)
            except InputError as exc:  # an API-key variable that is not set: name the backend's own key
                if not config.backends or not (exc.field or "").startswith("backend."):
                    raise
                key = (exc.field or "").removeprefix("backend.")
                raise InputError(exc.message, source=exc.source, field=f"backends.{name}.{key}",
                                 line=exc.line) from None
        roles_used = role_backends(config, roles)
        return cls(made, roles_used, targets(config) if "side_b" in roles_used else None)

    @classmethod
    def of(cls, config: RunConfig, given: Backend | Mapping[str, Backend]) -> RoleBackends:
        """Backends made elsewhere (tests, replay, the Python API): one for every role, or one per
        name the config uses."""
        if isinstance(given, Backend):
            several = targets(config)
            if several:  # one backend for every role, standing in for each target too (replay, tests)
                return cls({name: given for name in backends_in_use(config)}, role_backends(config), several)
            return cls.single(given, roles_in_use(config))
        return cls(given, role_backends(config), targets(config))

    @classmethod
    def single(cls, backend: Backend, roles: Iterable[Role]) -> RoleBackends:
        """Every one of ``roles`` on ``backend`` (named as it is, ``default`` unless set)."""
        return cls({backend.name or DEFAULT: backend}, {role: backend.name or DEFAULT for role in roles})

    def __getitem__(self, role: Role) -> Backend:
        return self.backends[self.roles[role]]

    def get(self, role: Role) -> Backend | None:
        name = self.roles.get(role)
        return None if name is None else self.backends[name]

    def __iter__(self) -> Iterator[Backend]:
        return iter(self.backends.values())

    def roles_of(self, name: str) -> list[Role]:
        """The roles on backend ``name`` (each of several targets serves ``side_b``)."""
        return [role for role, on in self.roles.items()
                if on == name or (role == "side_b" and name in (self.targets or ()))]

    async def start(self) -> None:
        """Start each backend, one after the other (an engine loads while nothing else competes)."""
        for backend in self.backends.values():
            await backend.start()

    async def aclose(self) -> None:
        """Close every backend, even when one fails to close; the first failure is raised after."""
        failure: BaseException | None = None
        for backend in self.backends.values():
            try:
                await backend.aclose()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def describe(self) -> dict[str, dict[str, Any]]:
        """Name -> what the backend is (as in the manifest; no secrets) and the roles it serves."""
        return {name: {**backend.describe(), "roles": self.roles_of(name)} for name, backend in self.backends.items()}

    def record_in(self, manifest: RunManifest, settled: Callable[[str], dict[str, Any]] | None = None) -> None:
        """Set the manifest's ``backends`` (``describe``), ``roles`` and ``backend`` (the default one's entry,
        as manifests had before). ``settled(name)``: what the workers' copies of a backend settled on
        (structured-output mode and evidence), instead of this process's."""
        described = self.describe()
        if settled is not None:
            described = {name: {**entry, **settled(name)} for name, entry in described.items()}
        roles: dict[str, str | list[str]] = {str(role): name for role, name in self.roles.items()}
        if self.targets:
            roles["side_b"] = list(self.targets)
        manifest.backends, manifest.roles = described, roles
        manifest.backend = described.get(DEFAULT) or next(iter(described.values()))

    def label(self) -> str:
        """For progress: ``the embedded backend``, or ``the backends default (openai_compat), target (vllm)``."""
        if len(self.backends) == 1:
            return f"the {next(iter(self.backends.values())).config.kind} backend"
        return "the backends " + ", ".join(f"{name} ({b.config.kind})" for name, b in self.backends.items())


async def probe_roles(config: RunConfig, roles: tuple[Role, ...] | None = None,
                      on_slow: Callable[[str], None] | None = None) -> dict[str, ProbeResult]:
    """Probe each backend a run of ``config`` uses (or ``roles`` use), at once, before anything is
    written: ``BackendUnavailable`` (exit 2) when one cannot work. ``on_slow(line)`` is told, once, when
    the probe takes a while (a server slow to answer). Results by config key: ``backend``, or
    ``backends.NAME``. Run, plan, a shard and calibrate all probe here."""
    import asyncio

    import openai  # noqa: F401 - imported before the clock starts: the import is not the server's slowness

    used = backends_in_use(config, roles)
    task = asyncio.ensure_future(probe_backends(
        {("backends." + name if config.backends else "backend"): b for name, b in used.items()}))
    done, _ = await asyncio.wait({task}, timeout=3.0)
    if not done and on_slow is not None:
        on_slow("probing " + ", ".join(f"the {b.kind} backend at {redact_url(b.base_url or '')}"
                                       for b in used.values() if b.kind == "openai_compat"))
    return await task
