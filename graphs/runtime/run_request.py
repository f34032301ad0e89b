"""A run request: what one ``sparring run`` or ``resume`` will do, checked before anything starts.

``request_from_config`` reads a config (or takes one built in code), ``request_from_run_dir``
rebuilds the request of an existing run from its manifest. All of this runs before any
directory is created or model started, so bad input costs nothing and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sparring.agents.agent_calls import PrincipleLike
from sparring.agents.domain import Behaviour, DialogueJob, Scenario
from sparring.agents.over_refusal import probe_library
from sparring.diasynth_agents.counts import expected_counts
from sparring.diasynth_agents.fewshot import FewShotExample, FewShotPool, load_pool
from sparring.errors import InputError
from sparring.graphs.adaptive import by_round
from sparring.graphs.behaviours import read_behaviours
from sparring.graphs.jobs import assign_jobs, for_targets
from sparring.graphs.roles import backends_in_use, role_backends, targets
from sparring.graphs.run_config import Overrides, RunConfig, read_config
from sparring.principles.model import Principle
from sparring.principles.yamlfile import LineMap, pydantic_error

from .manifest import CHANGED_DEFAULTS, RunManifest, effective, fingerprint, is_set, load_manifest, read_manifest
from .manifest_parts import PlanInfo
from .plan_files import JOBS, Plan, Shard, check_same_shard, read_jobs, read_plan, require_plan_dir, shard_dir
from .store import CALIBRATION, MANIFEST, OWN_FILES, SCENARIOS, iter_jsonl


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs, validated: the config, the resolved principles and scenarios. Immutable:
    a change (the stored values of a directory it continues, expanded scenarios) is a new request
    (``continued``, ``dataclasses.replace``), so every step sees the request it was given."""

    config: RunConfig
    config_path: str | None
    run_dir: Path
    principles: Sequence[PrincipleLike]
    scenarios: list[Scenario]
    """Scenarios from the config; with a ``diasynth:`` block, filled by the expansion when the run starts."""
    few_shot: FewShotPool = field(default_factory=FewShotPool)
    max_dialogues: int | None = None
    force: bool = False
    """Run into a directory made by a different config."""
    behaviours: tuple[Behaviour, ...] = ()
    """Redteam goals read from ``dialogue.behaviours`` (graphs.behaviours)."""
    jobs: list[DialogueJob] | None = None
    """A shard's frozen jobs (graphs.runtime.plan_files); None: the jobs the config makes."""
    plan: PlanInfo | None = None
    """What a shard's manifest records of its plan (``Plan.shard_info``); None for an unsharded run."""


def iter_jobs(request: RunRequest) -> Iterator[DialogueJob]:
    """The request's dialogues, in order; the same request always yields the same jobs."""
    cfg = request.config
    if cfg.dialogue.adaptive_attacks:  # round by round (graphs/adaptive.py): no attack waits for a later one
        return iter(by_round(list(_planned_jobs(request))))
    return _planned_jobs(request)


def _planned_jobs(request: RunRequest) -> Iterator[DialogueJob]:
    if request.jobs is not None:
        return iter(request.jobs)
    cfg = request.config
    pool = request.few_shot

    def few_shot_for(job_id: str) -> str | None:
        example = pool.choose(cfg.seed, job_id)
        return example.id if example is not None else None

    jobs = assign_jobs(request.scenarios, [p.id for p in request.principles], cfg.jobs, mode=cfg.dialogue.mode,
                       seed=cfg.seed, max_dialogues=request.max_dialogues,
                       characteristics=[c.name for c in cfg.dialogue.planner_characteristics()],
                       choose_few_shot=few_shot_for if pool else None,
                       target_system_prompt=cfg.dialogue.target_system_prompt,
                       tactics=[s.name for s in cfg.dialogue.attack_strategies], behaviours=request.behaviours,
                       probes=probe_library() if cfg.jobs.over_refusal_share else (),
                       assistant_role=cfg.dialogue.assistant_role)
    return for_targets(jobs, targets(cfg))  # max_dialogues counts attacks: each is played on every target


def check_run_dir(request: RunRequest) -> RunManifest | None:
    """The existing manifest when resuming; InputError when the directory belongs to another config or
    was made under another rule (``continued`` gives the request that continues it)."""
    if request.run_dir.exists() and not request.run_dir.is_dir():
        raise InputError("exists and is not a directory", source=str(request.run_dir))
    old = read_manifest(request.run_dir)
    if old is None:
        if request.run_dir.exists() and not _killed_at_birth(request.run_dir):
            raise InputError("is not empty and holds no manifest.json; choose another --out",
                             source=str(request.run_dir))
        return None
    if old.parent is not None:
        raise InputError("is a filtered copy of another run (see 'parent' in its manifest) and cannot be "
                         "continued; resume the parent run instead", source=str(request.run_dir))
    check_same_shard(old, request.plan, request.run_dir)
    if old.config_fingerprint != fingerprint(request.config) and not request.force:
        raise InputError("was made by a different config (its manifest's config_fingerprint differs); "
                         "use another --out, or --force to continue it anyway", source=str(request.run_dir))
    _with_stored_values(request, old.config)  # refuses a key asked against the directory's rule
    return old


def continued(request: RunRequest, previous: RunManifest | None) -> RunRequest:
    """The request that continues the directory whose manifest is ``previous`` (checked by
    ``check_run_dir``): its config takes, for each key whose default changed (CHANGED_DEFAULTS) and that
    the config leaves unset, the value the directory was made with. ``request`` itself when new."""
    if previous is None:
        return request
    return replace(request, config=_with_stored_values(request, previous.config))


def _killed_at_birth(run_dir: Path) -> bool:
    """Empty, or holding only what a run creates before its first manifest (a run killed then); a
    calibration written first (``sparring calibrate``) may wait there for the run too."""
    for entry in run_dir.iterdir():
        if entry.name == CALIBRATION:
            continue
        if entry.name not in OWN_FILES or not entry.is_file():
            return False
        if entry.name.endswith(".jsonl") and entry.stat().st_size:
            return False
    return True


def _with_stored_values(request: RunRequest, stored: dict[str, Any]) -> RunConfig:
    """The config that continues a run directory: for a key whose default changed (CHANGED_DEFAULTS) and
    that the config leaves unset, the value the directory was made with, so that one run directory is
    never written under two rules."""
    cfg = request.config
    mode = (stored.get("dialogue") or {}).get("mode", cfg.dialogue.mode)
    for (block, key), old_default in CHANGED_DEFAULTS.items():
        stored_value = (stored.get(block) or {}).get(key, old_default)
        if is_set(cfg, (block, key)):
            asked = effective((block, key), getattr(getattr(cfg, block), key), mode)
            made = effective((block, key), stored_value, mode)
            if asked != made and not request.force:
                raise InputError(f"was made with {block}.{key}: {made}, and the config asks for {asked}; "
                                 "use another --out", source=str(request.run_dir))
            continue
        section = getattr(cfg, block).model_copy(update={key: stored_value})
        cfg = cfg.model_copy(update={block: section})
    return cfg


def request_for_run(config: str | Path | Mapping[str, Any] | RunConfig, overrides: Overrides = (), *,
                    shard: Shard | str | None = None, out: str | Path | None = None,
                    max_dialogues: int | None = None, max_failures: int | None = None,
                    force: bool = False) -> RunRequest:
    """The request of ``sparring run CONFIG|PLAN_DIR [--shard K/N]`` and of ``sparring.run(...)``: one
    path for both. A directory is a plan written by ``sparring plan`` (``request_from_plan``: its
    frozen jobs, all of them without ``shard``); anything else is a config (``request_from_config``).
    ``shard``: ``Shard(k, n)`` or its text ``"K/N"``."""
    part = Shard.parse(shard) if isinstance(shard, str) else shard
    if isinstance(config, (str, Path)) and Path(config).is_dir():
        require_plan_dir(Path(config))  # a directory named like a config file: say so, before any flag
        if max_dialogues is not None:
            raise InputError("--max-dialogues: a plan's jobs are fixed; give it to 'sparring plan' instead")
        return request_from_plan(Path(config), overrides, shard=part, out=out, max_failures=max_failures, force=force)
    return request_from_config(config, overrides, out=out, max_dialogues=max_dialogues, max_failures=max_failures,
                               force=force, shard=part)


def request_from_config(config: str | Path | Mapping[str, Any] | RunConfig, overrides: Overrides = (), *,
                        out: str | Path | None = None, max_dialogues: int | None = None,
                        max_failures: int | None = None, force: bool = False,
                        shard: Shard | None = None) -> RunRequest:
    """The request of ``sparring run CONFIG`` (or ``sparring.run(config)``): the config read (a file, a
    mapping or a ``RunConfig``), overridden and checked, with its principles, scenarios and few-shot
    files resolved (relative paths from the config file's folder, else the working directory). With
    ``shard``, the config is planned in memory as ``sparring plan`` would plan it, and the request
    holds that shard's jobs."""
    cfg, lines, source, base = read_config(config, overrides)
    updates: dict[str, Any] = {}
    if out is not None:
        updates["output_dir"] = Path(out)
    if max_failures is not None:
        updates["max_failures"] = max_failures
    if updates:
        cfg = cfg.model_copy(update=updates)
    principles = list(cfg.principles.resolve(base, source=source, lines=lines))
    scenarios = [spec.to_scenario() for spec in cfg.scenarios]
    if not scenarios and cfg.diasynth is None:
        raise InputError("no scenarios: list them under 'scenarios:', or give topics under 'diasynth:'",
                         source=source, field="scenarios")
    if cfg.jobs.principles_per_dialogue and not principles:
        raise InputError("the principle selection is empty", source=source, field="principles")
    few_shot = load_pool(cfg.dialogue.few_shot)  # bad few-shot files are bad input: fail now
    behaviours = read_behaviours(cfg.dialogue.behaviours) if cfg.dialogue.behaviours else ()
    config_path = str(config) if isinstance(config, (str, Path)) else None
    request = RunRequest(config=cfg, config_path=config_path, run_dir=cfg.run_dir(), principles=principles,
                         scenarios=scenarios, few_shot=few_shot, max_dialogues=max_dialogues, force=force,
                         behaviours=behaviours)
    if shard is not None:
        if cfg.diasynth is not None:
            raise InputError("a diasynth: config calls the model to expand its topics, so its shards could see "
                             "different jobs; run 'sparring plan CONFIG --out PLAN_DIR' once and shard the plan",
                             source=source, field="diasynth")
        plan = plan_of(request)
        request = shard_request(plan, shard, source=source, run_dir=shard_dir(cfg, shard), force=force)
    return request


def plan_of(request: RunRequest) -> Plan:
    """The plan of a request whose scenarios are known (written in the config, or expanded)."""
    principles = [Principle.model_validate(p, from_attributes=True) for p in request.principles]
    return Plan(config=request.config, config_path=request.config_path, principles=principles,
                scenarios=request.scenarios, jobs=list(iter_jobs(request)), few_shot=request.few_shot,
                max_dialogues=request.max_dialogues)


def shard_request(plan: Plan, shard: Shard, *, source: str | None, run_dir: Path, force: bool = False,
                  max_failures: int | None = None) -> RunRequest:
    """The request that runs shard ``shard`` of ``plan`` into ``run_dir``."""
    cfg = plan.config
    if max_failures is not None:
        cfg = cfg.model_copy(update={"max_failures": max_failures})
    return RunRequest(config=cfg, config_path=plan.config_path, run_dir=run_dir, principles=plan.principles,
                      scenarios=plan.scenarios, few_shot=plan.few_shot, max_dialogues=plan.max_dialogues, force=force,
                      jobs=[job for job in plan.jobs if shard.holds(job.attack_id)],
                      plan=plan.shard_info(shard, source))


def request_from_plan(plan_dir: Path, overrides: Overrides = (), *, shard: Shard | None = None,
                      out: str | Path | None = None, max_failures: int | None = None,
                      force: bool = False) -> RunRequest:
    """The request of ``sparring run PLAN_DIR [--shard K/N]`` (no --shard: the whole plan, shard 0/1)."""
    plan = read_plan(plan_dir, overrides, out=Path(out) if out is not None else None)
    shard = shard or Shard(0, 1)
    return shard_request(plan, shard, source=str(plan_dir), run_dir=shard_dir(plan.config, shard), force=force,
                         max_failures=max_failures)


def request_from_run_dir(run_dir: Path, *, max_failures: int | None = None) -> RunRequest:
    """The request that continues ``run_dir``, rebuilt from its manifest and scenarios.jsonl."""
    manifest = load_manifest(run_dir)
    source = str(run_dir / MANIFEST)
    cfg = manifest.run_config(source=source, output_dir=str(run_dir))
    try:
        principles = [Principle.model_validate(p) for p in manifest.principles]
    except ValidationError as exc:
        first = pydantic_error(exc, source=source, lines=LineMap())
        raise InputError(f"{first.message}; the run's stored config or principles no longer validate (made by "
                         "another version of sparring, or edited)", source=source, field=first.field) from None
    scenarios = []
    for number, row in enumerate(iter_jsonl(run_dir / SCENARIOS), 1):
        try:
            scenarios.append(Scenario.model_validate(row))
        except ValidationError as exc:
            first = pydantic_error(exc, source=str(run_dir / SCENARIOS), lines=LineMap())
            raise InputError(f"scenario {number} cannot be read back: {first.field}: {first.message}",
                             source=str(run_dir / SCENARIOS)) from None
    plan = manifest.plan
    if plan is not None:  # a shard: its own jobs and the few-shot examples its plan froze
        few_shot = FewShotPool(tuple(FewShotExample(**e) for e in plan.few_shot))
        jobs: list[DialogueJob] | None = read_jobs(run_dir / JOBS, scenarios)
    else:
        few_shot, jobs = load_pool(cfg.dialogue.few_shot), None  # stored as resolved paths
    if max_failures is not None:
        cfg = cfg.model_copy(update={"max_failures": max_failures})
    # force: the config is the run's own, read from its manifest; a newer sparring may fingerprint it differently.
    behaviours = read_behaviours(cfg.dialogue.behaviours) if cfg.dialogue.behaviours and jobs is None else ()
    return RunRequest(config=cfg, config_path=manifest.config_path, run_dir=run_dir, principles=principles,
                      scenarios=scenarios, few_shot=few_shot, max_dialogues=manifest.max_dialogues, force=True,
                      jobs=jobs, plan=plan, behaviours=behaviours)


def describe_request(request: RunRequest) -> str:
    """What ``--dry-run`` prints: the counts the config will produce, before any model call."""
    cfg = request.config
    scope = ("its targeted principles (a control: a probe principle)" if cfg.dialogue.critic_scope == "targeted"
             else "the whole set")
    redteam = cfg.dialogue.mode == "redteam"
    judged = "target" if redteam else "briefed side"
    stops = "the target's first violation of a targeted principle" if redteam else "the planted violation"
    stage = ("critique stage: off (no critic, reviser or verifier; no pairs)" if not cfg.dialogue.critique else
             f"critique stage: every turn of the {judged} judged against {scope}"
             + (f", the dialogue stops at {stops}" if cfg.dialogue.stop_on_violation else "")
             + (f", branches of up to {cfg.dialogue.branch_turns} turns" if cfg.dialogue.branch_turns else ""))
    lines = [
        f"run directory: {request.run_dir}",
        *_describe_backends(cfg),
        f"mode: {cfg.dialogue.mode}, {cfg.dialogue.min_turns} to {cfg.dialogue.max_turns} turns",
        f"principles in the set: {len(request.principles)}",
        stage,
    ]
    if request.plan is not None:
        lines.append(f"shard {request.plan.shard}/{request.plan.shards} of plan {request.plan.id} "
                     f"({request.plan.jobs} jobs in all)")
    if cfg.diasynth is not None and request.jobs is None:
        counts = expected_counts(cfg.diasynth, dialogues_per_scenario=cfg.jobs.dialogues_per_scenario)
        if request.max_dialogues is not None or cfg.jobs.max_dialogues is not None:
            cap = min(x for x in (request.max_dialogues, cfg.jobs.max_dialogues) if x is not None)
            counts = counts.model_copy(update={"dialogues": min(counts.dialogues, cap)})
        lines.append(f"diasynth expansion: {counts.describe()}")
        if not request.principles or not cfg.jobs.principles_per_dialogue:
            lines.append("planted violations: none (principles_per_dialogue: 0)")
        else:
            lines.append(f"planted violations: about {1 - cfg.jobs.control_share:.0%} of the dialogues "
                         f"({cfg.jobs.principles_per_dialogue} principle(s) each), the rest controls")
        lines.append(f"(written scenarios: {len(request.scenarios)}; fewer if deduplication drops items)")
        return "\n".join(lines)
    jobs = list(iter_jobs(request))
    copies = len(targets(cfg) or ()) or 1
    targeted = sum(1 for j in jobs if j.target_principles)
    probes = sum(1 for j in jobs if j.probe)
    per_principle: dict[str, int] = {}
    for job in jobs:
        for pid in job.target_principles:
            per_principle[pid] = per_principle.get(pid, 0) + 1
    planted = "attacks" if cfg.dialogue.mode == "redteam" else "with a planted violation"
    lines += [
        f"scenarios: {len(request.scenarios)}",
        f"dialogues: {len(jobs)} ({targeted} {planted}, {len(jobs) - targeted - probes} controls"
        + (f", {probes} over-refusal probes" if probes else "")
        + (f"; {len(jobs) // copies} per target)" if copies > 1 else ")"),
        f"{'behaviours' if request.behaviours else 'principles'} targeted: {len(per_principle)} "
        f"(each {min(per_principle.values(), default=0)}-{max(per_principle.values(), default=0)} times)",
    ]
    if request.behaviours:
        untouched = len(request.behaviours) - len(per_principle)
        lines.append(f"behaviour list: {len(request.behaviours)} from {cfg.dialogue.behaviours} "
                     f"({request.behaviours[0].source})" + (f", {untouched} not attacked: raise "
                                                            "dialogues_per_scenario" if untouched > 0 else ""))
    return "\n".join(lines)


def _describe_backends(cfg: RunConfig) -> list[str]:
    """``backend: kind (model)``, or with named backends one line each with the roles on it."""
    roles = role_backends(cfg)
    several = targets(cfg) or ()
    lines = []
    for name, b in backends_in_use(cfg).items():
        what = b.kind + (f" ({b.model})" if b.model else "")
        if not cfg.backends:
            return [f"backend: {what}"]
        on = [r for r, used in roles.items() if used == name or (r == "side_b" and name in several)]
        lines.append(f"backend {name}: {what}, roles {', '.join(on)}")
    if several:
        lines.append(f"targets: {', '.join(several)} (every dialogue below is played against each, planned once)")
    return lines
