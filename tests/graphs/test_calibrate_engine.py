"""Calibration on the real embedded engine: a small subset of the labelled turns through the real
CriticAgent, its constrained JSON schema and vLLM; every verdict names only principles of the set, and
the figures are the counts of those verdicts."""

from __future__ import annotations

import pytest

from sparring.agents.backends import Backend
from sparring.agents.critic import CriticAgent
from sparring.graphs.commands.critic_calibration import Critic, calibrate, select_items
from sparring.graphs.run_config import StageSampling
from sparring.principles.labelled import builtin_items
from sparring.principles.loader import get_builtin
from sparring.traces.report_calibration import calibration_html
from tests.engines import seeded


@pytest.mark.engine
async def test_a_subset_on_the_embedded_engine(embedded_backend: Backend) -> None:
    principles = list(get_builtin("quickstart").principles)
    items, _ = select_items(builtin_items(), principles, only=["honesty.no-fabrication", "privacy.data-minimization"],
                            per_label=1)
    critic = Critic("embedded", CriticAgent(embedded_backend, StageSampling().critic), seed=seeded(7))
    document = await calibrate([critic], items, principles)
    [result] = document["critics"]
    rows = result["verdicts"]
    assert [r["item"] for r in rows] == [i.id for i in items] and len(rows) == 4
    in_set = {p.id for p in principles}
    judged = [r for r in rows if r.get("error") is None]  # a call that failed for good is counted apart
    assert all(set(r["violated"]) <= in_set for r in judged)  # the schema's enum, whatever the model says
    overall = result["figures"]["overall"]
    flagged = [r for r in judged if r["flagged"]]
    assert overall["caught"] + overall["false_flags"] == len(flagged)
    assert overall["caught"] == sum(r["label"] == "violates" for r in flagged)
    assert result["usage"]["calls"] >= 4 and result["backend"]["kind"] == "embedded"
    assert "Critic calibration" in calibration_html(document)
