"""The session a model request belongs to: one dialogue, whichever role asks.

The runner opens a session around each dialogue (its id is the dialogue's
conversation id, ``graphs.runtime.manifest.session_id``: constant for the dialogue,
unique across runs); ``openai_compat`` sends it in the backend's
``session_header`` on every request made inside it, so a router with session
affinity keeps the dialogue on one replica. A context variable carries it, as
it carries the current span: agents need not pass it along, and the tasks a
dialogue starts (the critic's parallel verdicts) inherit it.

    with dialogue_session("3f2a9c1e0b7d-1a2b3c"):
        await backend.complete(messages, params)  # sent with x-session-id: 3f2a9c1e0b7d-1a2b3c
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_session", "dialogue_session"]

_session: ContextVar[str | None] = ContextVar("sparring_session_id", default=None)


@contextmanager
def dialogue_session(session_id: str | None) -> Iterator[None]:
    """Requests made in this context (and in tasks started from it) belong to ``session_id``."""
    token = _session.set(session_id)
    try:
        yield
    finally:
        _session.reset(token)


def current_session() -> str | None:
    """The session of the request being made, None outside any dialogue (e.g. DiaSynth expansion)."""
    return _session.get()
