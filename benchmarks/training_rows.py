"""Training rows against the data rules, on realistic scripted replies: the share of rows that break each
rule (it must be 0) and how many rows each rule left out.

    python benchmarks/training_rows.py [--dialogues 30] [--max-turns 8] [--seed 7]

A loopback OpenAI-compatible server (cutting replies at ``max_tokens``, a character a token) answers the
whole ``sparring run`` path, in assistant and in peers mode. Persona turns are drawn (seeded by the request)
from plain answers, turns that state a guess as a fact (the critic flags them), needless refusals, rambles
longer than the persona's budget (cut), early goodbyes with the end marker, and turns where the speaker goes
on to write the other side's lines. The reviser sometimes turns a flagged answer into a refusal; the critic
flags refusals when ``helpfulness.no-needless-refusal`` is in scope. Then every row of sft.jsonl and
preferences.jsonl is checked, against dialogues.jsonl and the trace of the calls (traces.jsonl):

- whole: no target (SFT assistant turn, chosen, rejected) is a turn cut at the token limit, no stored turn
  follows one that ended the conversation, no row holds a line starting with the other speaker's label;
- chosen: no chosen is a refusal the verifier would flag, or was left unverified;
- hidden: each SFT target and rejected was written by a call shown exactly the row before it (the rejected:
  plus the violation instruction after the system message);
- happened: each pair's prompt is its dialogue (or branch) as spoken before the turn (with a revision the
  conversation went on from, ``answered``, in its turn's place).

The rows each rule left out come from the manifest's counts (``dropped_pairs``, ``sft_cut_by_reason``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

import yaml  # noqa: E402

import sparring  # noqa: E402
from benchmarks.loopback import FakeOpenAIServer  # noqa: E402
from benchmarks.loopback.canned import agent_reply  # noqa: E402
from sparring.agents.domain import DialogueJob  # noqa: E402
from sparring.agents.persona import cut_at_other_speaker, other_labels  # noqa: E402
from sparring.graphs.assemble import job_of  # noqa: E402
from sparring.graphs.records import DialogueRecord  # noqa: E402
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402

REFUSAL = "I'm sorry, but I can't help with that."
GUESS = "It is definitely 40 euros, the law says so."
PLAIN = ["That makes sense. I would check the label on the box first.",
         "Could you tell me a bit more about what happened?", "Right, and after that I would call them back."]
RAMBLE = "Let me explain this properly, from the start, because it matters: " + "one more detail, " * 20
GOODBYE = "Thanks, that is all I needed. Bye! <done>"
RULES = ("whole", "chosen", "hidden", "happened")


def persona_reply(body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body["messages"]).encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big") ^ int(body.get("seed") or 0))
    kind = rng.choices(["plain", "guess", "refusal", "ramble", "goodbye", "both"], [40, 20, 10, 12, 8, 10])[0]
    if kind == "both":
        return f"{rng.choice(PLAIN)}\nPriya: thanks, that helps!\nAssistant: you're welcome.\nSam: glad to help."
    return {"plain": rng.choice(PLAIN), "guess": GUESS, "refusal": REFUSAL, "ramble": RAMBLE,
            "goodbye": GOODBYE}[kind]


def responder(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if schema is None:
        return persona_reply(body)
    title = schema.get("title")
    if title == "RevisionOutput":
        asked = json.dumps(body["messages"])
        refuse = int(hashlib.sha256(asked.encode()).hexdigest(), 16) % 4 == 0
        return json.dumps({"revision": REFUSAL if refuse else "It may be around 40 euros; the price list says."})
    if title == "CritiqueOutput":
        judged = next(m["content"] for m in reversed(body["messages"]) if '"""' in m["content"]).split('"""')[1]
        ids = schema["$defs"]["ViolationFinding"]["properties"]["principle_id"].get("enum", [])
        found = [p for p, hit in (("helpfulness.no-needless-refusal", "can't help" in judged),
                                  ("honesty.no-fabrication", "definitely" in judged)) if hit and p in ids]
        return json.dumps({"reasoning": "checked", "violations": [
            {"principle_id": p, "evidence": judged.strip()[:40] or "x", "severity": "moderate"} for p in found]})
    return agent_reply(body)


def traced(run_dir: Path) -> tuple[dict[tuple[str, str, int], list[tuple[Any, str]]], dict[str, int]]:
    """(trace, agent, turn) -> [(input messages, output text)], and per trace the first turn that ended it."""
    spans = list(iter_spans(run_dir))
    agents = {s["span_id"]: s for s in spans if s["name"] == "invoke_agent"}
    calls: dict[tuple[str, str, int], list[tuple[Any, str]]] = {}
    ended: dict[str, int] = {}
    for s in spans:
        a = s["attributes"]
        if s["name"] == "invoke_agent" and a.get("app.done_signal"):
            ended[s["trace_id"]] = min(ended.get(s["trace_id"], 10**6), a["app.turn_index"])
        parent = agents.get(s["parent_id"])
        if s["name"] == "chat" and parent is not None and "app.turn_index" in parent["attributes"]:
            key = (s["trace_id"], parent["attributes"]["gen_ai.agent.name"], parent["attributes"]["app.turn_index"])
            calls.setdefault(key, []).append((a.get("gen_ai.input.messages"),
                                              (a.get("gen_ai.output.messages") or [{}])[0].get("content", "")))
    return calls, ended


def body(messages: list[dict[str, str]]) -> list[str]:
    texts = [m["content"] for m in messages if m["role"] != "system"]
    return texts[1:] if texts and texts[0].startswith("(You") else texts


def has_other_label(job: DialogueJob, side: Any, texts: list[str]) -> bool:
    return any(cut_at_other_speaker(t, other_labels(job, side))[1] for t in texts)


def check(run_dir: Path) -> tuple[Counter[str], int, dict[str, Any]]:
    """(rows breaking each rule, rows checked, the manifest's counts)."""
    records = {}
    for line in (run_dir / "dialogues.jsonl").read_text().splitlines():
        r = DialogueRecord.model_validate_json(line)
        records[r.id] = r
    calls, ended = traced(run_dir)
    broken: Counter[str] = Counter()
    rows = 0
    for line in (run_dir / "sft.jsonl").read_text().splitlines():
        row = json.loads(line)
        rec = records[row["dialogue_id"]]
        job = job_of(rec)
        side = job.judged_side
        rows += 1
        turns = rec.branch.messages if row["from_branch"] and rec.branch else rec.messages
        cut = {m.content for m in turns if m.finish_reason == "length"}
        fails = set()
        if rec.trace_id in ended and ended[rec.trace_id] < len(rec.messages) - 1:
            fails.add("whole")
        for k, m in enumerate(row["messages"]):
            if m["role"] != "assistant":
                continue
            if m["content"] in cut or has_other_label(job, side, [m["content"]]):
                fails.add("whole")
            turn = len(body(row["messages"][:k]))
            if turn not in row["revised_turns"] and not any(
                    seen == row["messages"][:k] and out.startswith(m["content"])
                    for seen, out in calls.get((rec.trace_id, f"persona_{side}", turn), [])):
                fails.add("hidden")
            if m["content"] == REFUSAL:
                fails.add("chosen")
        broken.update(fails)
    for line in (run_dir / "preferences.jsonl").read_text().splitlines():
        pair = json.loads(line)
        rec = records[pair["dialogue_id"]]
        job = job_of(rec)
        side = job.judged_side
        rows += 1
        turns = rec.branch.messages if pair["from_branch"] and rec.branch else rec.messages
        t = pair["turn_index"]
        rejected, chosen = pair["rejected"][0]["content"], pair["chosen"][0]["content"]
        fails = set()
        if turns[t].finish_reason == "length" or has_other_label(job, side, [rejected, chosen]):
            fails.add("whole")
        if not pair["verified"] or chosen == REFUSAL:
            fails.add("chosen")
        made = [seen for seen, out in calls.get((rec.trace_id, f"persona_{side}", t), [])
                if out.strip() == rejected.strip() or rejected in out]
        if not any(seen[1:] == pair["prompt"][1:] and seen[0]["content"].startswith(pair["prompt"][0]["content"])
                   for seen in made):
            fails.add("hidden")
        answered = {} if pair["from_branch"] else {r.turn_index: r.revised for r in rec.revisions if r.answered}
        if body(pair["prompt"]) != [answered.get(i, m.content) for i, m in enumerate(turns[:t])]:
            fails.add("happened")
        broken.update(fails)
    counts = json.loads((run_dir / "manifest.json").read_text())["counts"]
    return broken, rows, counts


def run(mode: str, args: argparse.Namespace, folder: Path) -> tuple[Counter[str], int, dict[str, Any]]:
    with FakeOpenAIServer(responder=responder, cut_at_max_tokens=True) as server:
        config = {
            "name": f"rows-{mode}", "seed": args.seed, "concurrency": 8,
            "backend": {"kind": "openai_compat", "base_url": server.base_url, "model": "fake-model",
                        "retry": {"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.02, "timeout_s": 10}},
            "principles": {"sets": ["quickstart", "helpfulness"]},
            "sampling": {"persona": {"max_tokens": 160}},
            "dialogue": {"mode": mode, "max_turns": args.max_turns, "min_turns": 4,
                         "branch_turns": args.branch_turns},
            "jobs": {"dialogues_per_scenario": args.dialogues},
            "report": {"stats": False},
            "scenarios": [{"topic": "a parcel", "personas": ["Priya: a nurse", "Sam: an adviser"]}],
        }
        path = folder / f"{mode}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        asyncio.run(execute(request_from_config(path, out=folder / mode)))
    return check(folder / mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=30)
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--branch-turns", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"code: {Path(sparring.__file__).resolve().parents[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("assistant", "peers"):
            broken, rows, counts = run(mode, args, Path(tmp))
            shares = ", ".join(f"{rule} {broken[rule] / rows if rows else 0.0:.3f}" for rule in RULES)
            print(f"{mode}: {counts.get('dialogues')} dialogues, {rows} training rows "
                  f"({counts.get('pairs')} pairs); share breaking each rule: {shares}")
            dropped = {k: n for k, n in (counts.get("dropped_pairs") or {}).items() if n}
            print(f"  pairs left out by reason: {dropped or 'none'}")
            print(f"  SFT rows: {counts.get('sft_rows')}, cut or dropped by reason: "
                  f"{ {k: n for k, n in (counts.get('sft_cut_by_reason') or {}).items() if n} or 'none'}")


if __name__ == "__main__":
    main()
