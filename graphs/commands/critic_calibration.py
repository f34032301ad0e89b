"""How far to trust a critic: run it on labelled turns and score its flags (``sparring calibrate``).

Each labelled item (``sparring.principles.labelled``) goes through the real
``CriticAgent.judge``, as a run judges a turn: the same prompt, output schema,
sampling and per-turn seed, and the same principles in scope, namely every
principle of the config's set (what a run with the default ``critic_scope: set``
judges against). The critic *flags* an item when the item's principle is among
the violations it reports. Judging each item against its one principle alone
would tell the critic the answer; judging it against the whole set makes it
find the principle among its neighbours, as it must in a run.

Per principle, per category and overall (counts summed):

- recall: violating items flagged / violating items judged;
- precision: violating items flagged / all items flagged (violating and near
  misses). The set holds as many near misses as violations, so precision here
  is that of a judge on a balanced set, not on a run's mix of turns;
- near misses flagged for any principle: what would be revised in a run.

With two critics, their agreement on the flag decision: raw agreement and
Cohen's kappa (agreement beyond what their flag rates alone would give).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.agents.agent_calls import PrincipleLike
from sparring.agents.backends import Backend, BackendConfig
from sparring.agents.backends.base import metered
from sparring.agents.critic import CriticAgent
from sparring.errors import InputError
from sparring.graphs.data.intervals import kappa_interval, rate
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.store import CALIBRATION, replace_json
from sparring.principles.labelled import LABELS, LabelledItem

__all__ = ["CALIBRATION_FORMAT", "GAP_FIGURES", "Critic", "CriticSpec", "agreement", "calibrate", "calibrate_specs",
           "probe_specs",
           "cohen_kappa", "critic_spec", "figures", "judge_items", "read_calibration",
           "select_items", "set_gap", "write_calibration"]

CALIBRATION_FORMAT = 1
"""Version of calibration.json's layout."""
_ERROR_CHARS = 300


@dataclass(frozen=True)
class CriticSpec:
    """A critic as a config describes it."""

    name: str
    """How results name it (the config file's name)."""
    config: RunConfig
    source: str | None = None
    """The config file it comes from."""

    @property
    def backend(self) -> BackendConfig:
        """The backend the config's critic runs on (its ``critic`` role's): the one place that knows it."""
        from sparring.graphs.roles import named_backends, role_backends

        return named_backends(self.config)[role_backends(self.config, ("critic",))["critic"]]

    def critic(self, backend: Backend) -> Critic:
        """The config's critic on ``backend``, made as a run makes it (``make_agents``), with its verifier
        when the config critiques turns and the verifier runs on the critic's backend, and its scope."""
        from sparring.graphs.roles import role_backends
        from sparring.graphs.wiring import make_agents

        agents = make_agents(self.config, backend)
        names = role_backends(self.config, ("critic", "verifier"))
        verifier, why = None, "the config does not critique turns (dialogue.critique: false)"
        if self.config.dialogue.critique:
            same = names.get("verifier", names["critic"]) == names["critic"]
            verifier, why = (agents.verifier, "") if same else (None, "the verifier runs on another backend than "
                                                                     "the critic; calibrate a config whose critic "
                                                                     "is that backend")
        return Critic(self.name, agents.critic, self.config.seed, self.source, verifier=verifier,
                      verifier_skipped=why, scope=self.config.dialogue.critic_scope)


def critic_spec(config: RunConfig, *, name: str, source: str | None = None) -> CriticSpec:
    """The critic of ``config``, named ``name`` in results."""
    return CriticSpec(name=name, config=config, source=source)


@dataclass(frozen=True)
class Critic:
    """A critic ready to judge: its agent (on a backend) and the seed its per-turn seeds derive from."""

    name: str
    agent: CriticAgent
    seed: int = 0
    source: str | None = None
    verifier: CriticAgent | None = None
    """The verifier to measure on labelled revisions; None: not measured (``verifier_skipped`` says why)."""
    verifier_skipped: str = ""
    scope: str = "set"
    """``set``: each item judged against every principle in scope (a run's default); ``targeted``: against
    the item's principle alone, as a ``critic_scope: targeted`` run asks about the planted principle."""


def select_items(items: Sequence[LabelledItem], principles: Sequence[PrincipleLike], *,
                 only: Sequence[str] = (), per_label: int | None = None
                 ) -> tuple[list[LabelledItem], list[str]]:
    """The items to judge, and the ids of labelled principles left out because the set lacks them.

    ``only`` keeps principles matching these ids or ``*`` patterns (each must match one of the
    set's labelled principles); ``per_label`` keeps the first N items of each label per principle in each
    labelled set (rubric, transfer, a file), so a shortened kit still measures the gap between sets.
    """
    in_set = {p.id for p in principles}
    labelled = list(dict.fromkeys(i.principle for i in items))
    usable = [pid for pid in labelled if pid in in_set]
    skipped = [pid for pid in labelled if pid not in in_set]
    if only:
        for pattern in only:
            if not any(fnmatch.fnmatchcase(pid, pattern) for pid in usable):
                raise InputError(f"--principle {pattern}: matches no labelled principle of the config's set "
                                 f"({len(usable)} of its principles have labelled items)")
        usable = [pid for pid in usable if any(fnmatch.fnmatchcase(pid, p) for p in only)]
    if not usable:
        raise InputError("none of the config's principles has labelled items; the built-in items cover the "
                         "built-in principles (give your own with --items FILE)")
    keep = set(usable)
    taken: dict[tuple[str, str, str], int] = {}
    chosen = []
    for item in items:
        key = (item.set_name, item.principle, item.label)
        if item.principle in keep and (per_label is None or taken.get(key, 0) < per_label):
            taken[key] = taken.get(key, 0) + 1
            chosen.append(item)
    return chosen, skipped


async def judge_items(critic: Critic, items: Sequence[LabelledItem], principles: Sequence[PrincipleLike],
                      on_done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """One verdict row per item, in item order; an item whose call failed for good gets ``error``. A
    ``targeted`` critic is shown the item's principle alone (recall: flagged when it is broken; false
    flags: flagged on its near misses)."""
    by_id = {p.id: p for p in principles}

    async def one(item: LabelledItem) -> dict[str, Any]:
        scope = [by_id[item.principle]] if critic.scope == "targeted" else principles
        messages = item.messages()
        row: dict[str, Any] = {"item": item.id, "principle": item.principle, "label": item.label,
                               "set": item.set_name, "turn": f"{item.turn.speaker}: {item.turn.text}"}
        if item.also:
            row["also"] = list(item.also)
        try:
            verdict = await critic.agent.judge(critic.seed, item.id, messages, len(messages) - 1, scope,
                                               order_key=conversation_key(messages))
        except Exception as exc:  # recorded against this item; the others go on
            row.update(flagged=None, violated=[], error=f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])
        else:
            row.update(flagged=any(pid in verdict.violated for pid in item.broken), violated=verdict.violated,
                       reasoning=verdict.reasoning)
        if on_done is not None:
            on_done()
        return row

    return list(await asyncio.gather(*(one(item) for item in items)))


def conversation_key(messages: Sequence[dict[str, Any]]) -> str:
    """The order of the principles shown for an item is drawn from its conversation alone (as a run draws
    it from what a briefed dialogue and its control share): nothing of its label, principle or id."""
    from sparring.agents.domain import stable_id

    return stable_id("conversation", [(m["name"], m["content"]) for m in messages])


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _figures_of(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    judged = [r for r in rows if r.get("error") is None]
    bad = [r for r in judged if r["label"] == "violates"]
    near = [r for r in judged if r["label"] == "near-miss"]
    caught = sum(1 for r in bad if r["flagged"])
    false_flags = sum(1 for r in near if r["flagged"])
    near_any = sum(1 for r in near if r["violated"])
    return {"violating": len(bad), "caught": caught, "near_misses": len(near), "false_flags": false_flags,
            "near_misses_flagged_any": near_any, "errors": len(rows) - len(judged),
            "recall": _ratio(caught, len(bad)), "precision": _ratio(caught, caught + false_flags),
            "false_flag_rate": _ratio(false_flags, len(near)), "near_miss_any_rate": _ratio(near_any, len(near)),
            "recall_ci": rate(caught, len(bad)), "precision_ci": rate(caught, caught + false_flags),
            "false_flag_rate_ci": rate(false_flags, len(near)), "near_miss_any_rate_ci": rate(near_any, len(near))}


def figures(rows: Sequence[dict[str, Any]], categories: dict[str, str]) -> dict[str, Any]:
    """Precision and recall of one critic's verdict rows: ``overall``, per ``categories`` and per ``principles``."""
    by_principle: dict[str, list[dict[str, Any]]] = {}
    by_category: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_principle.setdefault(row["principle"], []).append(row)
        by_category.setdefault(categories.get(row["principle"], "(none)"), []).append(row)
    by_set: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_set.setdefault(row.get("set") or "(items)", []).append(row)
    return {"overall": _figures_of(rows),
            "categories": {c: _figures_of(r) for c, r in by_category.items()},
            "principles": {p: _figures_of(r) for p, r in by_principle.items()},
            "sets": {name: _figures_of(r) for name, r in by_set.items()}}


GAP_FIGURES = ("recall", "precision", "false_flag_rate", "near_miss_any_rate")


def set_gap(sets: dict[str, dict[str, Any]], first: str = "rubric", second: str = "transfer") -> dict[str, Any] | None:
    """``second`` minus ``first`` for each of ``GAP_FIGURES`` (a negative recall gap: the critic catches
    less on turns unlike its guidance's examples); None unless both sets were judged."""
    if first not in sets or second not in sets:
        return None
    a, b = sets[first], sets[second]
    return {"of": second, "minus": first,
            **{k: None if a[k] is None or b[k] is None else round(b[k] - a[k], 4) for k in GAP_FIGURES}}


def cohen_kappa(both: int, first_only: int, second_only: int, neither: int) -> float | None:
    """Cohen's kappa of two raters' yes/no decisions; None when chance agreement is total (both constant)."""
    return kappa_interval(both, first_only, second_only, neither)["kappa"]


def _agreement_of(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    both = sum(1 for a, b in pairs if a and b)
    first_only = sum(1 for a, b in pairs if a and not b)
    second_only = sum(1 for a, b in pairs if b and not a)
    neither = len(pairs) - both - first_only - second_only
    return {"items": len(pairs), "both_flag": both, "first_only": first_only, "second_only": second_only,
            "neither": neither, "raw": _ratio(both + neither, len(pairs)),
            "kappa": cohen_kappa(both, first_only, second_only, neither),
            "raw_ci": rate(both + neither, len(pairs)),
            "kappa_ci": kappa_interval(both, first_only, second_only, neither)}


def agreement(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]],
              categories: dict[str, str]) -> dict[str, Any]:
    """How often two critics made the same flag decision on the items both judged (overall, per category
    and per principle)."""
    other = {r["item"]: r for r in second}
    pairs: list[tuple[str, bool, bool]] = []
    for row in first:
        twin = other.get(row["item"])
        if twin is not None and row.get("error") is None and twin.get("error") is None:
            pairs.append((row["principle"], bool(row["flagged"]), bool(twin["flagged"])))

    def group(key: Callable[[str], str]) -> dict[str, Any]:
        out: dict[str, list[tuple[bool, bool]]] = {}
        for pid, a, b in pairs:
            out.setdefault(key(pid), []).append((a, b))
        return {k: _agreement_of(v) for k, v in out.items()}

    return {"overall": _agreement_of([(a, b) for _, a, b in pairs]),
            "categories": group(lambda pid: categories.get(pid, "(none)")), "principles": group(lambda pid: pid)}


async def calibrate(critics: Sequence[Critic], items: Sequence[LabelledItem], principles: Sequence[PrincipleLike],
                    *, on_done: Callable[[int], None] | None = None, sources: Sequence[str] = ("built-in",),
                    skipped: Sequence[str] = ()) -> dict[str, Any]:
    """Judge every item with every critic (concurrently; each backend bounds its own requests) and
    return the calibration document: scope, figures per critic, their agreement when there are two."""
    categories = {p.id: p.category for p in principles}

    async def run(index: int, critic: Critic) -> dict[str, Any]:
        t0 = time.perf_counter()
        with metered() as meter:
            rows = await judge_items(critic, items, principles,
                                     None if on_done is None else lambda: on_done(index))
            verifier = await _verifier_results(critic, principles)
        return {"name": critic.name, "config": critic.source, "backend": critic.agent.backend.describe(),
                "critic_scope": critic.scope, "verifier": verifier,
                "sampling": critic.agent.params.model_dump(exclude_none=True),
                "wall_s": round(time.perf_counter() - t0, 2),
                "usage": {"prompt_tokens": meter.prompt_tokens, "completion_tokens": meter.completion_tokens,
                          "calls": meter.calls},
                "figures": (f := figures(rows, categories)), "gap": set_gap(f["sets"]), "verdicts": rows}

    results = list(await asyncio.gather(*(run(i, c) for i, c in enumerate(critics))))
    return {
        "format": CALIBRATION_FORMAT, "created_at": time.time(),
        "scope": {"judged_against": [p.id for p in principles],
                  "principles": [p.id for p in principles if p.id in {i.principle for i in items}],
                  "categories": {p.id: p.category for p in principles},
            "flag": "the item's principle (or, for a turn that breaks two, either) is among the critic's "
                    "violations"},
        "items": {"sources": list(sources), "judged": len(items),
                  "sets": {name: sum(1 for i in items if i.set_name == name)
                           for name in dict.fromkeys(i.set_name for i in items)},
                  "by_label": {label: sum(1 for i in items if i.label == label) for label in LABELS},
                  "principles_without_items_in_set": list(skipped)},
        "critics": results,
        "agreement": agreement(results[0]["verdicts"], results[1]["verdicts"], categories)
        if len(results) == 2 else None,
    }


async def _verifier_results(critic: Critic, principles: Sequence[PrincipleLike]) -> dict[str, Any]:
    from sparring.principles.revision_items import builtin_revision_items

    from .verifier_calibration import judge_revisions, verifier_figures

    if critic.verifier is None:
        return {"skipped": critic.verifier_skipped}
    rows = await judge_revisions(critic.verifier, critic.seed, builtin_revision_items(), {p.id: p for p in principles})
    if not rows:
        return {"skipped": "no labelled revision is about a principle of the config's set"}
    return {"figures": verifier_figures(rows), "verdicts": rows}


async def calibrate_specs(specs: Sequence[CriticSpec], items: Sequence[LabelledItem],
                          principles: Sequence[PrincipleLike], **kwargs: Any) -> dict[str, Any]:
    """``calibrate`` on backends made from ``specs`` as a run makes them (``RoleBackends.create`` for the
    ``critic`` role), started here, closed here; two critics with the same backend config share one
    backend (one engine, one connection pool). ``probe_specs`` first, as a run probes."""
    from sparring.graphs.runtime.role_backends import RoleBackends

    backends: dict[str, Backend] = {}
    critics = []
    try:
        for spec in specs:
            key = spec.backend.model_dump_json()
            if key not in backends:
                backends[key] = RoleBackends.create(spec.config, roles=("critic",))["critic"]
                await backends[key].start()
            critics.append(spec.critic(backends[key]))
        return await calibrate(critics, items, principles, **kwargs)
    finally:
        for backend in backends.values():
            await backend.aclose()


async def probe_specs(specs: Sequence[CriticSpec]) -> None:
    """Probe each critic's backend as a run probes its backends: ``BackendUnavailable`` (exit 2) for one
    that cannot work, in seconds, before any turn is judged."""
    from sparring.graphs.runtime.role_backends import probe_roles

    for spec in specs:
        await probe_roles(spec.config, ("critic",))


def write_calibration(document: dict[str, Any], out: Path) -> Path:
    """``out/calibration.json``, swapped in atomically (the directory is created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / CALIBRATION
    replace_json(path, document)
    return path


def read_calibration(run_dir: Path) -> dict[str, Any] | None:
    """The calibration document of ``run_dir``, None when there is none (or it cannot be read)."""
    path = Path(run_dir) / CALIBRATION
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == CALIBRATION_FORMAT else None
