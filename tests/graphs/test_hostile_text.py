"""Hostile model text stays data on the terminal: the loopback server replies with terminal escape
sequences, C1 controls and bidirectional overrides (in persona turns, critiques and revisions), the
config holds them too (topics, personas, a config file's name), and every command a user would run
on such a run prints none of those bytes, while the files and ``--json`` keep the exact text."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.loopback.canned import REVISED, agent_reply
from sparring.terminal import UNSAFE, dumps, visible
from tests.cli import run_cli
from tests.fakeserver import FakeOpenAIServer

SEQUENCES = {
    "OSC 52 clipboard write": "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "OSC 8 hyperlink": "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
    "OSC 0 window title": "\x1b]0;owned\x07",
    "CSI clear screen and colour": "\x1b[2J\x1b[H\x1b[31;1m",
    "CSI cursor up and erase line": "\x1b[1A\x1b[2K",
    "BEL": "\x07",
    "bare ESC": "\x1b",
    "DEL and backspace": "\x7f\x08",
    "carriage return": "\rhidden",
    "C1 CSI": "\x9b31m",
    "C1 OSC and ST": "\x9d0;c1 title\x9c",
    "bidi override": "\u202eevil\u202c",
    "bidi isolates": "\u2066\u2067\u2068x\u2069",
    "rich markup": "[link=http://evil.example/]rich[/link] [bold red]x[/]",
}
HOSTILE = "start " + " ".join(SEQUENCES.values()) + " end"


def replies_with(text: str) -> Callable[[dict[str, Any]], str]:
    """A loopback responder: the canned replies with ``text`` in every free text: persona turns, the
    critic's reasoning and evidence, revisions."""

    def reply(body: dict[str, Any]) -> str:
        canned = agent_reply(body)
        fmt = body.get("response_format") or {}
        title = ((fmt.get("json_schema") or {}).get("schema") or {}).get("title")
        if fmt.get("type") != "json_schema":
            return f"{canned} {text}"
        data = json.loads(canned)
        if title == "CritiqueOutput":
            data["reasoning"] = f"{data['reasoning']} {text}"
            for finding in data["violations"]:  # a quote of the turn (the critic's evidence must be one)
                finding["evidence"] = text
        elif title == "RevisionOutput":
            data["revision"] = f"{REVISED} {text}"
        return json.dumps(data)

    return reply


hostile_reply = replies_with(HOSTILE)


def hostile_config(folder: Path, base_url: str, name: str = "config.yaml", text: str = HOSTILE,
                   principles: list[str] | None = None) -> Path:
    """A config of 2 short dialogues on the loopback server at ``base_url``, ``text`` in its topic and a persona."""
    config = {
        "name": "hostile", "seed": 3, "concurrency": 2,
        "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model",
                    "retry": {"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.05, "timeout_s": 10}},
        "principles": {"sets": principles or ["quickstart"]},
        "dialogue": {"mode": "assistant", "max_turns": 2},
        "jobs": {"dialogues_per_scenario": 2},
        "report": {"embeddings": False},
        "scenarios": [{"topic": f"topic {text}", "subtopic": "a question",
                       "personas": [f"Ana: a customer {text}", "an adviser: knows the subject"]}],
    }
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


SGR = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A")
"""The colours rich (forced by FORCE_COLOR) and the trace viewer add themselves, and the cursor codes of rich's
status spinner (HOSTILE holds these last two too, but with OSCs that would still show if it leaked)."""
COLOUR = {**os.environ, "FORCE_COLOR": "1"}


def assert_clean(result: Any, what: str) -> None:
    """No UNSAFE character in stdout or stderr, but for the colours sparring adds itself."""
    for stream in ("stdout", "stderr"):
        found = UNSAFE.findall(SGR.sub("", getattr(result, stream)))
        assert not found, f"{what}: {stream} holds {sorted(set(found))!r}"


def strings(data: Any) -> list[str]:
    """Every string in ``data`` (JSON as loaded)."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in (*strings(k), *strings(v))]
    if isinstance(data, list):
        return [s for v in data for s in strings(v)]
    return []


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("hostile")
    with FakeOpenAIServer(responder=hostile_reply, record_requests=False) as server:
        config = hostile_config(folder, server.base_url)
        run = run_cli("run", str(config), "--out", str(folder / "run"), cwd=folder)
        yield folder, config, folder / "run", run, server


def test_the_run_prints_no_control_character_and_keeps_the_exact_text(hostile_run: Any) -> None:
    folder, _, run_dir, run, _ = hostile_run
    assert run.returncode == 0, run.stderr
    assert_clean(run, "run")
    rows = [json.loads(line) for line in (run_dir / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(HOSTILE in s for s in strings(rows)), "the files keep the exact text"
    pairs = [json.loads(line) for line in (run_dir / "preferences.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any(HOSTILE in s for s in strings(pairs))


@pytest.mark.parametrize("args", [
    ("trace", "{run}"), ("trace", "{run}", "{id}", "--full"), ("trace", "{run}", "{id}"),
    ("trace", "{run}", "--failed"), ("stats", "{run}", "--no-embeddings"), ("run", "{config}", "--dry-run"),
    ("doctor", "{config}"), ("principles", "list", "--set", "{principles}"),
    ("principles", "show", "hostile.*", "--set", "{principles}"), ("trace", "{run}", "{id}", "--replay"),
], ids=lambda a: " ".join(a))
def test_commands_print_no_control_character(hostile_run: Any, args: tuple[str, ...]) -> None:
    folder, config, run_dir, _, _ = hostile_run
    first = json.loads((run_dir / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()[0])
    principles = folder / "hostile.yaml"
    principles.write_text(yaml.safe_dump({"id": "hostile", "title": f"T {HOSTILE}", "principles": [
        {"id": "hostile.a", "category": "honesty", "text": f"Be honest {HOSTILE}", "critique": HOSTILE}]}),
        encoding="utf-8")
    values = {"run": str(run_dir), "id": first["id"], "config": str(config), "principles": str(principles)}
    result = run_cli(*(a.format(**values) for a in args), cwd=folder, env=COLOUR)  # rich writes colours, links
    assert result.returncode in (0, 1), result.stderr  # a replay of replies differs: exit 1, still clean
    assert_clean(result, " ".join(args))
    if args[:2] == ("trace", "{run}") and len(args) > 2 and args[3:] == ("--full",):
        assert visible(HOSTILE) in result.stdout, "the text is shown, escaped"


def test_trace_in_colour_prints_only_its_own_colours(hostile_run: Any) -> None:
    folder, _, run_dir, _, _ = hostile_run
    first = json.loads((run_dir / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()[0])
    from click.testing import CliRunner

    from sparring.graphs.commands.trace import trace

    result = CliRunner().invoke(trace, [str(run_dir), first["id"], "--full", "--color"], color=True)
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.output, "colours are on"
    assert_clean(result, "trace --color")


@pytest.mark.parametrize("args", [("trace", "{run}", "{id}", "--json"), ("trace", "{run}", "--json"),
                                  ("stats", "{run}", "--no-embeddings", "--json")], ids=lambda a: " ".join(a))
def test_json_outputs_keep_the_exact_text(hostile_run: Any, args: tuple[str, ...]) -> None:
    folder, _, run_dir, _, _ = hostile_run
    first = json.loads((run_dir / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()[0])
    result = run_cli(*(a.format(run=run_dir, id=first["id"]) for a in args), cwd=folder)
    assert result.returncode == 0, result.stderr
    assert_clean(result, " ".join(args))
    data = json.loads(result.stdout)
    if args[2:3] == ("{id}",):
        assert any(HOSTILE in s for s in strings(data)), "JSON decodes to the exact text"


def test_errors_and_config_values_print_no_control_character(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=hostile_reply, record_requests=False) as server:
        named = hostile_config(tmp_path, server.base_url, name="c\x1b]0;owned\x07\u202e.yaml")
        cases = [("run", str(tmp_path / "config.yaml"), "--set", f"backend.kind={HOSTILE}"),
                 ("run", str(named), "--set", "concurrency=0"),
                 ("trace", str(tmp_path), f"\x1b[2J{HOSTILE}"),
                 ("calibrate", str(named), "--per-label", "1", "--out", str(tmp_path / "cal"))]
        hostile_config(tmp_path, server.base_url)
        for args in cases:
            result = run_cli(*args, cwd=tmp_path)
            assert result.returncode in (0, 2, 3), result.stderr
            assert_clean(result, args[0])


@given(st.text())
def test_visible_leaves_no_unsafe_character_and_keeps_the_rest(text: str) -> None:
    shown = visible(text)
    assert not UNSAFE.search(shown)
    assert shown == text if not UNSAFE.search(text) else shown != text
    assert (shown.count("\n"), shown.count("\t")) == (text.count("\n"), text.count("\t"))
    assert visible(shown) == shown
    assert json.loads(dumps(text)) == text and not UNSAFE.search(dumps(text))
