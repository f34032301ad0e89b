"""In-process tests of this folder never load the real sentence-embedding model: unknown texts get
orthogonal vectors (see fakes.FixedEmbedder). Tests that want the real model run the CLI in a subprocess."""

from __future__ import annotations

import importlib

import pytest

from tests.graphs.data.fakes import FixedEmbedder


@pytest.fixture(autouse=True)
def _no_real_embedding_model(monkeypatch: pytest.MonkeyPatch) -> None:
    dedup_module = importlib.import_module("sparring.diasynth_agents.dedup")  # the package re-exports dedup(), a function
    monkeypatch.setattr(dedup_module, "default_embedder", lambda: FixedEmbedder({}))
