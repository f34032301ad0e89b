"""The ``report:`` block: a finished run writes stats.json and report.html, with or without the
embedding figures, or neither."""

from __future__ import annotations

import json

import pytest

from sparring.graphs.data import run_stats as stats
from sparring.graphs.runtime.store import REPORT, STATS
from tests.graphs.scripted_world import World
from tests.traces.scripted_run import scripted_run


@pytest.fixture
def embedding_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the embedding figures (which would load a sentence-embedding model)."""
    calls: list[int] = []
    real = stats.compute_embedding_diversity

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats, "compute_embedding_diversity", counting)
    return calls


async def test_without_embeddings_the_other_figures_are_written(tmp_path, embedding_calls):
    result = await scripted_run(tmp_path, World(violating_turns={1: ["privacy.no-doxxing"]}).backend(), n=2,
                                report={"embeddings": False})
    assert result.status == "completed"
    written = json.loads((tmp_path / STATS).read_text(encoding="utf-8"))
    assert embedding_calls == []
    assert written["counts"]["dialogues"] == 2
    assert written["diasynth_table1"]["diversity_embedding"] is None
    assert written["diasynth_table1"]["diversity_rouge_l"] is not None
    assert (tmp_path / REPORT).exists()
    assert result.manifest.stats_error is None


async def test_stats_off_writes_neither_file(tmp_path, embedding_calls):
    result = await scripted_run(tmp_path, World().backend(), n=1, report={"stats": False})
    assert result.status == "completed"
    assert not (tmp_path / STATS).exists() and not (tmp_path / REPORT).exists()
    assert embedding_calls == []
