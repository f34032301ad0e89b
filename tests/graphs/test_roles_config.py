"""Named backends and roles in a config: how roles resolve, the mistakes (one line naming the key and
its line, exit 2, nothing written), and old configs and run directories left exactly as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.graphs.roles import ROLES, backends_in_use, models_by_role, role_backends, roles_in_use
from sparring.graphs.run_config import RunConfig, load_config
from sparring.graphs.runtime.manifest import fingerprint, new_manifest
from sparring.graphs.runtime.run_request import describe_request, iter_jobs, request_from_config
from tests.cli import REPO, run_cli

JUDGE = "  default: {kind: openai_compat, base_url: http://judge:8000/v1, model: big-judge}\n"
TARGET = "  target: {kind: openai_compat, base_url: http://policy:8000/v1, model: my-policy, max_in_flight: 8}\n"
TWO = f"backends:\n{JUDGE}{TARGET}roles:\n  side_b: target\n"

BAD = [
    pytest.param("backend: {kind: embedded}\n" + TWO,
                 "backends (line 2): give either backend: (one backend for every role) or backends: (named "
                 "backends, with roles:), not both", id="backend-and-backends"),
    pytest.param(TWO.replace("side_b: target", "side_b: targte"),
                 "roles.side_b (line 5): no backend named 'targte'; the config names 'default', 'target'",
                 id="unknown-backend-name"),
    pytest.param("roles:\n  critic: judge\n",
                 "roles.critic (line 2): no backend named 'judge'; with the single backend: block its name is "
                 "'default'", id="unknown-name-with-the-shorthand"),
    pytest.param(f"backends:\n{TARGET}roles:\n  side_b: target\n",
                 "roles (line 3): role planner has no backend: name one for it under roles:, or add a backend "
                 "named 'default' under backends:", id="role-on-nothing"),
    pytest.param(f"backends:\n{TARGET}",
                 "backends (line 1): role planner has no backend", id="role-on-nothing-without-roles"),
    pytest.param("backends:\n  default: {kind: embedded}\n  local: {kind: vllm, model: some/model}\n"
                 "roles:\n  side_b: local\n",
                 "backends.local (line 3): a second in-process engine (vllm; backends.default is one already): "
                 "one process runs one engine", id="two-in-process-engines"),
    pytest.param(f"workers: 2\nbackends:\n{JUDGE}  target: {{kind: embedded}}\nroles:\n  side_b: target\n",
                 "workers (line 1): 2 workers need backend kind openai_compat; backends.target: the embedded "
                 "engine lives in one process (use workers: 1)", id="workers-with-an-in-process-engine"),
    pytest.param(f"workers: 9\nconcurrency: 16\n{TWO}",
                 "workers (line 1): 9 workers is more than concurrency (16) or backends.target.max_in_flight (8)",
                 id="more-workers-than-a-backend-has-slots"),
    pytest.param("backends: {}\n", "backends (line 1): names no backend", id="empty-backends"),
    pytest.param("backends:\n  'my judge': {kind: embedded}\n",
                 "backends.my judge (line 2): a backend name may use letters, digits, '_' and '-'", id="bad-name"),
    pytest.param(f"{TWO}  critc: target\n",
                 "roles.critc (line 6): unknown key 'critc' (did you mean 'critic'?)", id="unknown-role"),
    pytest.param("backends:\n  default:\n    kind: openai_compat\n    model: m\n    base_url: http://x/v1\n"
                 "    max_inflight: 3\n",
                 "backends.default.max_inflight (line 6): unknown key 'max_inflight' (did you mean 'max_in_flight'?)",
                 id="unknown-key-in-a-named-backend"),
    pytest.param("backend:\n  session_header: 'x session'\n",
                 "backend (line 1): session_header must be an HTTP header name", id="bad-session-header"),
    pytest.param("dialogue:\n  mode: redteam\n  attack_strategies: ['a: one', 'a: two']\n",
                 "dialogue.attack_strategies (line 3): strategy names must differ: a is given twice",
                 id="strategy-twice"),
    pytest.param("dialogue:\n  attack_strategies: ['Bad Name: x']\n",
                 "dialogue.attack_strategies[0].name (line 2): a strategy name may use lowercase letters, digits, "
                 "'_' and '-' (at most 40) (got 'Bad Name')", id="strategy-name"),
    pytest.param("dialogue:\n  mode: redteam\njobs:\n  briefed_side: drawn\n",
                 "jobs.briefed_side (line 4): in redteam mode the attacker (side A) is briefed and the target "
                 "(side B) judged, by definition", id="redteam-briefed-side"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_roles_config_names_the_key_and_its_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {expected}"), str(info.value)


@pytest.mark.parametrize("text", [BAD[i].values[0] for i in (0, 1, 3, 5, 6)])
def test_the_cli_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, text: str) -> None:
    (tmp_path / "bad.yaml").write_text(text + "scenarios:\n  - {topic: t, personas: [a, b]}\n")
    before = sorted(tmp_path.rglob("*"))
    result = run_cli("run", "bad.yaml", "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: bad.yaml: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_a_role_override_on_the_command_line_is_blamed_on_set(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(TWO)
    with pytest.raises(InputError) as info:
        load_config(path, ["roles.critic=nobody"])
    assert str(info.value).startswith("--set: roles.critic: no backend named 'nobody'")


def test_roles_resolve_to_their_backend_or_default(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(TWO + "dialogue: {summaries: true}\n")
    cfg = load_config(path)
    assert roles_in_use(cfg) == ("planner", "side_a", "side_b", "critic", "reviser", "verifier", "summary")
    assert role_backends(cfg) == {**{r: "default" for r in roles_in_use(cfg)}, "side_b": "target"}
    assert list(backends_in_use(cfg)) == ["default", "target"]
    assert models_by_role(cfg)["side_b"] == "my-policy" and models_by_role(cfg)["critic"] == "big-judge"
    assert cfg.backend.model == "big-judge"  # reads as the default one


def test_an_unused_backend_is_not_started_and_the_shorthand_is_one_backend() -> None:
    cfg = RunConfig.model_validate({"backends": {"default": {"kind": "embedded"},
                                                 "spare": {"kind": "vllm", "model": "x"}}})
    assert list(backends_in_use(cfg)) == ["default"]  # a second engine no role uses is never started
    plain = RunConfig()
    assert backends_in_use(plain) == {"default": plain.backend}
    assert set(role_backends(plain).values()) == {"default"} and len(ROLES) == 10


def test_a_named_backends_config_reads_back_from_its_manifest(tmp_path: Path) -> None:
    """The manifest stores the config without the shorthand block, so a resume validates it again."""
    path = tmp_path / "two.yaml"
    path.write_text(TWO)
    cfg = load_config(path)
    stored = new_manifest(cfg, config_path=str(path), run_dir="out").config
    assert "backend" not in stored and set(stored["backends"]) == {"default", "target"}
    again = RunConfig.model_validate(json.loads(json.dumps(stored)))
    assert again == cfg and fingerprint(again) == fingerprint(cfg)
    plain = new_manifest(RunConfig(), config_path=None, run_dir="out").config
    assert "backends" not in plain and RunConfig.model_validate(plain) == RunConfig()


def test_how_a_backend_is_driven_does_not_change_the_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(TWO)
    base = fingerprint(load_config(path))
    driven = load_config(path, ["backends.target.max_in_flight=2", "backends.target.session_header=null",
                                "backends.default.base_url=http://elsewhere:1/v1"])
    assert fingerprint(driven) == base
    assert fingerprint(load_config(path, ["backends.target.model=other-policy"])) != base
    assert fingerprint(load_config(path, ["roles.critic=target"])) != base


def test_the_redteam_example_plans_attacks_on_the_target() -> None:
    request = request_from_config(REPO / "examples" / "redteam.yaml")
    jobs = list(iter_jobs(request))
    assert jobs and all(j.briefed_side == "A" and j.judged_side == "B" and not j.swapped for j in jobs)
    assert all(j.target_system_prompt and "Northwind Bank" in j.target_system_prompt for j in jobs)
    text = describe_request(request)
    attacks = sum(1 for j in jobs if j.target_principles)
    assert f"dialogues: {len(jobs)} ({attacks} attacks, {len(jobs) - attacks} controls)" in text
    assert "every turn of the target judged" in text and "the target's first violation" in text
