"""``sparring doctor`` end to end (a subprocess) against the fault-injection server and a dead port."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli import run_cli
from tests.engines import free_port
from tests.fakeserver import FakeOpenAIServer


def _config(tmp_path: Path, base_url: str, model: str) -> Path:
    path = tmp_path / "doctor.yaml"
    path.write_text(f"backend:\n  kind: openai_compat\n  base_url: {base_url}\n  model: {model}\n"
                    "  retry: {attempts: 2, initial_wait_s: 0.01, timeout_s: 10}\n")
    return path


def _doctor(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("doctor", str(config), cwd=config.parent)


def _rows(stdout: str) -> dict[str, str]:
    rows = {}
    for line in stdout.splitlines():
        key, _, value = line.strip().partition("  ")
        if value:
            rows[key.strip()] = value.strip()
    return rows


def test_doctor_reports_a_working_server(tmp_path: Path, fake_server: FakeOpenAIServer) -> None:
    fake_server.fail("http_500")  # a transient hiccup on the way is retried, not reported
    result = _doctor(_config(tmp_path, fake_server.base_url, fake_server.model))
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["backend"] == "openai_compat"
    assert rows["reachable"] == "yes"
    assert rows["model"] == fake_server.model
    assert rows["structured output"] == "json_schema"
    assert rows["base_url"] == fake_server.base_url
    assert result.stdout.rstrip().endswith("ok")
    assert fake_server.stats.chat_requests == 3  # the failed probe, its retry, the structured probe


def test_doctor_fails_on_a_dead_port(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    result = _doctor(_config(tmp_path, base_url, "m"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"doctor: FAILED: TransientBackendError: connection error to {base_url}: ")
    assert result.stderr.rstrip().endswith("(gave up after 2 attempts)")
    assert "Traceback" not in result.stderr
    assert _rows(result.stdout)["backend"] == "openai_compat"


def test_doctor_probes_every_backend_the_config_uses(tmp_path: Path, fake_server: FakeOpenAIServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    path = tmp_path / "two.yaml"
    retry = "{attempts: 1, timeout_s: 5}"
    path.write_text(f"backends:\n  default: {{kind: openai_compat, base_url: {fake_server.base_url}, "
                    f"model: {fake_server.model}}}\n  target: {{kind: openai_compat, base_url: {dead}, model: m, "
                    f"retry: {retry}}}\n  spare: {{kind: openai_compat, base_url: {dead}, model: x}}\n"
                    "roles: {side_b: target}\n")
    result = _doctor(path)
    assert result.returncode == 1
    assert "backends.default (roles: planner, side_a, critic, reviser, verifier)" in result.stdout
    assert "backends.target (roles: side_b)" in result.stdout and "spare" not in result.stdout
    assert result.stderr.startswith(f"doctor: FAILED: backends.target: TransientBackendError: connection error "
                                    f"to {dead}: ")
    assert fake_server.stats.chat_requests == 2  # the default backend's two probes
