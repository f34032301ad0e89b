"""Whole turns (issue 22, item 4), on a scripted model: a turn's finish reason is stored; a turn cut at the
token limit is never a pair's rejected or an SFT target (dropped and counted as ``cut_turn``); the speakers are
told the minimum length and an end marker from either side ends the dialogue at any turn; a turn is cut where
its speaker starts writing the other side's line, so no stored turn holds one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob
from sparring.agents.persona import PersonaAgent, cut_at_other_speaker, other_labels
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.graphs.assemble import build_sft_record, data_outcome, extract_preference_pairs
from sparring.graphs.commands.run import left_out_line
from sparring.graphs.runtime.manifest_parts import Counts
from sparring.graphs.selfplay import DialogueConfig, SelfPlay, SelfPlayAgents
from tests.graphs.scripted_world import PRINCIPLES, World
from tests.graphs.test_selfplay import make_job, run

PID = "privacy.no-doxxing"


@dataclass
class Talky(World):
    """A World whose speakers add ``extra[turn index]`` to their turn."""

    extra: dict[int, str] | None = None

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        text = super().reply(messages, params, schema)
        if schema is None and self.extra:
            index = int(text.split("#")[1].split()[0])
            text += self.extra.get(index, "")
        return text


async def run_cut(world: World, job: DialogueJob, persona_tokens: int, *, reask: bool = False,
                  backend: ScriptedBackend | None = None, **settings: Any):
    backend = backend or ScriptedBackend(world.reply, cut_at_max_tokens=True)
    p = SamplingParams()
    agents = SelfPlayAgents(planner=PlannerAgent(backend, p),
                            persona=PersonaAgent(backend, p.model_copy(update={"max_tokens": persona_tokens}), reask),
                            critic=CriticAgent(backend, p), reviser=ReviserAgent(backend, p),
                            verifier=CriticAgent(backend, p, name="verifier"))
    sp = SelfPlay(agents=agents, principles=PRINCIPLES, settings=DialogueConfig(**settings))
    from sparring.graphs.assemble import build_dialogue_record
    from sparring.graphs.records import DialogueUsage
    state = await sp.build().ainvoke({"job": job.model_dump(mode="json")}, {"recursion_limit": sp.recursion_limit()})
    return build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0)


async def test_every_turn_verdict_and_revision_keeps_its_finish_reason():
    _, record = await run(World(violating_turns={1: [PID]}), make_job(), max_turns=4)
    assert [m.finish_reason for m in record.messages] == ["stop"] * 4
    assert all(v.finish_reason == "stop" for v in record.verdicts)
    assert [(r.finish_reason, r.verify_finish_reason) for r in record.revisions] == [("stop", "stop")]


async def test_a_turn_cut_at_the_token_limit_is_never_a_rejected_or_an_sft_target():
    world = Talky(violating_turns={3: [PID]}, extra={3: " and then " + "on and on " * 10})
    job = make_job(targets=())  # a control: no planted turn to end the SFT row
    record = await run_cut(world, job, persona_tokens=40, max_turns=6)
    assert record.messages[3].finish_reason == "length"
    assert [m.finish_reason for i, m in enumerate(record.messages) if i != 3] == ["stop"] * 5
    assert record.revisions[0].verified  # the reviser fixed it, yet a pair would teach "be shorter"
    assert extract_preference_pairs(record, job) == []
    sft = build_sft_record(record, job)
    assert sft is not None and sft.messages[-1]["content"] == record.revisions[0].revised  # its whole revision
    assert sft.cut_reason == "after_revision"  # turn 4 answered the cut original
    outcome = data_outcome(record, keep_unverified=False)
    assert outcome["dropped_pairs"] == {"cut_turn": 1}
    assert "1 cut at the token limit" in left_out_line(Counts(dropped_pairs=outcome["dropped_pairs"]))


async def test_a_cut_turn_is_asked_once_more_with_twice_the_budget_and_the_longer_reply_is_the_turn():
    world = Talky(extra={3: " and then " + "on " * 10})
    plain = await run_cut(world, make_job(targets=()), persona_tokens=40)
    assert len(plain.messages[3].content) <= 40 and plain.messages[3].finish_reason == "length"
    asked: list[SamplingParams] = []

    def reply(messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        asked.append(params)
        return world.reply(messages, params, schema)

    backend = ScriptedBackend(reply, cut_at_max_tokens=True)
    record = await run_cut(world, make_job(targets=()), persona_tokens=40, reask=True, backend=backend)
    turn = record.messages[3]
    assert turn.finish_reason == "stop" and turn.content.startswith(plain.messages[3].content)
    assert turn.content.endswith("on")  # whole: what the speaker wrote in full
    persona = [p for p in asked if p.max_tokens in (40, 80)]
    raised = [p for p in persona if p.max_tokens == 80]
    assert len(persona) == len(record.messages) + 1 and len(raised) == 1  # one turn asked again
    assert raised[0].seed == persona[persona.index(raised[0]) - 1].seed  # the same turn, given room
    assert build_sft_record(record, make_job(targets=())).cut_reason is None  # nothing cut: the row is whole


async def test_a_turn_still_cut_after_its_second_ask_stays_and_is_no_target():
    world = Talky(violating_turns={3: [PID]}, extra={3: " and then " + "on and on " * 30})
    job = make_job(targets=())
    record = await run_cut(world, job, persona_tokens=40, reask=True, max_turns=6)
    assert record.messages[3].finish_reason == "length" and 40 < len(record.messages[3].content) <= 80
    assert extract_preference_pairs(record, job) == []
    assert data_outcome(record, keep_unverified=False)["dropped_pairs"] == {"cut_turn": 1}


async def test_an_unflagged_cut_turn_ends_the_sft_row_before_it():
    world = Talky(extra={3: " and then " + "on and on " * 10})
    record = await run_cut(world, make_job(targets=()), persona_tokens=40, max_turns=6)
    sft = build_sft_record(record, make_job(targets=()))
    assert sft is not None and sft.cut_at == 3 and sft.cut_reason == "cut_turn"
    assert all(m["content"] != record.messages[3].content for m in sft.messages)
    assert data_outcome(record, keep_unverified=False)["sft_cut_reason"] == "cut_turn"
    line = left_out_line(Counts(sft_rows={"cut": 1, "dropped": 0}, sft_cut_by_reason={"cut_turn": 1}))
    assert "1 at a turn cut at the token limit" in line


async def test_the_speakers_are_told_the_minimum_length_and_an_early_end_is_honoured():
    world = World(done_at=2)
    _, record = await run(world, make_job(), max_turns=8, min_turns=6)
    assert "at most 8 turns and lasts at least 6" in world.seen_systems["A"][0]
    assert "do not end it before turn 6" in world.seen_systems["A"][1]
    assert record.stop_reason == "done_signal" and record.turns == 3  # nothing is said after the farewell
    assert "<done>" not in record.messages[-1].content


async def test_an_end_marker_from_side_b_ends_the_dialogue_too():
    world = Talky(extra={1: " Glad to help, goodbye! <done>"})
    _, record = await run(world, make_job(), max_turns=8, min_turns=2)
    assert record.turns == 2 and record.stop_reason == "done_signal"
    assert record.messages[1].content == "turn #1 by B Glad to help, goodbye!"


async def test_a_turn_is_cut_where_its_speaker_writes_the_other_sides_line():
    world = Talky(extra={1: "\nDana: great, thanks! <done>", 2: "\n**AI assistant:** you're welcome"})
    _, record = await run(world, make_job(), max_turns=4, min_turns=2)
    assert record.turns == 4  # the done marker in the line B wrote for Dana ends nothing
    assert record.messages[1].content == "turn #1 by B"
    assert record.messages[2].content == "turn #2 by A"


def test_labels_and_the_cut_rule():
    job = make_job()
    assert other_labels(job, "B") == ("Dana", "User")
    assert other_labels(job, "A") == ("AI assistant", "Assistant", "AI")
    peers = make_job(mode="peers")
    assert other_labels(peers, "A") == ("Lee",)
    assert cut_at_other_speaker("Hi.\n  User: ok", ["User"]) == ("Hi.", True)
    assert cut_at_other_speaker("Ask the user: what now?", ["User"]) == ("Ask the user: what now?", False)
    assert cut_at_other_speaker("Lee said: fine", ["Lee"]) == ("Lee said: fine", False)
    assert cut_at_other_speaker("Dana is here", ["Dana"]) == ("Dana is here", False)


def test_the_closing_line_says_when_the_critic_quoted_what_the_turn_does_not_say(tmp_path):
    """The embedded quickstart flags nothing: its critic's findings quote text the turn does not hold, and
    are dropped. A newcomer reading "0 preference pairs" sees that in the closing line, counted over the
    run directory (trunk and branch verdicts)."""
    from sparring.graphs.runtime.totals import run_totals

    verdicts = [{"turn_index": 1, "dropped_findings": 2}, {"turn_index": 3, "dropped_findings": 0}]
    row = {"status": "failed", "verdicts": verdicts, "branch": {"verdicts": [{"dropped_findings": 1}]}}
    (tmp_path / "dialogues.jsonl").write_text(__import__("json").dumps(row) + "\n")
    assert run_totals(tmp_path, None, keep_unverified=False)["ungrounded_findings"] == 0  # failed: not counted
    assert "3 critic findings dropped (the evidence they quoted is not in the judged turn)" in \
        left_out_line(Counts(ungrounded_findings=3))
    assert left_out_line(Counts()) == ""
