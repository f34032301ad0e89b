"""Engine saturation: does the pipeline keep the embedded engine as busy as a plain batch would?

    flock /tmp/sparring-engine.lock python benchmarks/engine_saturation.py [--dialogues 32] [--concurrency 32]

One embedded engine (SmolLM2-135M on vLLM, in-process) serves two measurements:

1. pipeline: ``--dialogues`` assistant-mode dialogues (plan, turns, critique, revise,
   verify; JSON-schema constrained where the agents ask for it) at ``--concurrency``
   dialogues in flight. Tokens/s = tokens of the calls that finished inside a window
   (``--warm-up`` s after the start, ``--window`` s long), so start-up and the tail of
   the last dialogues are left out; the run is then stopped.
2. raw engine: ``--concurrency`` requests at once straight into vLLM's engine, prompts
   of the pipeline's mean prompt length, ``ignore_eos`` with the pipeline's mean
   completion length, ``--rounds`` times over: the engine's own ceiling for that shape
   of work.

Prints both tokens/s and the ratio (pipeline / raw). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from agents.backends import BackendConfig, create_backend  # noqa: E402
from graphs.pipeline import execute  # noqa: E402
from graphs.setup import plan_run  # noqa: E402

WORDS = ("the customer asked about savings accounts interest rates and how long the money "
         "would be locked before it could be withdrawn without a penalty ").split()


def write_config(folder: Path, dialogues: int, concurrency: int, max_turns: int) -> Path:
    scenarios = [{"topic": f"topic {i}", "subtopic": s, "personas": [f"{n}: a worried customer", "an adviser: "
                  "knows the subject well"], "goal": "get clear, practical advice"}
                 for i, (s, n) in enumerate([("choosing a savings account", "Priya"), ("rebooking a flight", "Tomasz"),
                                             ("a noisy neighbour", "Amara"), ("learning to cook", "Jonas")])]
    config = {
        "name": "saturation", "seed": 3, "concurrency": concurrency,
        "backend": {"kind": "embedded", "max_in_flight": concurrency},
        "principles": {"sets": ["quickstart"]},
        "dialogue": {"mode": "assistant", "max_turns": max_turns},
        "jobs": {"dialogues_per_scenario": -(-dialogues // len(scenarios)), "max_dialogues": dialogues},
        # The quickstart's budgets: a plan needs ~500 tokens (a smaller budget truncates it and re-asks).
        "sampling": {"planner": {"temperature": 0.7, "max_tokens": 700},
                     "persona": {"temperature": 0.8, "max_tokens": 80, "repetition_penalty": 1.15},
                     "critic": {"temperature": 0.0, "max_tokens": 400},
                     "reviser": {"temperature": 0.4, "max_tokens": 200, "repetition_penalty": 1.15},
                     "verifier": {"temperature": 0.0, "max_tokens": 400}},
        "scenarios": scenarios,
    }
    path = folder / "saturation.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def raw_engine(backend, concurrency: int, rounds: int, prompt_tokens: int, max_tokens: int,
                     schema: dict | None = None) -> tuple[int, float]:
    """(generated tokens, wall s): ``concurrency`` workers, ``rounds`` requests each, straight into vLLM.
    With ``schema``: constrained to it (and ending where the JSON ends, so no ``ignore_eos``)."""
    from vllm import SamplingParams as VSamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    engine, tokenizer = backend._engine, backend._tokenizer  # the benchmark peeks past the adapter on purpose
    tokens = 0

    async def worker(w: int) -> None:
        nonlocal tokens
        for r in range(rounds):
            text = " ".join(WORDS[(w + r + k) % len(WORDS)] for k in range(prompt_tokens))
            ids = tokenizer(text)["input_ids"][:prompt_tokens]
            constrained = StructuredOutputsParams(json=schema) if schema is not None else None
            sp = VSamplingParams(temperature=0.8, max_tokens=max_tokens, ignore_eos=schema is None,
                                 seed=w * rounds + r, output_kind=RequestOutputKind.FINAL_ONLY,
                                 structured_outputs=constrained)
            final = None
            async for out in engine.generate({"prompt_token_ids": ids}, sp, request_id=uuid.uuid4().hex):
                final = out
            generated = len(final.outputs[0].token_ids) if final is not None else 0
            tokens += generated

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return tokens, time.perf_counter() - t0


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sparring-saturation-") as tmp:
        config = write_config(Path(tmp), args.dialogues, args.concurrency, args.max_turns)
        request = plan_run(config, out=Path(tmp) / "run")
        backend = create_backend(BackendConfig(kind="embedded", max_in_flight=args.concurrency))
        t0 = time.perf_counter()
        await backend.start()
        print(f"engine start: {time.perf_counter() - t0:.1f} s", flush=True)
        try:
            if args.raw_only:
                await raw_only(backend, args)
                return
            calls: list[tuple[float, int, int]] = []  # (finished at, prompt tokens, generated tokens)
            generate = backend._generate  # the benchmark peeks past the adapter on purpose

            async def counted(*a, **k):
                raw = await generate(*a, **k)
                calls.append((time.perf_counter(), raw.usage.prompt_tokens, raw.usage.completion_tokens))
                return raw

            backend._generate = counted
            t0 = time.perf_counter()
            run = asyncio.ensure_future(execute(request, backend=backend))
            await asyncio.sleep(args.warm_up + args.window)
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            backend._generate = generate
            inside = [c for c in calls if t0 + args.warm_up <= c[0] < t0 + args.warm_up + args.window]
            generated = sum(c[2] for c in inside)
            pipe_tps = generated / args.window
            mean_prompt = sum(c[1] for c in inside) // max(len(inside), 1)
            mean_completion = max(generated // max(len(inside), 1), 1)
            print(f"pipeline: {len(inside)} calls finished in the {args.window:.0f} s window, {generated} generated "
                  f"tokens = {pipe_tps:.1f} tok/s (mean call: {mean_prompt} prompt, {mean_completion} generated "
                  f"tokens)", flush=True)
            tokens, raw_wall = await raw_engine(backend, args.concurrency, args.rounds, mean_prompt, mean_completion)
            raw_tps = tokens / raw_wall
            print(f"raw engine: {args.concurrency} x {args.rounds} requests of {mean_prompt} prompt tokens, "
                  f"{mean_completion} generated each: {tokens} tokens in {raw_wall:.1f} s = {raw_tps:.1f} tok/s",
                  flush=True)
            print(json.dumps({"pipeline_tok_s": round(pipe_tps, 1), "raw_tok_s": round(raw_tps, 1),
                              "saturation": round(pipe_tps / raw_tps, 3)}), flush=True)
        finally:
            await backend.aclose()


async def raw_only(backend, args: argparse.Namespace) -> None:
    """The raw engine with and without a JSON-schema constraint (the critic's verdict schema):
    what constrained decoding costs the engine by itself."""
    from agents.backends._retry import json_schema_of
    from agents.critic import CritiqueOutput

    schema = json_schema_of(CritiqueOutput)
    for label, constraint in (("unconstrained", None), ("json-schema", schema)):
        tokens, wall = await raw_engine(backend, args.concurrency, args.rounds, args.prompt_tokens,
                                        args.max_tokens, constraint)
        print(f"raw engine, {label}: {args.concurrency} x {args.rounds} requests of {args.prompt_tokens} prompt "
              f"tokens: {tokens} tokens in {wall:.1f} s = {tokens / wall:.1f} tok/s", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=96)
    parser.add_argument("--warm-up", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--raw-only", action="store_true",
                        help="only the raw engine, unconstrained and JSON-schema constrained")
    parser.add_argument("--prompt-tokens", type=int, default=550, help="with --raw-only")
    parser.add_argument("--max-tokens", type=int, default=170, help="with --raw-only")
    return parser.parse_args()


if __name__ == "__main__":  # the engine spawns processes: this guard is required
    asyncio.run(main(parse_args()))
