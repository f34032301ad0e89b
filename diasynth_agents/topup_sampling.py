"""Sampling for top-up calls: each call its own seed, and hotter than the one before."""

from __future__ import annotations

from sparring.agents.backends import SamplingParams


def topup_params(params: SamplingParams, call: int, seed: int) -> SamplingParams:
    """Sampling for call ``call`` of a list (0 = first): its own seed, and hotter for top-ups.

    At the paper's temperature of 0.1 a model asked again mostly repeats what
    it said, which is exactly what deduplication just removed; each top-up
    adds 0.3, up to 1.0 (never below the configured temperature).
    """
    raised = max(params.temperature, min(1.0, params.temperature + 0.3 * call))
    temperature = params.temperature if call == 0 else raised
    return params.model_copy(update={"seed": seed, "temperature": temperature})
