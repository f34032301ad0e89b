"""The compressed span file (traces.jsonl.zst): what is written is read back; a file cut at any byte
(a SIGKILL mid-write) reads as its whole spans, the torn one dropped and counted; ``repair`` then lets
a resume append; a run killed for real and resumed keeps every dialogue's trace; an older run
directory's plain traces.jsonl stays readable by every command, and a resume there keeps to it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparring.traces import spanfile
from sparring.traces.read import iter_spans
from sparring.traces.sinks import JsonlSpanSink, encode_line
from sparring.traces.spanfile import COMPRESSED, PLAIN, ReadStats, iter_span_lines, repair, span_path
from tests.cli import run_cli
from tests.graphs.loopback_run import canned_server, check_consistent, expected_ids, kill_and_resume, write_config

spans = st.lists(st.fixed_dictionaries({
    "trace_id": st.sampled_from(["t1", "t2", "t3"]), "span_id": st.text("0123456789abcdef", min_size=4, max_size=8),
    "name": st.sampled_from(["chat", "invoke_agent", "plan"]),
    "attributes": st.dictionaries(st.text(max_size=8), st.text(max_size=300), max_size=4)}), min_size=1, max_size=25)


def _write(path: Path, rows: list[dict], *, close: bool = True) -> list[bytes]:
    sink = JsonlSpanSink(path).open()
    lines = [encode_line(row) for row in rows]
    for line in lines:
        sink.write_lines(line)
    if close:
        sink.close()
    else:  # a kill: the frame stays open
        os.close(sink._fd)  # type: ignore[arg-type]
    return lines


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=spans, frame=st.sampled_from([200, 2000, 1 << 20]), closed=st.booleans())
def test_what_is_written_is_read_back(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                                      rows: list[dict], frame: int, closed: bool) -> None:
    monkeypatch.setattr(spanfile, "FRAME_BYTES", frame)
    path = tmp_path_factory.mktemp("w") / COMPRESSED
    lines = _write(path, rows, close=closed)
    stats = ReadStats()
    assert list(iter_span_lines(path, stats)) == lines and stats.torn == 0
    assert [s["span_id"] for s in iter_spans(path)] == [r["span_id"] for r in rows]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=spans, frame=st.sampled_from([300, 1 << 20]), data=st.data())
def test_a_file_cut_anywhere_reads_as_its_whole_spans_and_resumes(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, rows: list[dict], frame: int,
        data: st.DataObject) -> None:
    monkeypatch.setattr(spanfile, "FRAME_BYTES", frame)
    folder = tmp_path_factory.mktemp("cut")
    path = folder / COMPRESSED
    lines = _write(path, rows, close=data.draw(st.booleans()))
    whole = path.read_bytes()
    cut = data.draw(st.integers(0, len(whole)))
    path.write_bytes(whole[:cut])  # what a SIGKILL mid-write leaves
    stats = ReadStats()
    read = list(iter_span_lines(path, stats))
    assert read == lines[:len(read)], "a prefix of the spans, each whole"
    assert stats.torn <= 1
    dropped = repair(path)
    assert dropped == stats.torn
    assert list(iter_span_lines(path)) == read, "repair keeps every readable span"
    more = _write(path, [{"trace_id": "t9", "span_id": f"after{i}", "name": "chat"} for i in range(3)])
    after = ReadStats()
    assert list(iter_span_lines(path, after)) == read + more and after.torn == 0


def test_a_torn_block_is_counted(tmp_path: Path) -> None:
    path = tmp_path / COMPRESSED
    lines = _write(path, [{"trace_id": "t", "span_id": str(i), "name": "chat", "x": "y" * 500} for i in range(5)],
                   close=False)
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # the last span's block cut short
    stats = ReadStats()
    assert list(iter_span_lines(path, stats)) == lines[:-1] and stats.torn == 1


def test_a_damaged_middle_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from sparring.errors import InputError

    path = tmp_path / COMPRESSED
    _write(path, [{"trace_id": "t", "span_id": str(i), "name": "chat", "x": "y" * 5000 + str(i)} for i in range(40)])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=COMPRESSED):
        list(iter_span_lines(path))


def test_span_path_keeps_an_older_directory_plain(tmp_path: Path) -> None:
    assert span_path(tmp_path) == tmp_path / COMPRESSED
    (tmp_path / PLAIN).write_text("")
    assert span_path(tmp_path) == tmp_path / PLAIN


def test_an_older_run_directory_is_read_by_every_command(tmp_path: Path) -> None:
    """A run directory as sparring wrote it before compression (its spans in a plain traces.jsonl):
    trace, replay, report, stats and filter read its spans, and a resume there keeps to the plain file."""
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=6, concurrency=2)
        run = tmp_path / "run"
        made = run_cli("run", str(config), "--out", str(run), "-q", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        (run / PLAIN).write_bytes(b"".join(iter_span_lines(run / COMPRESSED)))
        (run / COMPRESSED).unlink()
        (run / "report.html").unlink()
        record = json.loads((run / "dialogues.jsonl").read_text().splitlines()[0])
        shown = run_cli("trace", str(run), record["id"], "--json", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["spans"], "the spans of the dialogue"
        replay = run_cli("trace", str(run), record["id"], "--replay", cwd=tmp_path)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert run_cli("report", str(run), cwd=tmp_path).returncode == 0
        assert "tokens" in (run / "report.html").read_text()
        assert run_cli("stats", str(run), "--no-embeddings", cwd=tmp_path).returncode == 0
        filtered = run_cli("filter", str(run), "--out", str(tmp_path / "kept"), cwd=tmp_path)
        assert filtered.returncode == 0, filtered.stderr
        assert record["trace_id"] in {s["trace_id"] for s in iter_spans(tmp_path / "kept")}
        resumed = run_cli("resume", str(run), "-q", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert not (run / COMPRESSED).exists() and len(list(iter_spans(run))) > 0


def test_a_run_killed_mid_write_and_resumed_keeps_every_trace(tmp_path: Path) -> None:
    with canned_server(delay_s=0.01) as server:
        config = write_config(tmp_path, server.base_url, dialogues=24, concurrency=4)
        run_dir = tmp_path / "run"
        kill_and_resume(config, run_dir, server, kills=4, seed=26)
    check_consistent(run_dir, expected_ids(config))  # the span file whole: every frame closed, no torn span
    assert not (run_dir / PLAIN).exists()
    traced = {s["trace_id"] for s in iter_spans(run_dir)}
    dialogues = [json.loads(line) for line in (run_dir / "dialogues.jsonl").read_text().splitlines()]
    assert {d["trace_id"] for d in dialogues} <= traced, "every dialogue's trace is in the span file"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(run.get("status") for run in manifest["runs"])
    replayed = run_cli("trace", str(run_dir), dialogues[-1]["id"], "--replay", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
