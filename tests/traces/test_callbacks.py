"""LangChain callback handlers passed to ``execute`` see the graph's runs: the same hook LangSmith
(environment variables) and Langfuse (a handler object) use."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from tests.graphs.scripted_world import World
from tests.traces.scripted_run import scripted_run


class Recorder(BaseCallbackHandler):
    """Keeps the name and metadata of every chain run that starts, and the ones that end."""

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.ended = 0

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, **kwargs: Any) -> None:
        self.started.append((kwargs.get("name") or "", dict(kwargs.get("metadata") or {})))

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self.ended += 1


async def test_a_callback_handler_sees_every_dialogue_graph_and_its_nodes(tmp_path):
    recorder = Recorder()
    result = await scripted_run(tmp_path, World(violating_turns={1: ["privacy.no-doxxing"]}).backend(), n=2,
                                callbacks=[recorder])
    assert result.status == "completed"
    names = [name for name, _ in recorder.started]
    roots = [meta for name, meta in recorder.started if name == "selfplay"]
    assert len(roots) == 2  # one graph run per dialogue, named by the runner
    assert {meta["dialogue_id"] for meta in roots} == {r["id"] for r in _dialogues(tmp_path)}
    for node in ("plan", "speak", "critique", "revise", "verify"):
        assert node in names
    assert names.count("speak") == 2 * 4  # max_turns 4, two dialogues
    assert recorder.ended == len(recorder.started)  # every run that started also ended


def _dialogues(run_dir):
    from sparring.graphs.runtime.store import DIALOGUES, iter_jsonl

    return list(iter_jsonl(run_dir / DIALOGUES))
