"""``sparring calibrate`` as users run it: through the real openai client against the loopback
server (its canned critic always names the first principle it is offered, so every figure is known in
advance), into a run directory whose report then shows it, and bad input refused before any call."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.graphs.cli import main
from sparring.principles.loader import get_builtin
from sparring.principles.revision_items import builtin_revision_items
from tests.cli import run_cli

PRIVACY = [p.id for p in get_builtin("privacy").principles]


def write_config(folder: Path, base_url: str, name: str = "calib") -> Path:
    config = {"name": name, "seed": 2,
              "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model", "max_in_flight": 8,
                          "retry": {"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.02, "timeout_s": 10}},
              "principles": {"sets": ["privacy"]}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def never_flags(body: dict[str, Any]) -> str:
    return json.dumps({"reasoning": "Nothing here breaks a principle.", "violations": []})


def test_the_canned_critic_through_the_openai_client(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({"name": "a run", "status": "completed", "runs": []}), encoding="utf-8")
    with FakeOpenAIServer(responder=agent_reply) as server:
        config = write_config(tmp_path, server.base_url)
        result = run_cli("calibrate", str(config), "--labelled", "rubric", "--out", str(run_dir), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        # Every item once, and the verifier once per labelled revision of a privacy principle.
        revisions = [i for i in builtin_revision_items() if i.principle in PRIVACY]
        assert server.stats.chat_requests == 8 * len(PRIVACY) + len(revisions)
    document = json.loads((run_dir / "calibration.json").read_text())
    assert document["scope"]["judged_against"] == PRIVACY
    [critic] = document["critics"]
    assert critic["backend"]["model"] == "fake-model" and critic["usage"]["calls"] == 8 * len(PRIVACY) + len(revisions)
    assert critic["verifier"]["figures"]["fixes"] + critic["verifier"]["figures"]["still_breaks"] == len(revisions)
    assert "verifier on labelled revisions" in result.stdout
    # The canned critic names the first principle offered, whatever the turn; the order is shuffled per
    # conversation, so its flags spread over the set, and it is right when the shuffle put the turn's own
    # principle first: recall and precision are what chance gives.
    rows = critic["verdicts"]
    named = Counter(pid for r in rows for pid in r["violated"])
    assert all(len(r["violated"]) == 1 for r in rows) and len(named) >= len(PRIVACY) - 1
    assert max(named.values()) <= len(rows) / 2
    overall = critic["figures"]["overall"]
    assert overall["caught"] == sum(r["flagged"] for r in rows if r["label"] == "violates")
    assert overall["near_miss_any_rate"] == 1.0
    assert "overall" in result.stdout and "Traceback" not in result.stderr
    report = (run_dir / "report.html").read_text()
    assert "Critic calibration" in report and "Critic recall, precision and false alarms per category" in report


def test_both_shipped_sets_and_the_gap_by_default(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=agent_reply) as server:
        config = write_config(tmp_path, server.base_url)
        result = run_cli("calibrate", str(config), "--out", str(tmp_path / "out"), "-q", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out" / "calibration.json").read_text())
    sets = document["items"]["sets"]
    assert sets["rubric"] == 8 * len(PRIVACY) and sets["transfer"] >= len(PRIVACY)
    critic = document["critics"][0]
    assert set(critic["figures"]["sets"]) == {"rubric", "transfer"} and critic["gap"]["of"] == "transfer"
    assert "on the transfer set" in result.stdout and "gap (transfer minus rubric)" in result.stdout


def test_two_critics_and_their_agreement(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=agent_reply) as one, FakeOpenAIServer(responder=never_flags) as two:
        first = write_config(tmp_path, one.base_url, "first")
        second = write_config(tmp_path, two.base_url, "second")
        out = tmp_path / "out"
        result = run_cli("calibrate", str(first), "--labelled", "rubric", "--compare", str(second), "--principle",
                         "privacy.no-d*", "--principle", "privacy.keep-confidences", "--out", str(out), "-q",
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    document = json.loads((out / "calibration.json").read_text())
    assert [c["name"] for c in document["critics"]] == ["first", "second"]
    assert document["scope"]["principles"] == ["privacy.no-doxxing", "privacy.keep-confidences"]
    agreement = document["agreement"]["overall"]
    # The first critic flags an item when the shuffle shows its principle first, the second never flags.
    flagged = sum(bool(r["flagged"]) for r in document["critics"][0]["verdicts"])
    assert (agreement["both_flag"], agreement["first_only"], agreement["second_only"], agreement["neither"]) == (
        0, flagged, 0, 16 - flagged)
    assert agreement["raw"] == round((16 - flagged) / 16, 4) and agreement["kappa"] in (0.0, None)
    assert "Cohen's kappa 0.00" in result.stdout
    assert not (out / "report.html").exists()  # not a run directory: the JSON only


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


BAD_ITEMS = "items:\n  - principle: privacy.no-doxxing\n    label: maybe\n    turn: {A: hi}\n"


@pytest.mark.parametrize(("args", "files", "expected"), [
    (["missing.yaml"], {}, "missing.yaml: config file not found"),
    (["c.yaml"], {"c.yaml": "backend:\n  kind: nope\n"}, "c.yaml: backend.kind (line 2): Input should be"),
    (["--set", "principles.sets=[nope]"], {}, "unknown built-in principle set 'nope'"),
    (["--items", "items.yaml"], {"items.yaml": BAD_ITEMS}, "items.yaml: items[0].label (line 3): Input should be"),
    (["--items", "items.yaml"], {"items.yaml": BAD_ITEMS.replace("maybe", "violates").replace("no-doxxing", "no-doxing")},
     "unknown principle id 'privacy.no-doxing' (did you mean 'privacy.no-doxxing'?)"),
    (["--principle", "nothing.*"], {}, "--principle nothing.*: matches no labelled principle"),
    (["c.yaml"], {"c.yaml": "principles: {sets: [mine.yaml]}\n", "mine.yaml": (
        "id: mine\ntitle: Mine\nprinciples:\n  - id: mine.be-nice\n    category: mine\n    text: Be nice.\n")},
     "none of the config's principles has labelled items"),
    (["--compare", "other.yaml"], {}, "other.yaml: config file not found"),
    (["--compare-set", "backend.kind=nope"], {}, "backend.kind: Input should be"),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(runner: CliRunner, tmp_path: Path, args: list[str],
                                                                files: dict[str, str], expected: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = runner.invoke(main, ["calibrate", *args, "--out", "out", "-q"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert expected in result.output and result.output.count("\n") == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_an_out_that_is_a_file_or_a_directory_in_use_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    from sparring.graphs.runtime.runlock import RunDirLock

    file = tmp_path / "file"
    file.write_text("x")
    result = runner.invoke(main, ["calibrate", "--out", str(file), "-q"])
    assert result.exit_code == 2 and "exists and is not a directory" in result.output
    busy = tmp_path / "busy"
    with RunDirLock(busy, create=True):  # as a run writing it holds it
        result = runner.invoke(main, ["calibrate", "--out", str(busy), "-q"])
        assert result.exit_code == 2 and f"is in use by process {os.getpid()}" in result.output, result.output
        assert sorted(p.name for p in busy.iterdir()) == [".lock"]


def test_a_run_starts_in_a_directory_that_holds_only_a_calibration(tmp_path: Path) -> None:
    """Calibrate first (the default --out is the config's run directory), run later: the run is not refused."""
    from sparring.errors import InputError
    from sparring.graphs.runtime.run_request import check_run_dir, request_from_config

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "c", "scenarios": [
        {"topic": "t", "subtopic": "s", "personas": ["A: one", "B: two"]}]}), encoding="utf-8")
    run_dir = tmp_path / "runs" / "c"
    run_dir.mkdir(parents=True)
    (run_dir / "calibration.json").write_text("{}")
    request = request_from_config(config, out=run_dir)
    assert check_run_dir(request) is None
    (run_dir / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="is not empty and holds no manifest.json"):
        check_run_dir(request)


def test_calibrate_probes_the_critics_backend_like_run(tmp_path: Path) -> None:
    """A critic backend that cannot work is refused before any turn is judged: one line, exit 2."""
    with FakeOpenAIServer(responder=agent_reply) as server:
        config = write_config(tmp_path, server.base_url)
        data = yaml.safe_load(config.read_text())
        data["backend"]["model"] = "no-such-model"
        config.write_text(yaml.safe_dump(data))
        result = run_cli("calibrate", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path)
        assert server.stats.chat_requests <= 1  # the probe's own, at most: no turn was judged
    assert result.returncode == 2, result.stderr
    assert "backend" in result.stderr and "no-such-model" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
