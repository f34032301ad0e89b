"""A quiet terminal on the real embedded engine: ``sparring run`` as users start it, the vLLM engine
started inside the run (its own process included). The terminal holds sparring's own lines only;
what vLLM, torch and transformers printed is in engine.log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.engines import seeded

pytestmark = pytest.mark.engine

CONFIG = f"""
name: quiet
seed: {seeded(3)}
concurrency: 2
report: {{embeddings: false}}
principles: {{sets: [quickstart]}}
dialogue: {{mode: assistant, max_turns: 2, reask_cut_turns: false}}
jobs: {{dialogues_per_scenario: 1, principles_per_dialogue: 1}}
sampling:
  planner: {{max_tokens: 200}}
  persona: {{max_tokens: 40}}
  critic: {{max_tokens: 200}}
  reviser: {{max_tokens: 60}}
  verifier: {{max_tokens: 200}}
scenarios:
  - topic: travel
    personas: ["Ines: a commuter whose train was cancelled", "a rail agent: knows refunds"]
"""
OURS = re.compile(r"^(sparring: |completed: )")


def test_sparring_run_on_the_embedded_engine_prints_only_its_own_lines(engine_in_subprocess: None,
                                                                       tmp_path: Path) -> None:
    config = tmp_path / "quiet.yaml"
    config.write_text(CONFIG)
    result = run_cli("run", str(config), "--out", str(tmp_path / "run"), cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = (result.stdout + result.stderr).splitlines()
    assert printed and [line for line in printed if not OURS.match(line)] == [], printed
    log = (tmp_path / "run" / "engine.log").read_text()
    # vLLM's own lines (the parent's and the engine-core process's) are there instead.
    assert re.search(r"(INFO|WARNING).*\b(vllm|EngineCore)", log, re.I) or "vllm" in log.lower(), log[:2000]
