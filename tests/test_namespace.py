"""The project installs under one namespace, ``sparring``: no top-level ``agents``, ``graphs``,
``principles``, ``traces`` or ``diasynth_agents`` package, so it lives beside openai-agents (which
installs ``agents``) and run directories written before the move still resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cli import REPO, run_cli
from tests.graphs.loopback_run import canned_server, check_complete, expected_ids, write_config

FOLDERS = ("agents", "graphs", "principles", "traces", "diasynth_agents")
FIXTURE = Path(__file__).parent / "graphs" / "fixtures"


def outside_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Python of this environment, started away from the checkout (no PYTHONPATH, cwd elsewhere)."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**clean, **env}, capture_output=True,
                          text=True, timeout=300)


def test_pyproject_lists_every_subpackage() -> None:
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {f"sparring.{name}": name for name in FOLDERS}.items() <= tool["package-dir"].items()
    on_disk = {"sparring"}
    for name in FOLDERS:
        for init in (REPO / name).rglob("__init__.py"):
            on_disk.add("sparring." + ".".join(init.parent.relative_to(REPO).parts))
    assert set(tool["packages"]) == on_disk


def test_no_top_level_package_of_ours_is_installed(tmp_path: Path) -> None:
    code = ("import importlib.util, json, sparring.graphs.cli\n"
            f"print(json.dumps({{n: getattr(importlib.util.find_spec(n), 'origin', None) for n in {FOLDERS!r}}}))")
    proc = outside_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    ours = {name: origin for name, origin in found.items() if origin and origin.startswith(str(REPO / name))}
    assert ours == {}, found


def test_openai_agents_and_a_sparring_run_in_one_process(tmp_path: Path) -> None:
    pytest.importorskip("agents", reason="openai-agents is a dev dependency")
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=4, concurrency=4)
        code = (
            "from agents import Agent\n"
            "agent = Agent(name='helper', instructions='Answer briefly.')\n"
            "import agents, sys\n"
            "from sparring.graphs.cli import main\n"
            f"try:\n    main(['run', {str(config)!r}, '--out', 'run', '-q'])\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "print('agents from', agents.__file__, 'agent', agent.name, 'exit', code)\n")
        proc = outside_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "site-packages/agents/__init__.py" in proc.stdout and "exit 0" in proc.stdout, proc.stdout
    check_complete(tmp_path / "run", expected_ids(config))


def test_a_run_directory_written_before_the_namespace_move_resumes(tmp_path: Path) -> None:
    """The fixture is a run killed mid-way by the code before the move (4 of 8 dialogues written,
    4 checkpointed in state.sqlite); it continues to the end with every dialogue once."""
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE / "pre_namespace_run", run_dir)
    config = tmp_path / "config.yaml"
    shutil.copy(FIXTURE / "pre_namespace_run.config.yaml", config)
    with canned_server() as server:
        manifest_path = run_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        assert manifest["status"] == "running" and manifest["versions"]["sparring"] == "0.1.0"
        manifest["config"]["backend"]["base_url"] = server.base_url  # not part of the fingerprint
        manifest_path.write_text(json.dumps(manifest))
        result = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr
    manifest = check_complete(run_dir, expected_ids(config))
    assert [r["status"] for r in manifest["runs"]] == ["killed", "completed"]
    assert manifest["counts"]["resumed"] == 4


def test_the_wheel_holds_one_top_level_package_with_its_data(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", minversion="69")
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".venv-*", ".git", "build", "runs", "*.egg-info", "__pycache__", "test-artifacts", ".mypy_cache"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import zipfile

    names = set(zipfile.ZipFile(next(tmp_path.glob("sparring-*.whl"))).namelist())
    assert {name.split("/")[0] for name in names} == {"sparring", next(n for n in names if ".dist-info/" in n)
                                                      .split("/")[0]}
    data = [p for name in FOLDERS for p in (REPO / name).rglob("*")
            if p.suffix in (".txt", ".yaml", ".html", ".md") and p.is_file()]
    missing = [str(p.relative_to(REPO)) for p in data
               if "sparring/" + str(p.relative_to(REPO)) not in names]
    assert data and missing == []


def test_the_config_of_a_run_written_before_continues_it(tmp_path: Path) -> None:
    """``sparring run CONFIG`` into that directory finds the same fingerprint: config keys added
    since then, left at their default, do not change it (graphs.runtime.manifest.ADDED_LATER)."""
    from sparring.graphs.runtime.manifest import fingerprint
    from sparring.graphs.runtime.run_request import request_from_config

    manifest = json.loads((FIXTURE / "pre_namespace_run" / "manifest.json").read_text())
    request = request_from_config(FIXTURE / "pre_namespace_run.config.yaml")
    assert fingerprint(request.config) == manifest["config_fingerprint"]
