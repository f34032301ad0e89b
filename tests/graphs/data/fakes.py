"""A stand-in for the sentence-embedding model: fixed vectors per text, so cosines are known by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class FixedEmbedder:
    """``encode`` returns each text's given vector, normalised. A text without one gets a one-hot vector
    of its own (from the last dimension down): orthogonal to every other such text."""

    def __init__(self, vectors: Mapping[str, Sequence[float]], dim: int = 64) -> None:
        self.dim = dim
        self.vectors = {t: self._unit(list(v) + [0.0] * (dim - len(v))) for t, v in vectors.items()}
        self.unnamed = 0
        self.calls = 0

    @staticmethod
    def _unit(values: Sequence[float]) -> np.ndarray:
        vector = np.asarray(values, dtype=np.float32)
        return vector / np.linalg.norm(vector)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        for text in texts:
            if text not in self.vectors:
                self.unnamed += 1
                self.vectors[text] = np.eye(self.dim, dtype=np.float32)[self.dim - self.unnamed]
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
