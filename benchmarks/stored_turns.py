"""Stored turns against what the model said: the share of turns a run stores differently from the
reply the model gave (minus only a trailing end marker). It must be 0.

    python benchmarks/stored_turns.py [--dialogues 40] [--max-turns 8]

A loopback OpenAI-compatible server answers every persona turn with a sentence drawn (seeded)
from texts that trip a careless done-signal match: "done" in any casing, "DONE deal", a marker in
the middle of a sentence, a marker glued to the last word, a marker at the end, a speaker label,
quotes. The whole ``sparring run`` path runs against it, in assistant and in peers mode; then every
persona ``chat`` span of traces.jsonl (what the model said) is matched with the turn the dialogue
record stores at that index, and the two are compared word for word (a trailing ``<done>`` aside).
Run it with another checkout's Python to measure that code instead (the figures name it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

import yaml  # noqa: E402

import sparring  # noqa: E402
from benchmarks.loopback import FakeOpenAIServer  # noqa: E402
from benchmarks.loopback.canned import agent_reply  # noqa: E402
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402

MARKER = "<done>"
OPENINGS = ["Have you done the blood test yet?", "DONE deal, I will call them tomorrow.", "Done.",
            "I'm not done with the forms, sorry.", "Is the repair done or not?", "We are done here? I hope not.",
            "She said <done> in her note, strange.", "\"Quoted words,\" she said.", "Priya: I think so.",
            "Well done, that really helps", "[done] is what the app shows.", "Nearly done <done>",
            "Thanks, that's all I needed. <done>", "ok<done>", "Sounds good!  <done>  "]


def persona_reply(rng: random.Random) -> str:
    return " ".join(rng.sample(OPENINGS, 2))


def responder(seed: int) -> Any:
    rng = random.Random(seed)

    def reply(body: dict[str, Any]) -> str:
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return agent_reply(body)
        return persona_reply(rng)

    return reply


def words_said(text: str) -> list[str]:
    """The words of a reply, a trailing end marker aside."""
    stripped = text.rstrip()
    if stripped.endswith(MARKER):
        stripped = stripped[: -len(MARKER)]
    return stripped.split()


def compare(run_dir: Path) -> tuple[int, int, list[str]]:
    """(persona turns compared, turns stored differently, examples of differences)."""
    stored: dict[str, list[str]] = {}
    for line in (run_dir / "dialogues.jsonl").read_text().splitlines():
        row = json.loads(line)
        stored[row["trace_id"]] = [m["content"] for m in row["messages"]]
    spoken: dict[tuple[str, int], str] = {}
    for span in iter_spans(run_dir):
        a = span.get("attributes") or {}
        if span["name"] == "chat" and str(a.get("gen_ai.agent.name", "")).startswith("persona_"):
            out = a.get("gen_ai.output.messages") or []
            if out:  # the last attempt of a turn is the one kept (a resample replaces an empty turn)
                spoken[(span["trace_id"], a["app.turn_index"])] = out[0]["content"]
    compared = differ = 0
    examples: list[str] = []
    for (trace, index), said in spoken.items():
        turns = stored.get(trace) or []
        if index >= len(turns):
            continue
        compared += 1
        if turns[index].split() != words_said(said):
            differ += 1
            if len(examples) < 3:
                examples.append(f"said {said!r}, stored {turns[index]!r}")
    return compared, differ, examples


def run(mode: str, args: argparse.Namespace, folder: Path) -> tuple[int, int, list[str]]:
    with FakeOpenAIServer(responder=responder(args.seed)) as server:
        config = {
            "name": f"stored-{mode}", "seed": args.seed, "concurrency": 8,
            "backend": {"kind": "openai_compat", "base_url": server.base_url, "model": "fake-model",
                        "retry": {"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.02, "timeout_s": 10}},
            "principles": {"sets": ["quickstart"]},
            "dialogue": {"mode": mode, "max_turns": args.max_turns, "min_turns": 2},
            "jobs": {"dialogues_per_scenario": args.dialogues},
            "report": {"stats": False},
            "scenarios": [{"topic": "health", "personas": ["Priya: a nurse", "an adviser: knows the rules"]}],
        }
        path = folder / f"{mode}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        asyncio.run(execute(request_from_config(path, out=folder / mode)))
    return compare(folder / mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=40)
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(f"code: {Path(sparring.__file__).resolve().parents[1]}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("assistant", "peers"):
            compared, differ, examples = run(mode, args, Path(tmp))
            share = differ / compared if compared else 0.0
            print(f"{mode}: {compared} persona turns, {differ} stored differently from what the model said "
                  f"(share {share:.3f})")
            for example in examples:
                print(f"  e.g. {example}")


if __name__ == "__main__":
    main()
