"""The data settings of issue 15 as config: the new keys fail with file, key and line; the sides are
drawn per dialogue from the seed; changed defaults keep a run directory written before on its own
rules; the DiaSynth and SDSD examples say what they plant before any model call."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.graphs.jobs import JobsConfig, assign_jobs
from sparring.graphs.run_config import load_config
from sparring.graphs.runtime.manifest import fingerprint, new_manifest, write_manifest
from sparring.graphs.runtime.run_request import (
    check_run_dir,
    continued,
    describe_request,
    iter_jobs,
    request_from_config,
)
from tests.cli import REPO, run_cli

FIXTURE = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(("text", "expected"), [
    ("dialogue:\n  branch_turns: -1\n",
     "dialogue.branch_turns (line 2): Input should be greater than or equal to 0 (got -1)"),
    ("dialogue:\n  branch_turns: 51\n",
     "dialogue.branch_turns (line 2): Input should be less than or equal to 50 (got 51)"),
    ("dialogue:\n  critique: maybe\n", "dialogue.critique (line 2): Input should be a valid boolean"),
    ("dialogue:\n  critique: false\n  stop_on_violation: true\n",
     "dialogue (line 1): stop_on_violation needs the critique stage (critique: true)"),
    ("dialogue:\n  critique: false\n  branch_turns: 2\n",
     "dialogue (line 1): branch_turns needs the critique stage (critique: true)"),
    ("dialogue:\n  critic_guidance: some\n", "dialogue.critic_guidance (line 2): Input should be a valid boolean"),
    ("jobs:\n  briefed_side: C\n", "jobs.briefed_side (line 2): Input should be 'A', 'B' or 'drawn' (got 'C')"),
    ("dialogue:\n  mode: assistant\njobs:\n  briefed_side: drawn\n",
     "jobs (line 3): briefed_side: drawn is for peers mode (two people); in assistant mode side A is the user and "
     "side B the assistant, so give A or B"),
])
def test_bad_data_settings_name_file_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_peers_mode_draws_the_sides_per_dialogue_and_keeps_the_job_ids(tmp_path: Path) -> None:
    from sparring.agents.domain import Persona, Scenario

    scenarios = [Scenario(topic=f"t{i}", personas=(Persona(name=f"P{i}"), Persona(name=f"Q{i}"))) for i in range(40)]
    fixed = list(assign_jobs(scenarios, ["x"], JobsConfig(briefed_side="B"), mode="peers", seed=9))
    drawn = list(assign_jobs(scenarios, ["x"], JobsConfig(), mode="peers", seed=9))
    again = list(assign_jobs(scenarios, ["x"], JobsConfig(), mode="peers", seed=9))
    assert [j.id for j in drawn] == [j.id for j in fixed] == [j.id for j in again]  # ids and seeds as before
    assert [(j.briefed_side, j.swapped) for j in drawn] == [(j.briefed_side, j.swapped) for j in again]
    combos = Counter((j.briefed_side, j.swapped) for j in drawn)
    assert set(combos) == {("A", False), ("A", True), ("B", False), ("B", True)}
    opener = Counter(j.persona("A").name[0] for j in drawn)
    assert opener["P"] and opener["Q"]
    assistant = list(assign_jobs(scenarios, ["x"], JobsConfig(), mode="assistant", seed=9))
    assert {(j.briefed_side, j.swapped) for j in assistant} == {("B", False)}


def test_a_run_directory_written_before_keeps_its_rules(tmp_path: Path) -> None:
    """The fixture was written when unverified pairs were kept by default: continuing it with its own
    config keeps them; a new directory from the same config drops them; asking for 'drop' explicitly
    in the old directory is refused instead of mixing two rules in one run."""
    run_dir = tmp_path / "old"
    shutil.copytree(FIXTURE / "pre_namespace_run", run_dir)
    config = FIXTURE / "pre_namespace_run.config.yaml"
    request = request_from_config(config, out=run_dir)
    assert request.config.dialogue.unverified_pairs == "drop"
    request = continued(request, check_run_dir(request))
    assert request.config.dialogue.unverified_pairs == "keep" and request.config.jobs.briefed_side == "B"
    fresh = request_from_config(config, out=tmp_path / "new")
    assert check_run_dir(fresh) is None and continued(fresh, None) is fresh
    assert fresh.config.dialogue.unverified_pairs == "drop"
    stored = json.loads((run_dir / "manifest.json").read_text())["config_fingerprint"]
    explicit = request_from_config(config, ("dialogue.unverified_pairs=keep",), out=run_dir)
    assert fingerprint(explicit.config) == stored
    other = request_from_config(config, ("dialogue.unverified_pairs=drop",), out=run_dir)
    with pytest.raises(InputError, match="made with dialogue.unverified_pairs: keep, and the config asks for drop"):
        check_run_dir(other)
    # A directory made with the new default: asking for 'keep' explicitly would mix the rules.
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    write_manifest(new_dir, new_manifest(fresh.config, config_path=None, run_dir=str(new_dir)))
    assert check_run_dir(request_from_config(config, out=new_dir)) is not None
    keep = request_from_config(config, ("dialogue.unverified_pairs=keep",), out=new_dir)
    with pytest.raises(InputError, match="unverified_pairs: drop, and the config asks for keep"):
        check_run_dir(keep)
    same = request_from_config(config, ("dialogue.unverified_pairs=drop",), out=new_dir)  # the new default, said
    assert continued(same, check_run_dir(same)).config.dialogue.unverified_pairs == "drop"


def test_a_peers_run_directory_keeps_its_sides(tmp_path: Path) -> None:
    """Peers mode: a directory written when side B was always briefed continues that way; one written
    with the sides drawn continues drawn, whether the config says drawn or nothing."""
    config = tmp_path / "peers.yaml"
    config.write_text("dialogue: {mode: peers}\nscenarios:\n  - {topic: t, personas: [a, b]}\n")
    old = request_from_config(config, ("jobs.briefed_side=B",), out=tmp_path / "old")
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    stored = new_manifest(old.config, config_path=None, run_dir=str(old_dir))
    write_manifest(old_dir, stored)
    unset = request_from_config(config, out=old_dir)
    assert continued(unset, check_run_dir(unset)).config.jobs.briefed_side == "B"
    with pytest.raises(InputError, match="made with jobs.briefed_side: B, and the config asks for drawn"):
        check_run_dir(request_from_config(config, ("jobs.briefed_side=drawn",), out=old_dir))
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    fresh = request_from_config(config, out=new_dir)
    write_manifest(new_dir, new_manifest(fresh.config, config_path=None, run_dir=str(new_dir)))
    for overrides in ((), ("jobs.briefed_side=drawn",)):
        again = request_from_config(config, overrides, out=new_dir)
        assert check_run_dir(again) is not None
        assert {j.briefed_side for j in iter_jobs(again)} <= {"A", "B"}


def test_the_diasynth_example_plants_nothing_and_judges_nothing() -> None:
    request = request_from_config(REPO / "examples" / "diasynth_16_topics.yaml")
    cfg = request.config
    assert (cfg.dialogue.mode, cfg.dialogue.critique, cfg.jobs.principles_per_dialogue) == ("peers", False, 0)
    assert cfg.dialogue.min_turns <= 7 and cfg.dialogue.max_turns >= 16  # the paper's averages: 6.9 to 15.4 turns
    text = describe_request(request)
    assert "planted violations: none" in text and "critique stage: off" in text
    assert "1440 dialogues" in text


def test_the_sdsd_example_plants_one_violation_per_dialogue_and_stops_there(tmp_path: Path) -> None:
    result = run_cli("run", str(REPO / "examples" / "sdsd.yaml"), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dialogues: 16 (16 with a planted violation, 0 controls)" in result.stdout
    cfg = request_from_config(REPO / "examples" / "sdsd.yaml").config
    assert (cfg.dialogue.mode, cfg.dialogue.stop_on_violation, cfg.jobs.principles_per_dialogue) == (
        "assistant", True, 1)
    jobs = list(iter_jobs(request_from_config(REPO / "examples" / "sdsd.yaml")))
    assert all(j.briefed_side == "B" and len(j.target_principles) == 1 for j in jobs)
