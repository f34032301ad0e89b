"""One writer per run directory: an exclusive ``flock`` on ``RUN_DIR/.lock``.

``run``, ``resume``, ``filter --out``, ``export --out`` and the commands that write into a
finished run (``stats --write``, ``report``, ``judge``) hold it while they write; a second
process is refused at once (exit 2) with one line naming the directory and the holder's PID.

Why it cannot go stale: the kernel drops a ``flock`` when the last descriptor of its open file
is closed, which a dying process does whatever killed it (SIGKILL and OOM included). A lock file
left behind by a killed process is therefore unlocked, and the next writer simply takes it.
Forked children (``workers: N``, an engine's helper processes) inherit the descriptor, and a
child holding it would keep the lock after its parent died; so every process forked while a
lock is held closes its copy at once (``os.register_at_fork``). Closing, not ``LOCK_UN``:
unlocking would release the parent's lock too, closing a copy does not. Workers also die
with their parent (``PR_SET_PDEATHSIG``, graphs/runtime/workers.py).

The lock file is removed when the holder lets go; a process that opened it before the
removal finds, once it holds the lock, that the path names another file (or none), and tries
again, so two writers can never hold locks on two different files.

    with RunDirLock(Path("runs/demo"), create=True):
        ...  # write the run directory
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from sparring.errors import InputError

__all__ = ["LOCK_FILE", "RunDirLock", "pid_alive"]

LOCK_FILE = ".lock"
"""In the run directory; holds the PID of the process writing it."""

_held: set[int] = set()
"""Descriptors of the locks this process holds; closed in every child it forks."""


def _close_in_child() -> None:
    for fd in list(_held):
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


class RunDirLock:
    """The exclusive lock of one run directory, as a context manager (or ``acquire``/``release``).

    ``create``: make the directory (and its parents) when it does not exist; it is removed again
    on release if nothing but the lock was ever put in it (bad input found after locking leaves
    nothing behind). ``InputError`` when the directory cannot be made or another process holds it.
    """

    def __init__(self, run_dir: Path, *, create: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.create = create
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> RunDirLock:
        if self._fd is not None:
            return self
        self._make_dir()
        path = self.run_dir / LOCK_FILE
        for _ in range(50):  # only a holder releasing at this very moment makes it go round
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                self._forget_dir()
                raise InputError(f"cannot write into it: {exc.strerror}", source=str(self.run_dir)) from None
            if not _lock(fd):
                pid = _read_pid(fd)
                os.close(fd)
                who = f"process {pid}" if pid else "another process"
                raise InputError(f"is in use by {who} (a sparring run, resume or command writing it); "
                                 "wait for it to end, or stop it", source=str(self.run_dir)) from None
            if _same_file(fd, path):
                break
            os.close(fd)  # the holder removed that file as we locked it: lock the new one
        else:  # pragma: no cover - 50 holders in a row released under us
            raise InputError("its lock file keeps changing; is another program deleting it?", source=str(self.run_dir))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _held.add(fd)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _held.discard(fd)
        try:
            (self.run_dir / LOCK_FILE).unlink(missing_ok=True)  # still ours: we hold the lock
        except OSError:
            pass
        os.close(fd)
        self._forget_dir()

    def _make_dir(self) -> None:
        if self.run_dir.is_dir():
            return
        if self.run_dir.exists():
            raise InputError("exists and is not a directory", source=str(self.run_dir))
        if not self.create:
            raise InputError("no such directory", source=str(self.run_dir))
        try:
            self.run_dir.mkdir(parents=True)
        except FileExistsError:  # made by someone else meanwhile, or a parent is a file
            if not self.run_dir.is_dir():
                raise InputError("cannot be created: a part of its path is a file, not a directory",
                                 source=str(self.run_dir)) from None
        except NotADirectoryError:
            raise InputError("cannot be created: a part of its path is a file, not a directory",
                             source=str(self.run_dir)) from None
        except OSError as exc:
            raise InputError(f"cannot be created: {exc.strerror}", source=str(self.run_dir)) from None
        else:
            self._created = True

    def _forget_dir(self) -> None:
        """Remove the directory this lock created if it is still empty."""
        if self._created:
            self._created = False
            try:
                self.run_dir.rmdir()
            except OSError:  # something was written: it stays
                pass


def _lock(fd: int, patience_s: float = 2.0) -> bool:
    """Take the lock; False when a live process holds it. A holder that has died already is waited
    for a moment: a child it forked an instant before may still have the descriptor, until the
    at-fork hook (or its own death) closes it."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pid = _read_pid(fd)
            if pid is None or pid_alive(pid) or time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (a zombie too); also for another user's process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _read_pid(fd: int) -> int | None:
    for _ in range(3):  # the holder writes its PID right after locking
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.02)
    return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)
