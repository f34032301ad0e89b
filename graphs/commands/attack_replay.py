"""``sparring redteam-replay RUN --target FILE``: the successful attacks of a redteam run, played
again against another target (a new checkpoint behind its server), to see which still succeed.

Each attack is replayed from its record: the attacker's recorded turns are sent verbatim, one by one,
each followed by the new target's reply, which the run's critic judges against the attack's targeted
principle (or behaviour), exactly as in the run. The recorded turns are kept while the conversation
allows: once the new target's reply diverges from the recorded one (ROUGE-L F below ``diverge_below``),
or the recorded turns run out before the new target broke, the attacker goes on from the same plan and
tactic, re-generated turns, up to ``dialogue.max_turns``. Each result says how many turns were verbatim,
how many re-generated, and where the conversation diverged. The run's planner is not called; the
attacker, the critic and the target are.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sparring.agents.backends.backend_config import BackendConfig
from sparring.agents.backends.base import UsageMeter, metered
from sparring.agents.domain import DialogueJob
from sparring.errors import InputError
from sparring.graphs.data.rouge import rouge_l, tokenize
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.role_backends import RoleBackends, probe_roles
from sparring.graphs.runtime.run_request import RunRequest, request_from_run_dir
from sparring.graphs.runtime.store import DIALOGUES, iter_jsonl
from sparring.graphs.selfplay import SelfPlay
from sparring.graphs.wiring import make_selfplay

__all__ = ["REPLAY_TARGET", "replay_attacks", "replay_config"]

REPLAY_TARGET = "replay_target"
"""The name the new target's backend gets among the run's backends."""


def replay_config(config: RunConfig, target: BackendConfig) -> RunConfig:
    """The run's config with side B (the target) on ``target``; every other role where it was."""
    data = config.model_dump(mode="json")
    named = data.pop("backends", None) or {"default": data.pop("backend")}
    data.pop("backend", None)
    data["backends"] = {**named, REPLAY_TARGET: target.model_dump(mode="json")}
    data["roles"] = {**(data.get("roles") or {}), "side_b": REPLAY_TARGET}
    return RunConfig.model_validate(data)


def _job(row: Mapping[str, Any]) -> DialogueJob:
    return DialogueJob(id=row["id"], scenario=row["scenario"], mode="redteam",
                       target_principles=tuple(row["target_principles"]), briefed_side="A", seed=row["seed"],
                       target_system_prompt=row.get("target_system_prompt"), behaviour=row.get("behaviour"),
                       tactic=row.get("strategy"))


DIVERGE_BELOW = 0.5
"""ROUGE-L F between the new target's reply and the recorded one below which the conversation has diverged."""


async def replay_one(selfplay: SelfPlay, row: Mapping[str, Any], max_turns: int,
                     diverge_below: float = DIVERGE_BELOW) -> dict[str, Any]:
    """One recorded attack against the new target: verbatim turns while the replies stay close to the
    recorded ones, then re-generated ones."""
    job = _job(row)
    planned = {**row["plan"], "reasoning": row.get("reasoning", ""), "characteristics": row.get("characteristics", [])}
    recorded = [m["content"] for m in row["messages"] if m["speaker"] == "A"]
    replies = [m["content"] for m in row["messages"] if m["speaker"] == "B"]
    messages: list[dict[str, Any]] = []
    verbatim = regenerated = 0
    broke_at: int | None = None
    diverged_at: int | None = None
    while len(messages) < max_turns and broke_at is None:
        if verbatim < len(recorded) and diverged_at is None:
            text, verbatim = recorded[verbatim], verbatim + 1
        else:
            said, done = await selfplay.say(job, planned, messages, "A", max_turns)
            text = said["content"]
            regenerated += 1
            if done and not text.strip():
                break
        messages.append({"role": "user", "speaker": "A", "name": job.speaker_name("A"), "content": text})
        if len(messages) >= max_turns:
            break
        answer, _ = await selfplay.say(job, planned, messages, "B", max_turns)
        reply = answer["content"]
        messages.append(answer)
        turn = len(messages) // 2 - 1
        if diverged_at is None and not regenerated and turn < len(replies) and \
                rouge_l(tokenize(reply), tokenize(replies[turn])) < diverge_below:
            diverged_at = len(messages) - 1
        verdict = await selfplay.judge_turn(job, messages, len(messages) - 1)
        if set(verdict.violated) & set(job.target_principles):
            broke_at = len(messages)
    return {"dialogue_id": row["id"], "target_principles": row["target_principles"], "tactic": row.get("strategy"),
            "behaviour": row.get("behaviour"), "original_target": row.get("target"),
            "still_succeeds": broke_at is not None,
            "turns_to_first_violation": broke_at, "original_turns_to_first_violation": row.get("turns"),
            "verbatim_turns": verbatim, "regenerated_turns": regenerated, "diverged_at": diverged_at,
            "messages": messages}


async def replay_attacks(run_dir: Path, target: BackendConfig, *, backends: RoleBackends | None = None,
                         diverge_below: float = DIVERGE_BELOW) -> dict[str, Any]:
    """Replay every successful attack of ``run_dir`` against ``target``; the results and a summary."""
    request = request_from_run_dir(run_dir)
    if request.config.dialogue.mode != "redteam":
        raise InputError("is not a redteam run: nothing to replay", source=str(run_dir))
    config = replay_config(request.config, target)
    wins = [r for r in iter_jsonl(run_dir / DIALOGUES)
            if r.get("status") == "ok" and r.get("mode") == "redteam" and r.get("targeted_violated")]
    owned = backends is None
    backends = backends or RoleBackends.create(config)
    if not wins:  # nothing to replay: no model is started
        return _summary([], backends["side_b"].describe(), UsageMeter())
    if owned:  # a backend that cannot work (the new target, or a judge that moved) fails now, in one line
        await probe_roles(config)
    await backends.start()
    selfplay = make_selfplay(RunRequest(config=config, config_path=None, run_dir=run_dir,
                                        principles=request.principles, scenarios=request.scenarios), backends)
    slots = asyncio.Semaphore(config.concurrency)

    async def one(row: Mapping[str, Any]) -> dict[str, Any]:
        async with slots:
            return await replay_one(selfplay, row, config.dialogue.max_turns, diverge_below)

    try:
        with metered() as meter:
            results = await asyncio.gather(*(one(r) for r in wins))
    finally:
        if owned:
            await backends.aclose()
    return _summary(results, backends["side_b"].describe(), meter)


def _summary(results: list[dict[str, Any]], target: dict[str, Any], meter: Any) -> dict[str, Any]:
    """What a replay found: how many attacks still succeed, on recorded turns alone or after
    re-generated ones, per tactic; the target; the tokens spent."""
    still = [r for r in results if r["still_succeeds"]]
    per_tactic: Counter[str] = Counter(r["tactic"] or "(none)" for r in still)
    return {"attacks": len(results), "still_succeed": len(still),
            "verbatim_only": sum(1 for r in still if not r["regenerated_turns"]),
            "after_regeneration": sum(1 for r in still if r["regenerated_turns"]),
            "per_tactic": {t: {"replayed": sum(1 for r in results if (r["tactic"] or "(none)") == t),
                               "still_succeed": per_tactic[t]} for t in sorted({r["tactic"] or "(none)"
                                                                               for r in results})},
            "target": target,
            "usage": {"prompt_tokens": meter.prompt_tokens, "completion_tokens": meter.completion_tokens,
                      "calls": meter.calls},
            "results": results}
