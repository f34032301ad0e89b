"""A backend that cannot work is found before the run and named; one that dies mid-run is named after it.

Real servers throughout: the loopback server (auth, unknown model, wrong path), a port nothing
listens on, and a socket that accepts connections and never answers."""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from sparring.agents.backends.probe import probe_backends
from sparring.errors import BackendUnavailable
from tests.cli import run_cli
from tests.graphs.loopback_run import canned_server, read_lines, start_cli, wait_for_requests, write_config

KEY_ENV = "SPARRING_PROBE_TEST_KEY"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _edit(config, **backend):
    data = yaml.safe_load(config.read_text())
    data["backend"].update(backend)
    config.write_text(yaml.safe_dump(data))
    return config


def _refused(tmp_path, config, *needles, env=None):
    import os

    before = sorted(p.name for p in tmp_path.iterdir())
    if env:
        os.environ.update(env)
    try:
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"), "-q", cwd=tmp_path, timeout=120)
    finally:
        for name in env or {}:
            os.environ.pop(name, None)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"
    return lines[0]


def test_nothing_listening_is_named_before_the_run(tmp_path):
    port = _free_port()
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/v1", dialogues=4, concurrency=2)
    _refused(tmp_path, config, "backend backend", f"http://127.0.0.1:{port}/v1", "cannot connect")


def test_a_refused_key_is_named_and_the_key_never_printed(tmp_path):
    secret = "sk-proj-Zq8Zq8Zq8Zq8Zq8Zq8Zq8"
    with canned_server() as server:
        server.api_key = "the-right-key"
        config = _edit(write_config(tmp_path, server.base_url, dialogues=4, concurrency=2), api_key_env=KEY_ENV)
        line = _refused(tmp_path, config, "refused the API key", "HTTP 401", server.base_url, env={KEY_ENV: secret})
        assert server.stats.chat_requests == 0
    assert secret not in line


def test_an_unknown_model_is_named(tmp_path):
    with canned_server() as server:
        config = _edit(write_config(tmp_path, server.base_url, dialogues=4, concurrency=2), model="no-such-model")
        _refused(tmp_path, config, "does not serve model 'no-such-model'", "fake-model")


def test_a_server_answering_404_to_everything_is_named(tmp_path):
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url.removesuffix("/v1") + "/wrong", dialogues=4, concurrency=2)
        _refused(tmp_path, config, "HTTP 404", "ends in /v1")


def test_a_server_that_never_answers_is_named(tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel does), never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        config = write_config(tmp_path, url, dialogues=4, concurrency=2,
                              retry={"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.05, "timeout_s": 1})
        _refused(tmp_path, config, "no answer within 1 s", url)


async def test_probe_results_say_how_each_backend_was_checked():
    from sparring.agents.backends.backend_config import BackendConfig

    with canned_server() as server:
        results = await probe_backends({"listed": server.backend_config(),
                                        "engine": BackendConfig(kind="embedded")})
        assert results["listed"].detail.startswith("model listed by /models")
        assert "in-process engine" in results["engine"].detail
        assert server.stats.chat_requests == 0
        # Not listed (Ollama lists llama3:latest for llama3): a one-token call asks the server itself.
        server.model = "alias"
        with pytest.raises(BackendUnavailable, match="does not serve model 'other'"):
            await probe_backends({"b": server.backend_config(model="other")})
        # A server in trouble is not a wrong config: noted, and the run's retries take over.
        server.fail_share("http_500", 1.0)
        results = await probe_backends({"b": server.backend_config(model="other")})
        assert "HTTP 500: not verified" in results["b"].detail


def test_a_backend_that_dies_mid_run_is_named_at_the_end(tmp_path):
    with canned_server(delay_s=0.01) as server:
        config = write_config(tmp_path, server.base_url, dialogues=12, concurrency=2,
                              retry={"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.02, "timeout_s": 2})
        run_dir = tmp_path / "run"
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        wait_for_requests(proc, server, 12)
        server.fail_share("status", 1.0, status=503, message="upstream connect error")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    failed = [r for r in read_lines(run_dir / "dialogues.jsonl") if r["status"] == "failed"]
    assert failed
    last = err.strip().splitlines()[-1]
    assert f"{len(failed)} of {len(failed)} with" in last and "HTTP 503" in last, err
    causes = json.loads((run_dir / "manifest.json").read_text())["runs"][-1]["failure_causes"]
    assert causes[0]["dialogues"] == len(failed) and "HTTP 503" in causes[0]["cause"]
