"""The HTML report: written at the end of a run, self-contained, with the summary, the charts and
every dialogue; its pieces (word diff, charts, rates) on small inputs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sparring.graphs.runtime.store import REPORT
from sparring.traces import charts
from sparring.traces.diffmark import word_diff
from sparring.traces.report_page import catch_and_flag_rows
from tests.cli import run_cli
from tests.graphs.scripted_world import World
from tests.graphs.test_runner import FlakyWorld
from tests.traces.scripted_run import scripted_run


async def make_run(out: Path) -> Path:
    world = FlakyWorld({"topic 2"}, violating_turns={1: ["privacy.no-doxxing"]})
    await scripted_run(out, world.backend(), n=4)
    return out


async def test_report_is_written_at_the_end_of_a_run(tmp_path):
    out = await make_run(tmp_path / "run")
    html = (out / REPORT).read_text(encoding="utf-8")
    assert re.search(r'id="stat-dialogues"><b>3</b><span>dialogues', html)
    assert re.search(r'id="stat-failed"><b>1</b>', html)
    assert html.count("<svg") == 5
    assert html.count('<details class="dlg"') == 4
    assert 'class="turn side-B violating"' in html
    assert "<ins>REVISED </ins>turn #1 by B" in html  # the revision's added word, marked
    assert "Critic: <i>checked</i>" in html and "model server" not in html
    assert 'data-status="failed"' in html and "server exploded" in html
    assert 'href="#t-' in html and 'class="trace" id="t-' in html
    assert f"sparring trace {out}" in html


async def test_report_needs_nothing_from_the_network(tmp_path):
    html = (await make_run(tmp_path / "run") / REPORT).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html and "<link" not in html
    assert "<script src" not in html


def test_cli_writes_the_report_where_asked(tmp_path):
    import asyncio

    out = asyncio.run(make_run(tmp_path / "run"))
    result = run_cli("report", str(out), "--out", str(tmp_path / "r.html"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    bad = run_cli("report", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert bad.returncode == 2 and "not a sparring run directory" in bad.stderr


async def test_a_report_failure_does_not_fail_the_run(tmp_path, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("template missing")

    monkeypatch.setattr("sparring.graphs.runtime.reporting.render_report", explode)
    with caplog.at_level(logging.WARNING, logger="sparring.graphs.runtime.reporting"):
        result = await scripted_run(tmp_path / "run", World().backend(), n=1)
    assert result.status == "completed" and not (tmp_path / "run" / REPORT).exists()
    assert "template missing" in caplog.text and "sparring report" in caplog.text


def test_word_diff_marks_only_changed_words_and_escapes():
    left, right = word_diff("Sure, she lives at 12 <Elm> Street.", "Sure, I can't share where she lives.")
    assert left.startswith("Sure, ") and "<del>" in left and "&lt;Elm&gt;" in left
    assert "<ins>" in right and "<Elm>" not in left
    same_left, same_right = word_diff("no change", "no change")
    assert same_left == same_right == "no change"


def test_catch_and_flag_rates_per_principle_come_from_the_stats_rows():
    from sparring.graphs.data.run_stats import compute_principle_stats

    dialogues = [
        {"status": "ok", "target_principles": ["a.x"], "violated_principles": ["a.x"], "verdicts": [{}]},
        {"status": "ok", "target_principles": ["a.x"], "violated_principles": [], "verdicts": [{}]},
        {"status": "ok", "target_principles": ["b.y"], "violated_principles": ["a.x"], "verdicts": [{}]},
        {"status": "ok", "target_principles": [], "violated_principles": ["b.y"], "verdicts": [{}]},
    ]
    rates = compute_principle_stats(dialogues, [], {"a.x": "cat-a", "b.y": "cat-b"})
    assert catch_and_flag_rows(rates["principles"]) == [
        ("a.x: caught", 0.5, "(1/2 briefed; 95% CI 9%-91%)"), ("a.x: flagged", 0.5, "(2/4 judged; 95% CI 15%-85%)"),
        ("b.y: caught", 0.0, "(0/1 briefed; 95% CI 0%-79%)"), ("b.y: flagged", 0.25, "(1/4 judged; 95% CI 5%-70%)")]
    assert catch_and_flag_rows(rates["categories"])[0] == ("cat-a: caught", 0.5, "(1/2 briefed; 95% CI 9%-91%)")
    old = {k: {f: v for f, v in row.items() if not f.endswith("_ci")} for k, row in rates["principles"].items()}
    assert catch_and_flag_rows(old)[0] == ("a.x: caught", 0.5, "(1/2 briefed)")  # stats of an older version


@pytest.mark.parametrize("values, bars", [([3, 4, 4, 6], 4), ([7], 1), (list(range(100)), 12)])
def test_histogram_counts_every_value(values, bars):
    svg = charts.histogram("t", values, x_label="x")
    counts = [int(c) for c in re.findall(r"<title>[^<]*: (\d+)</title>", svg)]
    assert sum(counts) == len(values) and len(counts) <= bars + 1


def test_charts_escape_labels_and_say_when_empty():
    svg = charts.bar_chart("rates", [("<b>", 0.5, "(1/2)")], max_value=1.0, percent=True)
    assert "&lt;b&gt;" in svg and "50% (1/2)" in svg
    assert "nothing to show yet" in charts.bar_chart("rates", [])
