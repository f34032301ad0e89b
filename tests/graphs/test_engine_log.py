"""A quiet terminal (graphs.runtime.engine_log): what a process and its children print at the file-descriptor
level, through ``logging`` and through ``warnings`` lands in the log; the run's own lines keep the
terminal; ``echo`` copies the log there live; everything is put back afterwards. The whole CLI on the
real engine is in test_quiet_terminal_engine.py."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from sparring.graphs.runtime.engine_log import EngineLog
from tests.cli import REPO, run_cli
from tests.graphs.loopback_run import canned_server, write_config

NOISES = ("fd-one", "fd-two", "print-stderr", "child-stderr", "child-stdout", "logged-warning", "a-warning")


def make_noise(logger: logging.Logger) -> None:
    os.write(1, b"fd-one\n")
    os.write(2, b"fd-two\n")
    print("print-stderr", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-c", "import sys; print('child-stdout'); print('child-stderr', file=sys.stderr)"],
                   check=True)
    logger.warning("logged-warning")
    warnings.warn("a-warning", UserWarning, stacklevel=1)


PLAIN_PROCESS = """
import logging, os, sys
from pathlib import Path
from sparring.graphs.runtime.engine_log import EngineLog
from tests.graphs.test_engine_log import make_noise

logger = logging.getLogger("noisy.library")
handler = logging.StreamHandler(sys.stderr)  # made before the run, bound to the console, as vLLM's is
logger.addHandler(handler)
logger.propagate = False
with EngineLog(Path(sys.argv[1])) as log:
    make_noise(logger)
    log.terminal.write("sparring: progress line\\n")
    logging.getLogger("sparring.graphs.runtime.reporting").warning("report not written")
os.write(2, b"after\\n")
print("put back:", handler.stream is sys.stderr is sys.__stderr__)
"""


def test_everything_a_process_prints_goes_to_the_log_and_the_terminal_keeps_our_lines(tmp_path: Path) -> None:
    log = tmp_path / "run" / "engine.log"
    proc = subprocess.run([sys.executable, "-c", PLAIN_PROCESS, str(log)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert [n for n in NOISES if n not in text] == []
    assert [n for n in NOISES if n in proc.stdout + proc.stderr] == []
    assert proc.stderr == "sparring: progress line\nsparring: WARNING: report not written\nafter\n"
    assert proc.stdout == "put back: True\n" and "progress line" not in text


def test_console_objects_that_are_not_the_descriptors_go_to_the_log_too(tmp_path: Path, capfd) -> None:
    """As in a Jupyter kernel (here: pytest's capture), sys.stderr is not descriptor 2."""
    logger = logging.getLogger("noisy.library")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with EngineLog(tmp_path / "engine.log"):
            print("print-stderr", file=sys.stderr)
            later = logging.StreamHandler(sys.stdout)  # made during the run, as vLLM's is when imported then
            logger.addHandler(later)
            logger.warning("logged-warning")
            logger.removeHandler(later)
    finally:
        logger.removeHandler(handler)
    out, err = capfd.readouterr()
    text = (tmp_path / "engine.log").read_text()
    assert "print-stderr" in text and text.count("logged-warning") == 2
    assert "print-stderr" not in out + err and "logged-warning" not in out + err
    assert handler.stream is sys.stderr
    later.stream.write("after the run\n")  # a reference kept from the run writes to the terminal again
    later.stream.flush()
    assert "after the run" in capfd.readouterr().out


def test_echo_copies_the_log_to_the_terminal_as_it_grows(tmp_path: Path, capfd) -> None:
    with EngineLog(tmp_path / "engine.log", echo=True):
        os.write(2, b"engine says hello\n")
        subprocess.run([sys.executable, "-c", "print('child says hi')"], check=True)
    err = capfd.readouterr().err
    assert "engine says hello" in err and "child says hi" in err
    assert "engine says hello" in (tmp_path / "engine.log").read_text()


def test_a_second_attempt_appends(tmp_path: Path) -> None:
    for word in ("first", "second"):
        with EngineLog(tmp_path / "engine.log"):
            os.write(2, f"{word}\n".encode())
    text = (tmp_path / "engine.log").read_text()
    assert text.index("first") < text.index("second") and text.count("--- sparring (pid") == 2


def cli_with(patch: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``sparring ARGS`` in a subprocess whose start-up first runs ``patch`` (a sitecustomize module)."""
    site = cwd / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(patch)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sparring.graphs.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


NOISY_START = """
import os
import sparring.agents.backends.openai_compat as m
start = m.OpenAICompatBackend.start
async def noisy_start(self):
    os.write(2, b'NOISE from the engine while it starts\\n')
    await start(self)
m.OpenAICompatBackend.start = noisy_start
"""

BROKEN_START = """
import os
import sparring.agents.backends.openai_compat as m
async def broken_start(self):
    os.write(2, b'Traceback (most recent call last):\\n  engine internals\\n')
    raise RuntimeError('Engine core initialization failed. See root cause above.\\nmore detail')
m.OpenAICompatBackend.start = broken_start
"""


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_the_cli_prints_its_own_lines_only_and_keeps_the_rest_in_engine_log(tmp_path: Path, verbose: bool) -> None:
    """The real CLI, its backend printing while it starts: that is in engine.log (and on the terminal
    only with -v); the terminal holds sparring's own lines."""
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=4, concurrency=4)
        result = cli_with(NOISY_START, "run", str(config), "--out", str(tmp_path / "run"),
                          *(["-v"] if verbose else []), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "run" / "engine.log").read_text()
    assert "NOISE from the engine while it starts" in log
    assert ("NOISE" in result.stderr) is verbose
    lines = [line for line in result.stderr.splitlines() if "NOISE" not in line]
    assert lines and all(line.startswith("sparring: ") for line in lines), result.stderr
    assert result.stdout.startswith("completed: 4 dialogues")


def test_a_backend_that_fails_to_start_is_one_line_and_the_directory_stays_usable(tmp_path: Path) -> None:
    with canned_server() as server:  # reachable, so the pre-run probe passes and start() is what fails
        config = write_config(tmp_path, server.base_url, dialogues=2, concurrency=1)
        result = cli_with(BROKEN_START, "run", str(config), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    log = tmp_path / "run" / "engine.log"
    assert result.stderr.splitlines()[-1] == (
        f"error: RuntimeError: Engine core initialization failed. See root cause above. (the engine's output and "
        f"the traceback are in {log})")
    assert "Traceback" not in result.stderr and "engine internals" in log.read_text()
    assert "broken_start" in log.read_text()  # our traceback, appended
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["engine.log"]
    with canned_server() as server:  # the same directory, once the backend works
        config = write_config(tmp_path, server.base_url, dialogues=2, concurrency=1)
        again = run_cli("run", str(config), "--out", str(tmp_path / "run"), "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
