"""A directory written whole or not at all: what ``sparring plan`` and ``sparring merge`` write.

Everything goes into a temporary directory beside the target (``.NAME.KIND-PID``), which is
fsynced and renamed into place; a process killed at any moment leaves no half-written target,
and the next writer removes the temporary directories of writers that are gone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .runlock import pid_alive

__all__ = ["atomic_dir", "fsync_tree"]


@contextmanager
def atomic_dir(out: Path, kind: str) -> Iterator[Path]:
    """Yield a fresh temporary directory to fill; when the block ends without an error it becomes
    ``out``. A non-empty ``out`` is moved aside first and removed once the new one is in place
    (killed between the two renames, neither is ``out`` and both are whole)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(out, kind)
    tmp = out.with_name(f".{out.name}.{kind}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        aside = None
        if out.exists() and any(out.iterdir()):
            aside = out.with_name(f".{out.name}.{kind}-old-{os.getpid()}")
            os.replace(out, aside)
        elif out.exists():
            out.rmdir()
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder``, then the folders themselves: durable before a rename."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clear_leftovers(out: Path, kind: str) -> None:
    """Temporary directories of writers of ``out`` that were killed (their process is gone)."""
    for path in out.parent.glob(f".{out.name}.{kind}-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
