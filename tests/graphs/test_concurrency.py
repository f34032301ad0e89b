"""Many dialogues in flight over real HTTP: as many as ``concurrency`` overlap, and requests in
flight never pass the backend's ``max_in_flight``. Asserted on what the server saw, not on time."""

from __future__ import annotations

import pytest

from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import request_from_config
from tests.graphs.loopback_run import canned_server, check_complete, expected_ids, write_config


@pytest.mark.parametrize(("concurrency", "max_in_flight", "max_turns", "seen"), [
    # max_turns 2: a dialogue makes one call at a time, so the server sees `concurrency` at once
    pytest.param(5, 64, 2, 5, id="dialogues-overlap-up-to-concurrency"),
    pytest.param(6, 3, 2, 3, id="max-in-flight-caps-requests"),
    # max_turns 6: the critic judges 3 turns at once, so 4 dialogues could send 12 requests
    pytest.param(4, 5, 6, 5, id="max-in-flight-caps-parallel-critic-calls"),
])
async def test_requests_in_flight(tmp_path, concurrency, max_in_flight, max_turns, seen):
    with canned_server(delay_s=0.05) as server:
        config = write_config(tmp_path, server.base_url, dialogues=12, concurrency=concurrency,
                              max_in_flight=max_in_flight, max_turns=max_turns)
        result = await execute(request_from_config(config, out=tmp_path / "run"))
        assert result.status == "completed"
        assert server.stats.max_concurrent == seen
        check_complete(tmp_path / "run", expected_ids(config))  # one pair: later prompts hold a revision
