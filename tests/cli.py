"""Running ``sparring`` as users do: a subprocess of the installed (editable) project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sparring.graphs.cli ARGS`` in ``cwd``, output captured as text; a wide terminal keeps tables on one line.
    ``env``: the environment instead of this process's (PYTHONPATH and COLUMNS are added)."""
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sparring.graphs.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
