"""A quiet terminal: while a run is under way, what the engine and the libraries print goes to
``RUN_DIR/engine.log``; the run's own progress lines and errors keep the terminal.

vLLM, torch, transformers and their helpers print through ``logging``, through ``warnings`` and
straight to file descriptors 1 and 2, from this process and from the engine-core process vLLM
starts (which inherits those descriptors). So the descriptors themselves are pointed at the log
(``dup2``), which catches all of it, children included; the terminal is kept on a copy of the
original descriptor 2 (``EngineLog.terminal``) for the progress display. ``sys.stdout`` and
``sys.stderr`` are not always those descriptors (a Jupyter kernel, a test's capture), so for the
while they are replaced by streams into the log (which fall back to the originals once the run is
over, for whoever kept a reference), and logging handlers made earlier that write to them are
pointed at the log. Everything is put back on close.

    with EngineLog(run_dir / "engine.log", echo=verbose) as log:
        progress.use_stream(log.terminal)
        ...  # start the engine, run
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["EngineLog"]


class _Console:
    """Stands in for ``sys.stdout``/``sys.stderr`` during a run: writes go to the log; once the run is over,
    to the stream it replaced (a library that kept a reference, as vLLM's logging handler does, stays valid)."""

    def __init__(self, original: Any, log: IO[str]) -> None:
        self._original = original
        self._log: IO[str] | None = log

    def _target(self) -> Any:
        return self._log if self._log is not None else self._original

    def release(self) -> None:
        self._log = None

    def write(self, text: str) -> int:
        return int(self._target().write(text) or 0)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._log is None and bool(self._original.isatty())

    def fileno(self) -> int:
        return int(self._target().fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


class EngineLog:
    """Route descriptors 1 and 2 (and console logging handlers) into ``path`` until closed.

    ``echo``: also copy the log to the terminal as it grows (``sparring run -v``).
    """

    def __init__(self, path: Path, *, echo: bool = False) -> None:
        self.path = path
        self.echo = echo
        self.terminal: IO[str] = sys.stderr
        """Where the run's own lines go while the log holds descriptor 2 (a copy of the terminal's)."""
        self._saved: dict[int, int] = {}
        self._log: IO[str] | None = None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._ours: logging.Handler | None = None
        self._consoles: dict[str, tuple[Any, _Console]] = {}
        self._tail: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> EngineLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._log = open(fd, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in close()
        self._log.write(f"--- sparring (pid {os.getpid()}) {time.strftime('%Y-%m-%d %H:%M:%S')}: engine and "
                        "library output of this attempt ---\n")
        start = self._log.tell() if self.echo else 0
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()  # what was printed before belongs on the terminal
        for target in (1, 2):
            try:
                self._saved[target] = os.dup(target)
            except OSError:  # no such descriptor (a daemon): nothing to keep or restore
                continue
            os.dup2(fd, target)
        if 2 in self._saved:
            self.terminal = open(os.dup(self._saved[2]), "w", buffering=1, encoding="utf-8",  # noqa: SIM115
                                 errors="replace")
        self._adopt_handlers()
        for name in ("stdout", "stderr"):  # print(), warnings, tqdm and handlers made during the run
            original = getattr(sys, name)
            self._consoles[name] = (original, _Console(original, self._log))
            setattr(sys, name, self._consoles[name][1])
        self._route_our_logger()
        if self.echo:
            self._tail = threading.Thread(target=self._follow, args=(start,), name="sparring-engine-log",
                                          daemon=True)
            self._tail.start()
        return self

    def _adopt_handlers(self) -> None:
        """Point logging handlers made before the run that write to the console objects at the log (those
        made during the run, as vLLM's is when it is imported then, write to the stand-ins)."""
        consoles = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__,
                                    *(original for original, _ in self._consoles.values())) if s is not None}
        known = {id(h) for h, _ in self._handlers}
        loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values()
                                          if isinstance(v, logging.Logger))]
        for logger in loggers:
            for handler in logger.handlers:
                if (type(handler) is logging.StreamHandler and id(handler) not in known and handler is not self._ours
                        and id(handler.stream) in consoles):
                    self._handlers.append((handler, handler.setStream(self._log)))
                    known.add(id(handler))

    def _route_our_logger(self) -> None:
        """sparring's own warnings (a report that could not be written) stay on the terminal: when nobody
        configured logging, Python's last-resort handler would print them to descriptor 2, the log."""
        ours = logging.getLogger("sparring")
        if ours.handlers or logging.getLogger().handlers:
            return
        self._ours = logging.StreamHandler(self.terminal)
        self._ours.setLevel(logging.WARNING)
        self._ours.setFormatter(logging.Formatter("sparring: %(levelname)s: %(message)s"))
        ours.addHandler(self._ours)

    def _follow(self, offset: int) -> None:
        """``-v``: copy what the log gains to the terminal, until closed (then what is left)."""
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            fh.seek(offset)
            while True:
                stopping = self._stop.is_set()
                chunk = fh.read()
                if chunk:
                    self.terminal.write(chunk)
                    self.terminal.flush()
                elif stopping:
                    return
                else:
                    self._stop.wait(0.2)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Put every descriptor, handler and hook back as it was."""
        for stream in (sys.stdout, sys.stderr, *(original for original, _ in self._consoles.values())):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()  # Python-buffered engine output belongs in the log
        if self._tail is not None:
            self._stop.set()
            self._tail.join(timeout=5)
            self._tail = None
        for handler, previous in reversed(self._handlers):
            handler.setStream(previous)
        self._handlers.clear()
        if self._ours is not None:
            logging.getLogger("sparring").removeHandler(self._ours)
            self._ours = None
        for name, (original, console) in self._consoles.items():
            console.flush()
            console.release()
            if getattr(sys, name) is console:
                setattr(sys, name, original)
        self._consoles.clear()
        for target, saved in self._saved.items():
            os.dup2(saved, target)
            os.close(saved)
        self._saved.clear()
        if self.terminal is not sys.stderr:
            self.terminal.close()
            self.terminal = sys.stderr
        if self._log is not None:
            self._log.close()
            self._log = None
