"""Engine saturation: does the pipeline keep the embedded engine as busy as a plain batch would?

    flock /tmp/sparring-engine.lock python benchmarks/engine_saturation.py [--dialogues 96] [--concurrency 32]

One embedded engine (SmolLM2-135M on vLLM, in-process) serves two measurements, both
counted by the engine itself (the token ids it streams back each step, so a long call
that straddles the window counts only the tokens made inside it):

1. pipeline: ``--dialogues`` assistant-mode dialogues (plan, turns, critique, revise,
   verify; JSON-schema constrained where the agents ask for it) at ``--concurrency``
   dialogues in flight, for ``--warm-up`` + ``--window`` s; generated tokens/s over the
   window. Every request the pipeline sends is recorded. The defaults are long on purpose: at
   32 dialogues on a 2-core CPU the first ~5 minutes are all plans (~500 tokens each,
   decoded side by side), so a shorter window measures plan decoding, not the mix of calls.
2. raw engine: the same requests (same prompt token ids, sampling parameters, seeds and
   JSON schemas, so the same prompt/completion length mix and constrained share), sent
   straight into vLLM's engine by ``--concurrency`` workers that each send the next
   request as soon as their last one ends: no dialogue waits on another call, and there
   is no orchestration. Measured over the same window (cut short if the recorded
   requests run out).

Prints both tokens/s, the ratio (pipeline / raw), and what the engine did (mean running
requests per step, prompt tokens computed and found in the prefix cache).
``--synthetic`` adds the older baseline: requests of the mean prompt and completion
length (``ignore_eos``), all alike, so they run in lockstep. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from sparring.agents.backends import BackendConfig, create_backend  # noqa: E402
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402

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


class EngineMeter:
    """What the engine did, step by step, read off the outputs it hands the front end.

    Wraps the front end's ``output_processor.process_outputs`` (the benchmark peeks into
    vLLM on purpose): every step, each scheduled request reports its new token ids, and a
    request's first output carries its prefill statistics (prompt tokens, tokens found in
    the prefix cache)."""

    def __init__(self, engine) -> None:
        self.steps: list[tuple[float, int, int, int, int]] = []  # (at, requests, tokens, prompt, cached)
        processor = engine.output_processor
        original = processor.process_outputs

        def counting(outputs, *args, **kwargs):
            tokens = prompt = cached = 0
            for out in outputs:
                tokens += len(out.new_token_ids)
                stats = out.prefill_stats
                if stats is not None:
                    prompt += stats.num_prompt_tokens
                    cached += stats.num_local_cached_tokens
            self.steps.append((time.perf_counter(), len(outputs), tokens, prompt, cached))
            return original(outputs, *args, **kwargs)

        processor.process_outputs = counting

    def summary(self, t0: float, t1: float) -> dict:
        inside = [s for s in self.steps if t0 <= s[0] < t1]
        steps = max(len(inside), 1)
        prompt = sum(s[3] for s in inside)
        return {"tok_s": round(sum(s[2] for s in inside) / (t1 - t0), 1), "steps_s": round(len(inside) / (t1 - t0), 2),
                "mean_running": round(sum(s[1] for s in inside) / steps, 1), "prompt_tokens": prompt,
                "prefix_cached": round(sum(s[4] for s in inside) / max(prompt, 1), 3)}


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.2f} {b:.2f} {c:.2f}"


async def pipeline(backend, meter: EngineMeter, request, args: argparse.Namespace) -> tuple[dict, list]:
    """Run the pipeline for warm-up + window; the engine's figures over the window, and the
    requests it sent, in the order they were sent."""
    sent: list[tuple] = []
    generated: list[int] = []
    generate = backend._generate  # the benchmark peeks past the adapter on purpose

    async def recorded(messages, params, json_schema):
        ids, sp = backend.engine_request(messages, params, json_schema)
        sent.append((ids, sp.clone()))  # a copy: the engine may annotate the one it is given
        raw = await generate(messages, params, json_schema)
        generated.append(raw.usage.completion_tokens)
        return raw

    backend._generate = recorded
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    run = asyncio.ensure_future(execute(request, backend=backend))
    await asyncio.wait([run], timeout=args.warm_up + args.window)
    cpu = time.process_time() - cpu0
    finished_early = run.done()
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    backend._generate = generate
    figures = meter.summary(t0 + args.warm_up, t0 + args.warm_up + args.window)
    figures["front_end_cpu"] = round(cpu / (args.warm_up + args.window), 3)
    figures["mean_prompt"] = sum(len(ids) for ids, _ in sent) // max(len(sent), 1)
    figures["mean_completion"] = sum(generated) // max(len(generated), 1)
    if finished_early:
        figures["note"] = "the run ended inside the window (too few --dialogues): the figure includes idle time"
    return figures, sent


async def closed_loop(engine, meter: EngineMeter, requests, concurrency: int, warm_up: float,
                      window: float) -> dict:
    """``concurrency`` workers send ``requests`` (prompt ids, vLLM sampling params) straight into the
    engine, each the next one as soon as its last one ends; the engine's figures over the window,
    which ends early, with a note, when the requests run out."""
    queue = [(ids, sp.clone()) for ids, sp in reversed(requests)]
    drained: list[float] = []
    # Start cold, as the pipeline did: prompts an earlier phase left in the prefix cache would be free here.
    await engine.reset_prefix_cache()

    async def worker() -> None:
        while queue:
            ids, sp = queue.pop()
            if not queue:
                drained.append(time.perf_counter())
            async for _ in engine.generate({"prompt_token_ids": ids}, sp, request_id=uuid.uuid4().hex):
                pass

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    done = asyncio.gather(*workers)
    try:
        await asyncio.wait_for(asyncio.shield(done), warm_up + window)
    except TimeoutError:
        pass
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    for w in workers:
        w.cancel()  # cancelling engine.generate aborts the request in the engine
    await asyncio.gather(done, return_exceptions=True)
    end = min(t0 + warm_up + window, drained[0] if drained else float("inf"))
    if end <= t0 + warm_up:
        return {"tok_s": float("nan"), "note": f"requests ran out {end - t0:.0f} s in, before the window"}
    figures = meter.summary(t0 + warm_up, end)
    figures["front_end_cpu"] = round(cpu / wall, 3)
    if end < t0 + warm_up + window:
        figures["note"] = f"window cut to {end - t0 - warm_up:.0f} s: the recorded requests ran out"
    return figures


def synthetic_requests(tokenizer, count: int, prompt_tokens: int, max_tokens: int, schema: dict | None = None):
    """``count`` requests of ``prompt_tokens`` prompt tokens, each prompt different from the start
    (a prompt that repeats an earlier one would be served from the prefix cache), ``max_tokens``
    generated with ``ignore_eos``; with ``schema``, constrained to it and ending where the JSON ends."""
    from vllm import SamplingParams as VSamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    requests = []
    for i in range(count):
        text = f"request {i}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(prompt_tokens))
        ids = tokenizer(text)["input_ids"][:prompt_tokens]
        constrained = StructuredOutputsParams(json=schema) if schema is not None else None
        requests.append((ids, VSamplingParams(temperature=0.8, max_tokens=max_tokens, ignore_eos=schema is None,
                                              seed=i, output_kind=RequestOutputKind.FINAL_ONLY,
                                              structured_outputs=constrained)))
    return requests


def show(label: str, figures: dict) -> None:
    print(f"{label}: {json.dumps(figures)} ({load()})", flush=True)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sparring-saturation-") as tmp:
        config = write_config(Path(tmp), args.dialogues, args.concurrency, args.max_turns)
        request = request_from_config(config, out=Path(tmp) / "run")
        backend = create_backend(BackendConfig(kind="embedded", max_in_flight=args.concurrency,
                                               engine_args=dict(json.loads(args.engine_args))))
        t0 = time.perf_counter()
        await backend.start()
        print(f"engine start: {time.perf_counter() - t0:.1f} s ({load()})", flush=True)
        engine, tokenizer = backend._engine, backend._tokenizer  # the benchmark peeks past the adapter on purpose
        meter = EngineMeter(engine)
        try:
            if args.raw_only:
                await raw_only(engine, meter, tokenizer, args)
                return
            pipe, sent = await pipeline(backend, meter, request, args)
            show(f"pipeline ({len(sent)} requests sent)", pipe)
            raw = await closed_loop(engine, meter, sent, args.concurrency, args.warm_up, args.window)
            show("raw engine, the same requests", raw)
            result = {"pipeline_tok_s": pipe["tok_s"], "raw_tok_s": raw["tok_s"],
                      "saturation": round(pipe["tok_s"] / raw["tok_s"], 3)}
            if args.synthetic:
                mean_prompt, mean_completion = pipe["mean_prompt"], max(pipe["mean_completion"], 1)
                synthetic = synthetic_requests(tokenizer, 100_000 // mean_prompt, mean_prompt, mean_completion)
                alike = await closed_loop(engine, meter, synthetic, args.concurrency, args.warm_up, args.window)
                show(f"raw engine, alike requests of {mean_prompt} prompt + {mean_completion} generated tokens",
                     alike)
                result["synthetic_raw_tok_s"] = alike["tok_s"]
            print(json.dumps(result), f"({load()})", flush=True)
        finally:
            await backend.aclose()


async def raw_only(engine, meter: EngineMeter, tokenizer, args: argparse.Namespace) -> None:
    """The raw engine with and without a JSON-schema constraint (the critic's verdict schema):
    what constrained decoding costs the engine by itself."""
    from sparring.agents.backends._retry import json_schema_of
    from sparring.agents.critic import CritiqueOutput

    schema = json_schema_of(CritiqueOutput)
    for label, constraint in (("unconstrained", None), ("json-schema", schema)):
        requests = synthetic_requests(tokenizer, 100_000 // args.prompt_tokens, args.prompt_tokens, args.max_tokens,
                                      constraint)
        figures = await closed_loop(engine, meter, requests, args.concurrency, args.warm_up, args.window)
        show(f"raw engine, {label}, {args.prompt_tokens} prompt tokens", figures)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=96)
    parser.add_argument("--warm-up", type=float, default=240.0)
    parser.add_argument("--window", type=float, default=360.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--synthetic", action="store_true",
                        help="also the raw engine on alike requests of the pipeline's mean lengths")
    parser.add_argument("--engine-args", default="{}",
                        help="JSON object of extra vLLM engine arguments (backend.engine_args), to compare settings")
    parser.add_argument("--raw-only", action="store_true",
                        help="only the raw engine, unconstrained and JSON-schema constrained")
    parser.add_argument("--prompt-tokens", type=int, default=550, help="with --raw-only")
    parser.add_argument("--max-tokens", type=int, default=170, help="with --raw-only")
    return parser.parse_args()


if __name__ == "__main__":  # the engine spawns processes: this guard is required
    asyncio.run(main(parse_args()))
