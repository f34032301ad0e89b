"""Bad run configs: each mistake gives one message naming the file, the key path and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.graphs.run_config import load_config
from tests.cli import run_cli

SECRET = "sk-live-Qm9vYmFyYmF6cXV4"

# (yaml text, the message's exact beginning after "<file>: ", a substring the message must not contain)
BAD_FILES = [
    pytest.param("nmae: x\n",
                 "nmae (line 1): unknown key 'nmae' (did you mean 'name'?)", None, id="unknown-top-key"),
    pytest.param("backend:\n  kind: vllm\n  model: m\n  max_inflight: 4\n",
                 "backend.max_inflight (line 4): unknown key 'max_inflight' (did you mean 'max_in_flight'?)", None,
                 id="unknown-nested-key"),
    pytest.param("sampling:\n  critic:\n    temprature: 0.1\n",
                 "sampling.critic.temprature (line 3): unknown key 'temprature' (did you mean 'temperature'?)", None,
                 id="unknown-deep-key"),
    pytest.param("seed: 1\nconcurrency: lots\n",
                 "concurrency (line 2): Input should be a valid integer", None, id="wrong-type"),
    pytest.param("backend: vllm\n",
                 "backend (line 1): Input should be a valid dictionary", None, id="scalar-for-a-block"),
    pytest.param("name: r\nbackend:\n  max_in_flight: 0\n",
                 "backend.max_in_flight (line 3): Input should be greater than or equal to 1 (got 0)", None,
                 id="max_in_flight-0"),
    pytest.param("backend:\n  kind: nope\n",
                 "backend.kind (line 2): Input should be 'embedded', 'vllm' or 'openai_compat' (got 'nope')", None,
                 id="kind-nope"),
    pytest.param("sampling:\n  critic:\n    temperature: 5\n",
                 "sampling.critic.temperature (line 3): Input should be less than or equal to 2 (got 5)", None,
                 id="temperature-too-high"),
    pytest.param("backend:\n  retry:\n    attempts: 0\n",
                 "backend.retry.attempts (line 3): Input should be greater than or equal to 1 (got 0)", None,
                 id="retry-attempts-0"),
    pytest.param("name: bad/name\n",
                 "name (line 1): name may use letters, digits, '.', '_' and '-' (it names a folder) (got 'bad/name')",
                 None, id="name-not-a-folder-name"),
    pytest.param("name: r\nbackend:\n  kind: openai_compat\n  model: m\n",
                 "backend (line 2): openai_compat needs 'base_url', e.g. http://localhost:8000/v1", None,
                 id="openai_compat-without-base_url"),
    pytest.param("backend:\n  kind: openai_compat\n  base_url: http://localhost:8000/v1\n",
                 "backend (line 1): openai_compat needs 'model' (the served model name)", None,
                 id="openai_compat-without-model"),
    pytest.param("backend:\n  kind: openai_compat\n  model: m\n  base_url: localhost:8000\n",
                 "backend.base_url (line 4): base_url must start with http:// or https:// (got 'localhost:8000')",
                 None, id="base_url-no-scheme"),
    pytest.param("backend:\n  kind: openai_compat\n  model: m\n  base_url: http://me:hunter22@host/v1\n",
                 "backend.base_url (line 4): base_url must not carry a user or password (user:pass@host): give the "
                 "key through api_key_env (the URL is not shown)", "hunter22", id="base_url-with-credentials"),
    pytest.param("backend:\n  kind: vllm\n",
                 "backend (line 1): vllm needs 'model' (a HF id or a local folder)", None, id="vllm-without-model"),
    pytest.param("backend:\n  model: foo\n",
                 "backend (line 1): embedded always runs SmolLM2-135M-Instruct; use kind: vllm", None,
                 id="embedded-with-model"),
    pytest.param(f"backend:\n  kind: openai_compat\n  model: m\n  base_url: http://x/v1\n  api_key: {SECRET}\n",
                 "backend.api_key (line 5): unknown key 'api_key' (did you mean 'api_key_env'?); "
                 "secrets never go in a file", SECRET, id="api_key-in-file"),
    pytest.param(f"backend:\n  kind: openai_compat\n  model: m\n  base_url: http://x/v1\n  api_key_env: {SECRET}\n",
                 "backend.api_key_env (line 5): api_key_env must be the NAME of an environment variable, not the "
                 "key itself", SECRET, id="key-pasted-into-api_key_env"),
    pytest.param("name: r\nbackend:\n  kind: vllm\n   model: x\n",
                 "(line 4): YAML syntax error: mapping values are not allowed here", None, id="yaml-syntax"),
    pytest.param("name: [r\nseed: 1\n",
                 "(line 2): YAML syntax error: expected ',' or ']', but got ':' "
                 "(while parsing a flow sequence that starts on line 1)", None, id="yaml-unclosed-flow"),
    pytest.param("name: r\nbackend:\n  kind: vllm\n  kind: embedded\n",
                 "backend.kind (line 4): key 'kind' is given twice", None, id="duplicate-key"),
    pytest.param("- a\n- b\n",
                 "(line 1): the config must be a mapping of keys to values", None, id="not-a-mapping"),
    pytest.param("name: r\nworkers: 2\n",
                 "workers (line 2): 2 workers need backend kind openai_compat; the embedded engine lives in one "
                 "process (use workers: 1)", None, id="workers-with-an-in-process-engine"),
    pytest.param("concurrency: 2\nbackend:\n  kind: openai_compat\n  model: m\n  base_url: http://x/v1\n"
                 "workers: 3\n",
                 "workers (line 6): 3 workers is more than concurrency (2) or backend.max_in_flight (64): each "
                 "worker needs at least one of each", None, id="more-workers-than-concurrency"),
    pytest.param("workers: 0\n",
                 "workers (line 1): Input should be greater than or equal to 1 (got 0)", None, id="workers-0"),
]


def _error(path: Path | None, overrides: list[str] | None = None) -> str:
    with pytest.raises(InputError) as info:
        load_config(path, overrides or [])
    return str(info.value)


@pytest.mark.parametrize(("text", "expected", "forbidden"), BAD_FILES)
def test_bad_file(tmp_path: Path, text: str, expected: str, forbidden: str | None) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    message = _error(path)
    assert message.startswith(f"{path}: {expected}"), message
    assert "\n" not in message
    if forbidden:
        assert forbidden not in message


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: config file not found"


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path}: config file is a directory, expected a YAML file"


def test_empty_file_means_every_default(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    config = load_config(path)
    assert config.backend.kind == "embedded" and config.concurrency == 16


def test_overrides_apply_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("name: mine\nbackend:\n  max_in_flight: 4\n")
    config = load_config(path, ["backend.max_in_flight=8", "sampling.critic.temperature=0.3",
                                "backend.engine_args={max_num_seqs: 8}", "name=other"])
    assert config.backend.max_in_flight == 8
    assert config.sampling.critic.temperature == 0.3
    assert config.sampling.critic.max_tokens == 600  # the rest of the stage keeps its defaults
    assert config.backend.engine_args == {"max_num_seqs": 8}
    assert config.name == "other"


def test_a_stage_keeps_its_own_defaults_for_keys_not_given(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("sampling:\n  judge:\n    temperature: 0.2\n  critic:\n    max_tokens: 100\n")
    sampling = load_config(path).sampling
    assert (sampling.judge.temperature, sampling.judge.max_tokens, sampling.judge.logprobs) == (0.2, 8, 5)
    assert (sampling.critic.temperature, sampling.critic.max_tokens) == (0.0, 100)


def test_overrides_alone_can_switch_backend() -> None:
    config = load_config(None, ["backend.kind=openai_compat", "backend.model=m", "backend.base_url=http://h:1/v1"])
    backend = config.backend
    assert (backend.kind, backend.model, backend.base_url) == ("openai_compat", "m", "http://h:1/v1")


BAD_OVERRIDES = [
    pytest.param(["backend.max_in_flight=0"],
                 "--set: backend.max_in_flight: Input should be greater than or equal to 1 (got 0)", id="bad-value"),
    pytest.param(["backend.kind=nope"],
                 "--set: backend.kind: Input should be 'embedded', 'vllm' or 'openai_compat' (got 'nope')",
                 id="bad-kind"),
    pytest.param(["backend.max_inflight=3"],
                 "--set: backend.max_inflight: unknown key 'max_inflight' (did you mean 'max_in_flight'?)",
                 id="unknown-key"),
    pytest.param(["backend.kind.sub=1"],
                 "--set: backend.kind: Input should be 'embedded', 'vllm' or 'openai_compat'", id="into-a-scalar"),
    pytest.param(["nokey"], "--set 'nokey': expected dotted.key=value", id="no-equals"),
    pytest.param(["backend..kind=x"], "--set 'backend..kind=x': the key must be a dotted path", id="empty-part"),
    pytest.param(["name=[unclosed"], "--set name: the value is not valid YAML", id="bad-yaml-value"),
    pytest.param([f"backend.api_key={SECRET}"],
                 "--set: backend.api_key: unknown key 'api_key' (did you mean 'api_key_env'?); secrets never go",
                 id="api_key"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_OVERRIDES)
def test_bad_override(overrides: list[str], expected: str) -> None:
    message = _error(None, overrides)
    assert message.startswith(expected), message
    assert SECRET not in message


def test_override_error_is_blamed_on_set_not_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("name: r\nbackend:\n  kind: vllm\n  model: m\n")
    assert _error(path, ["backend.max_in_flight=-1"]).startswith("--set: backend.max_in_flight: ")
    assert _error(path, ["backend.kind.x=1"]) == \
        "--set backend.kind.x: backend.kind is not a mapping, it cannot have keys"
    # An error in the file is still the file's, even with overrides present.
    path.write_text("name: r\nconcurrency: 0\n")
    assert _error(path, ["backend.max_in_flight=8"]).startswith(f"{path}: concurrency (line 2): ")


@pytest.mark.parametrize(("text", "args", "expected"), [
    pytest.param("backend:\n  max_in_flight: 0\n", [],
                 "bad.yaml: backend.max_in_flight (line 2): Input should be greater than or equal to 1", id="file"),
    pytest.param("name: r\n", ["--set", "backend.kind=nope"], "--set: backend.kind: Input should be", id="set"),
    pytest.param("name: [r\n", [], "bad.yaml: (line 2): YAML syntax error", id="syntax"),
])
def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, text: str, args: list[str], expected: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    before = sorted(tmp_path.rglob("*"))
    result = run_cli("doctor", "bad.yaml", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {expected}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no run directory


def test_cli_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("doctor", "nope.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, "error: nope.yaml: config file not found\n")
