"""Embedded engine: start-up time and generated tokens/s at 1 and at 32 concurrent requests.

    flock /tmp/sparring-engine.lock python benchmarks/engine_throughput.py [--max-tokens 128] [--concurrency 1 32]

Two paths are measured at each concurrency level:

- ``complete()``: through the backend, as every agent calls it (chat
  template, slots, spans); replies end at EOS or ``--max-tokens``, so this is
  what users get.
- ``raw engine``: vLLM's engine directly with ``ignore_eos`` (every request
  generates exactly ``--max-tokens``): the engine's ceiling, for comparison.

Each level keeps ``concurrency`` workers busy, each sending ``--rounds``
requests in turn, so the batch stays full. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from sparring.agents.backends import BackendConfig, SamplingParams, create_backend  # noqa: E402
from sparring.agents.backends.vllm_engine import VLLMBackend  # noqa: E402

TOPICS = ["a lighthouse keeper", "a lost umbrella", "the first snow", "a chess club", "a night train",
          "a bakery at dawn", "a broken violin", "a garden robot"]


def prompt(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long, detailed story about {TOPICS[i % len(TOPICS)]}."}]


async def run_level(concurrency: int, rounds: int, one: Callable[[int], Awaitable[int]]) -> tuple[int, int, float]:
    """(requests, generated tokens, wall seconds) with ``concurrency`` workers of ``rounds`` requests each."""
    tokens = 0

    async def worker(w: int) -> None:
        nonlocal tokens
        for r in range(rounds):
            generated = await one(w * rounds + r)
            tokens += generated  # not `tokens += await ...`: that reads tokens before the await and loses updates

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return concurrency * rounds, tokens, time.perf_counter() - t0


async def main(args: argparse.Namespace) -> None:
    backend = create_backend(BackendConfig(max_in_flight=max(max(args.concurrency), 8)))
    assert isinstance(backend, VLLMBackend)
    t0 = time.perf_counter()
    await backend.start()
    started = time.perf_counter() - t0
    info = backend.describe()
    print(f"engine start: {started:.1f} s  ({info['model']}, {info['device']}, {info['dtype']}, "
          f"vLLM {info['vllm_version']})", flush=True)
    params = SamplingParams(temperature=0.8, max_tokens=args.max_tokens)

    async def via_complete(i: int) -> int:
        result = await backend.complete(prompt(i), params.with_seed(i))
        return result.usage.completion_tokens

    from vllm import SamplingParams as VSamplingParams
    from vllm.sampling_params import RequestOutputKind

    engine, tokenizer = backend._engine, backend._tokenizer  # the benchmark peeks past the adapter on purpose

    async def via_engine(i: int) -> int:
        ids = tokenizer.apply_chat_template(prompt(i), tokenize=True, add_generation_prompt=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        sp = VSamplingParams(temperature=0.8, max_tokens=args.max_tokens, ignore_eos=True, seed=i,
                             output_kind=RequestOutputKind.FINAL_ONLY)
        final = None
        async for out in engine.generate({"prompt_token_ids": list(ids)}, sp, request_id=uuid.uuid4().hex):
            final = out
        return len(final.outputs[0].token_ids) if final is not None else 0

    await via_complete(0)  # warm-up: first-request costs are not throughput
    paths = [("complete()", via_complete)] + ([("raw engine", via_engine)] if not args.no_raw else [])
    print(f"{'path':<12} {'concurrent':>10} {'requests':>8} {'tokens':>7} {'wall s':>7} {'tok/s':>7} {'tok/req':>7}",
          flush=True)
    try:
        for concurrency in args.concurrency:
            for name, one in paths:
                n, tokens, wall = await run_level(concurrency, args.rounds, one)
                print(f"{name:<12} {concurrency:>10} {n:>8} {tokens:>7} {wall:>7.1f} {tokens / wall:>7.1f} "
                      f"{tokens / n:>7.0f}", flush=True)
    finally:
        await backend.aclose()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per request (default 128)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32], help="levels (default 1 32)")
    parser.add_argument("--rounds", type=int, default=2, help="requests per worker at each level (default 2)")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-engine path")
    return parser.parse_args()


if __name__ == "__main__":  # the engine spawns processes: this guard is required
    asyncio.run(main(parse_args()))
