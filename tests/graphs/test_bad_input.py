"""Every bad input through the real CLI: exit 2 (or the documented code), exactly one line on
stderr naming what is wrong (file, key, line, flag), no traceback, nothing written (the folder's
listing, sizes included, is the same before and after), and no key ever printed.

The cases run as subprocesses, a few at a time (a module fixture), and each is checked by its
own parametrized test. Configs that get past validation point at the embedded backend or at a
port nothing listens on, so no case starts an engine."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import run_cli

KEYS = {"hf": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz12", "gsk": "gsk_Q1w2E3r4T5y6U7i8O9p0AsDfGhJk",
        "sk": "sk-proj-Zq8Zq8Zq8Zq8Zq8Zq8Zq8Zq8"}
KEY_VAR = "SPARRING_BAD_INPUT_KEY"
SCENARIO = {"topic": "travel", "personas": ["Ana: a traveller", "an agent: books trips"]}


def _config(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "bad", "principles": {"sets": ["quickstart"]}, "scenarios": [SCENARIO],
                            "report": {"embeddings": False}}
    data.update(over)
    return data


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _openai(**backend: Any) -> dict[str, Any]:
    return _config(backend={"kind": "openai_compat", "model": "m", "base_url": _dead_url(), **backend})


@dataclass
class Case:
    setup: Callable[[Path], list[str]]
    """Writes what the case needs into the folder; returns the command line."""
    expect: tuple[str, ...]
    """Text the one error line must contain."""
    status: int = 2
    env: dict[str, str] | None = None
    secrets: tuple[str, ...] = ()
    """Text that must appear nowhere in the output."""


def write(path: Path, content: str | bytes | dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, dict):
        content = yaml.safe_dump(content, sort_keys=False)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def run_with(content: str | bytes | dict[str, Any], *extra: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        return ["run", str(write(d / "c.yaml", content)), "--out", str(d / "out"), *extra]
    return setup


def fake_run(d: Path, manifest: dict[str, Any] | str | None = None, dialogues: str = "") -> Path:
    """A run directory as the files alone make it (no run needed to make it)."""
    run = d / "run"
    run.mkdir()
    if manifest is None:
        manifest = {"name": "bad", "config": _config(), "config_fingerprint": "x", "runs": [], "principles": []}
    write(run / "manifest.json", manifest if isinstance(manifest, str) else json.dumps(manifest))
    write(run / "dialogues.jsonl", dialogues)
    return run


def principle_file(d: Path, text: str) -> dict[str, Any]:
    write(d / "mine.yaml", text)
    return _config(principles={"sets": ["mine.yaml"]})


def fewshot(d: Path, text: str) -> dict[str, Any]:
    write(d / "shots.jsonl", text)
    return _config(dialogue={"few_shot": ["shots.jsonl"]})


CASES: dict[str, Case] = {
    # -- the config file itself
    "yaml-syntax": Case(run_with("name: bad\nscenarios: [\n"), ("c.yaml", "line", "YAML syntax error")),
    "tabs": Case(run_with("name: bad\nbackend:\n\tkind: embedded\n"), ("c.yaml", "line 3")),
    "duplicate-key": Case(run_with("name: a\nname: b\n"), ("c.yaml", "name (line 2)", "given twice")),
    "unknown-top-key": Case(run_with(_config(concurency=4)), ("concurency", "line", "did you mean 'concurrency'")),
    "unknown-nested-key": Case(run_with(_config(backend={"retry": {"atempts": 3}})),
                               ("backend.retry.atempts", "did you mean 'attempts'")),
    "unknown-deep-key": Case(run_with(_config(sampling={"critic": {"temprature": 0.1}})),
                             ("sampling.critic.temprature", "unknown key")),
    "wrong-type": Case(run_with(_config(concurrency="many")), ("concurrency (line", "integer")),
    "out-of-range": Case(run_with(_config(concurrency=0)), ("concurrency (line", "greater than or equal to 1")),
    "out-of-range-float": Case(run_with(_config(jobs={"control_share": 1.5})), ("jobs.control_share",)),
    "negative-count": Case(run_with(_config(jobs={"dialogues_per_scenario": -2})), ("jobs.dialogues_per_scenario",)),
    "empty-file": Case(run_with(""), ("c.yaml", "no scenarios")),
    "binary-file": Case(run_with(bytes(range(256)) * 4), ("c.yaml", "cannot read")),
    "not-utf8": Case(run_with("name: caf\xe9\n".encode("latin-1")), ("c.yaml", "cannot read")),
    "a-directory": Case(lambda d: ["run", str((d / "dir.yaml").mkdir() or d / "dir.yaml")],
                        ("dir.yaml", "is a directory, not a config file", "no plan.json")),
    "a-directory-with-flags": Case(lambda d: ["run", str((d / "x.yaml").mkdir() or d / "x.yaml"), "--max-dialogues",
                                              "3", "--out", str(d / "o")], ("x.yaml", "is a directory, not a config")),
    "a-directory-as-principle-set": Case(lambda d: run_with(_config(principles={"sets": [
        str((d / "p.yaml").mkdir() or d / "p.yaml")]}))(d), ("p.yaml", "is a directory")),
    "a-directory-as-fewshot": Case(lambda d: run_with(_config(dialogue={"few_shot": [
        str((d / "s.jsonl").mkdir() or d / "s.jsonl")]}))(d), ("s.jsonl", "is a directory")),
    "missing-file": Case(lambda d: ["run", str(d / "nope.yaml")], ("nope.yaml", "not found")),
    "not-a-mapping": Case(run_with("- a\n- b\n"), ("c.yaml", "must be a mapping")),
    "bad-name": Case(run_with(_config(name="../escape")), ("name (line", "names a folder")),
    "workers-on-engine": Case(run_with(_config(workers=2)), ("workers", "openai_compat")),
    # -- principle files, few-shot files, scenario blocks
    "principle-set-missing": Case(run_with(_config(principles={"sets": ["nowhere.yaml"]})), ("nowhere.yaml",)),
    "principle-file-syntax": Case(lambda d: run_with(principle_file(d, "id: x\nprinciples: [\n"))(d),
                                  ("mine.yaml", "YAML syntax error")),
    "principle-file-unknown-key": Case(lambda d: run_with(principle_file(
        d, "id: mine\ntitle: Mine\nprinciples:\n  - id: mine.a\n    category: honesty\n    text: t\n    critque: c\n"))(d),
        ("mine.yaml", "critque")),
    "principle-id-unknown": Case(run_with(_config(principles={"sets": ["quickstart"], "ids": ["no.such"]})),
                                 ("no.such",)),
    "fewshot-missing": Case(run_with(_config(dialogue={"few_shot": ["gone.jsonl"]})), ("gone.jsonl", "not found")),
    "fewshot-broken-line": Case(lambda d: run_with(fewshot(d, '{"turns": [\n'))(d), ("shots.jsonl", "line 1")),
    "fewshot-wrong-shape": Case(lambda d: run_with(fewshot(d, '{"turns": [], "dialogue": "A: hi"}\n'))(d),
                                ("shots.jsonl", "line 1")),
    "one-persona": Case(run_with(_config(scenarios=[{"topic": "t", "personas": ["Ana: x"]}])), ("personas",)),
    "blank-topic": Case(run_with(_config(scenarios=[{**SCENARIO, "topic": "   "}])),
                        ("scenarios[0].topic", "topic is blank")),
    "blank-persona-name": Case(run_with(_config(scenarios=[{"topic": "t", "personas": [{"name": "  "}, "B: x"]}])),
                               ("scenarios[0].personas[0].name", "needs a name")),
    "no-scenarios": Case(run_with(_config(scenarios=[])), ("no scenarios",)),
    # -- flags
    "set-without-equals": Case(run_with(_config(), "--set", "concurrency"), ("--set", "expected dotted.key=value")),
    "set-unknown-key": Case(run_with(_config(), "--set", "backend.nope=1"), ("--set", "backend.nope", "unknown key")),
    "set-bad-value": Case(run_with(_config(), "--set", "concurrency=-1"), ("--set", "concurrency")),
    "set-bad-yaml": Case(run_with(_config(), "--set", "concurrency=[1"), ("--set concurrency", "not valid YAML")),
    "max-dialogues-negative": Case(run_with(_config(), "--max-dialogues", "-1"), ("--max-dialogues",)),
    "max-failures-negative": Case(run_with(_config(), "--max-failures", "-3"), ("--max-failures",)),
    "out-onto-a-file": Case(lambda d: ["run", str(write(d / "c.yaml", _config())), "--out",
                                       str(write(d / "taken", "x"))], ("--out", "taken", "is a file")),
    "out-below-a-file": Case(lambda d: ["run", str(write(d / "c.yaml", _config())), "--out",
                                        str(write(d / "taken", "x") / "below")], ("a part of its path is a file",)),
    # -- backends
    "base-url-credentials": Case(run_with(_openai(base_url="http://user:hunter22@localhost:8000/v1")),
                                 ("must not carry a user or password",), secrets=("hunter22",)),
    "base-url-no-host": Case(run_with(_openai(base_url="http:///v1")), ("has no host",)),
    "base-url-port-range": Case(run_with(_openai(base_url="http://localhost:99999/v1")), ("port out of range",)),
    "key-variable-unset": Case(run_with(_openai(api_key_env=KEY_VAR)), (KEY_VAR, "is not set")),
    "key-variable-empty": Case(run_with(_openai(api_key_env=KEY_VAR)), (KEY_VAR, "is not set"), env={KEY_VAR: ""}),
    **{f"key-as-variable-name-{kind}": Case(run_with(_openai(api_key_env=key)), ("looks like an API key",),
                                            secrets=(key,)) for kind, key in KEYS.items() if kind != "sk"},
    "key-as-variable-name-sk": Case(run_with(_openai(api_key_env=KEYS["sk"])), ("api_key_env", "NAME"),
                                    secrets=(KEYS["sk"],)),
    "refused-connection": Case(run_with(_openai()), ("backend backend", "cannot connect")),
    "key-in-set-value": Case(run_with(_openai(), "--set", f"backend.api_key_env={KEYS['hf']}"),
                             ("--set", "looks like an API key"), secrets=(KEYS["hf"],)),
    # -- run directories
    "resume-not-a-run": Case(lambda d: ["resume", str((d / "empty").mkdir() or d / "empty")], ("no manifest.json",)),
    "resume-missing": Case(lambda d: ["resume", str(d / "gone")], ("gone", "no manifest.json")),
    "resume-truncated-manifest": Case(lambda d: ["resume", str(fake_run(d, '{"name": "bad", "conf'))],
                                      ("manifest.json", "not valid JSON")),
    "resume-broken-middle-line": Case(lambda d: ["resume", str(fake_run(d, dialogues='{"id": "a"}\n{"id": \n{}\n'))],
                                      ("dialogues.jsonl", "line 2")),
    "resume-config-no-longer-valid": Case(lambda d: ["resume", str(fake_run(d, {
        "name": "bad", "config": {**_config(), "retired_key": 1}, "runs": []}))],
        ("manifest.json", "retired_key", "no longer validate")),
    "run-into-another-configs-dir": Case(lambda d: ["run", str(write(d / "c.yaml", _config())), "--out",
                                                    str(fake_run(d))], ("different config", "--force")),
    "resume-a-filtered-copy": Case(lambda d: ["resume", str(fake_run(d, {
        "name": "bad", "config": _config(), "runs": [], "parent": {"run_dir": "x"}}))], ("filtered copy",)),
    # -- commands on finished runs
    "export-missing-run": Case(lambda d: ["export", str(d / "gone"), "--format", "sft", "--out", str(d / "o")],
                               ("gone",)),
    "export-out-onto-a-file": Case(lambda d: ["export", str(fake_run(d)), "--format", "sft", "--out",
                                              str(write(d / "taken", "x"))], ("--out", "taken", "is a file")),
    "export-no-destination": Case(lambda d: ["export", str(fake_run(d)), "--format", "sft"], ("--out",)),
    "export-bad-format": Case(lambda d: ["export", str(fake_run(d)), "--format", "csv", "--out", str(d / "o")],
                              ("--format",)),
    "trace-missing-run": Case(lambda d: ["trace", str(d / "gone")], ("gone", "not a sparring run directory")),
    "trace-unknown-dialogue": Case(lambda d: ["trace", str(fake_run(d, dialogues='{"id": "a", "trace_id": "t"}\n')),
                                              "zzz"], ("no dialogue or trace 'zzz'",)),
    "stats-not-a-run": Case(lambda d: ["stats", str((d / "empty").mkdir() or d / "empty")], ("no manifest.json",)),
    "filter-missing-run": Case(lambda d: ["filter", str(d / "gone"), "--out", str(d / "o")], ("gone",)),
    "filter-out-not-empty": Case(lambda d: ["filter", str(fake_run(d)), "--out",
                                            str(write(d / "full" / "x", "x").parent)], ("full", "not empty")),
    "filter-turn-bounds": Case(lambda d: ["filter", str(fake_run(d)), "--out", str(d / "o"), "--min-turns", "5",
                                          "--max-turns", "2"], ("--min-turns",)),
    "report-not-a-run": Case(lambda d: ["report", str(d / "gone")], ("gone", "no manifest.json")),
}


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size if p.is_file() else -1) for p in folder.rglob("*"))


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    before: list[tuple[str, int]]
    after: list[tuple[str, int]]


def _run_case(name: str, case: Case, root: Path) -> Outcome:
    folder = root / name
    folder.mkdir()
    args = case.setup(folder)
    before = _listing(folder)
    env = {**{k: v for k, v in os.environ.items() if k != KEY_VAR}, **(case.env or {})}
    result = run_cli(*args, cwd=folder, timeout=60, env=env)
    return Outcome(result.returncode, result.stdout, result.stderr, before, _listing(folder))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Outcome]:
    """The outcome of every case selected to run; the CLI runs a few at a time (each is mostly
    Python start-up)."""
    root = tmp_path_factory.mktemp("bad-input")
    selected = {item.callspec.params["name"] for item in request.session.items
                if hasattr(item, "callspec") and item.callspec.params.get("name") in CASES}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(_run_case, name, case, root) for name, case in CASES.items() if name in selected}
        out = {}
        for name, future in futures.items():
            try:
                out[name] = future.result()
            except Exception as exc:  # reported by that case's test, not by every test
                out[name] = Outcome(-1, "", f"the case did not run: {exc!r}", [], [])
        return out


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_nothing_written(name: str, outcomes: dict[str, Outcome]) -> None:
    case, outcome = CASES[name], outcomes[name]
    assert outcome.status == case.status, (outcome.stdout, outcome.stderr)
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in case.expect:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert outcome.after == outcome.before, "something was written"
    for secret in case.secrets:
        assert secret not in outcome.stderr and secret not in outcome.stdout
