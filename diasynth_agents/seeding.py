"""Seeds derived from the run seed, so every model call and every sampled choice is reproducible."""

from __future__ import annotations

from agents.types import stable_id


def derive_seed(*parts: object) -> int:
    """A non-negative 31-bit integer that depends only on ``parts`` (fits every backend's seed field)."""
    return int(stable_id("seed", *parts), 16) % (2**31)
