"""``sparring stats`` on conversational data that is not a run (graphs/data/conversations.py) and
``--compare``: chat-format JSONL, ShareGPT, datasets folders, DialogSum/SAMSum text, a real public file."""

from __future__ import annotations

import json
from importlib import util
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.graphs.data.conversations import read_conversations, speaker_lines
from sparring.graphs.data.run_stats import StatsOptions, compute_conversation_stats, compute_stats
from sparring.graphs.data.rundata import load_run
from tests.cli import run_cli
from tests.graphs.data.fixture_run import write_run

CHAT = [
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is the station?"},
                  {"role": "assistant", "content": "Two streets down, on the left."}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Is it open on Sundays?"}]},
                  {"role": "assistant", "content": "Yes, from nine."}, {"role": "user", "content": "Thanks."}]},
]
DIALOGSUM = {"id": "train_0", "dialogue": "#Person1#: Hi, Mr. Smith. I'm Doctor Hawkins.\n#Person2#: I found it "
                                          "would be a good idea.\n#Person1#: Well, let's begin.", "summary": "x"}
SAMSUM = {"id": "13818513", "dialogue": "Amanda: I baked  cookies. Do you want some?\r\nJerry: Sure!\r\nAmanda: "
                                        "I'll bring you tomorrow :-)\r\nsee you", "summary": "y"}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_chat_format_rows(tmp_path: Path) -> None:
    rows = read_conversations(_jsonl(tmp_path / "chat.jsonl", CHAT))
    assert [len(r["messages"]) for r in rows] == [2, 3]  # the system turn is not a turn
    assert rows[1]["messages"][0] == {"speaker": "user", "content": "Is it open on Sundays?"}


def test_sharegpt_json_array_and_text_columns(tmp_path: Path) -> None:
    share = tmp_path / "share.json"
    share.write_text(json.dumps([{"id": "a", "conversations": [{"from": "human", "value": "hi"},
                                                               {"from": "gpt", "value": "hello"}]}]))
    assert read_conversations(share)[0]["messages"][1] == {"speaker": "gpt", "content": "hello"}
    rows = read_conversations(_jsonl(tmp_path / "sum.jsonl", [DIALOGSUM, SAMSUM]))
    assert [t["speaker"] for t in rows[0]["messages"]] == ["#Person1#", "#Person2#", "#Person1#"]
    assert rows[1]["messages"][2] == {"speaker": "Amanda", "content": "I'll bring you tomorrow :-)\nsee you"}
    renamed = _jsonl(tmp_path / "renamed.jsonl", [{"text": DIALOGSUM["dialogue"]}])
    assert len(read_conversations(renamed, text_column="text")[0]["messages"]) == 3


def test_speaker_lines_keep_colons_inside_the_text() -> None:
    turns = speaker_lines("Ann: the time is 10:30\nBob: ok: see you")
    assert turns == [{"speaker": "Ann", "content": "the time is 10:30"}, {"speaker": "Bob", "content": "ok: see you"}]


def test_datasets_folders(tmp_path: Path) -> None:
    import datasets

    saved = tmp_path / "saved"
    plain = [CHAT[0], {"messages": [{"role": "user", "content": "Open on Sundays?"},
                                    {"role": "assistant", "content": "Yes."}]}]  # Arrow wants one content type
    datasets.DatasetDict({"train": datasets.Dataset.from_list(plain),
                          "test": datasets.Dataset.from_list(plain[:1])}).save_to_disk(str(saved))
    assert len(read_conversations(saved)) == 3  # every split
    folder = tmp_path / "parquet"
    folder.mkdir()
    datasets.Dataset.from_list([DIALOGSUM]).to_parquet(str(folder / "a.parquet"))
    _jsonl(folder / "b.jsonl", [SAMSUM])
    rows = read_conversations(folder)
    assert [r["messages"][0]["speaker"] for r in rows] == ["#Person1#", "Amanda"]
    assert len(read_conversations(folder, limit=1)) == 1


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bad.jsonl", '{"messages": []}\n', "bad.jsonl: messages (line 1): must be a non-empty list of turns"),
    ("bad2.jsonl", '{"messages": [{"role": "user"}]}\n{', "bad2.jsonl: messages (line 1): turn 0 needs a string"),
    ("bad3.jsonl", '{"messages": [{"role": "user", "content": "x"}]}\n{', "bad3.jsonl: (line 2): is not JSON"),
    ("bad4.jsonl", '{"summary": "x"}\n', "bad4.jsonl: (line 1): no conversation: needs 'messages'"),
    ("bad.csv", "a,b\n", "bad.csv: reads .jsonl, .json and .parquet files and folders, not '.csv'"),
    ("empty.jsonl", "\n", "empty.jsonl: holds no conversation"),
    ("bad.parquet", "not parquet", "bad.parquet: cannot be read as Parquet"),
])
def test_bad_input_names_file_row_and_field(tmp_path: Path, name: str, content: str, expected: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError) as caught:
        read_conversations(tmp_path / name)
    assert str(caught.value).startswith(f"{tmp_path}/{expected}")


def test_one_function_computes_a_run_and_a_dataset_alike(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "run"))
    options = StatsOptions(embeddings=False)
    whole = compute_stats(run, options)
    common = compute_conversation_stats(run.ok_dialogues, options)
    assert whole["diasynth_table1"] == common["diasynth_table1"] and whole["turn_tokens"] == common["turn_tokens"]


def test_cli_compare_and_bad_input(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    data = _jsonl(tmp_path / "chat.jsonl", CHAT)
    shown = run_cli("stats", str(run_dir), "--compare", str(data), "--no-embeddings", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "run fixture" in shown.stdout and "chat.jsonl" in shown.stdout and "avg. tokens per turn" in shown.stdout
    as_json = json.loads(run_cli("stats", str(data), "--compare", str(run_dir), "--no-embeddings", "--json",
                                 cwd=tmp_path).stdout)
    assert as_json["first"]["diasynth_table1"]["samples"] == 2 and as_json["second"]["run"]["name"] == "fixture"
    for args, message in ((["--write"], "--write needs a run directory"),
                          (["--compare", str(tmp_path / "nope.jsonl")], "nope.jsonl: does not exist")):
        bad = run_cli("stats", str(data), *args, cwd=tmp_path)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and message in bad.stderr
        assert "Traceback" not in bad.stderr


CHITCHAT = util.find_spec("chitchat_dataset")


@pytest.mark.skipif(CHITCHAT is None, reason="chitchat-dataset is installed by scripts/install.sh dev")
def test_a_real_public_dialogue_file_read_as_published(tmp_path: Path) -> None:
    """The Chit-Chat Challenge dataset (BYU PCC lab, MIT licence) as its PyPI wheel ships it: one JSON object of
    7,168 conversations keyed by id, each turn a list of the messages one person sent in a row."""
    assert CHITCHAT is not None and CHITCHAT.origin is not None
    path = Path(CHITCHAT.origin).parent / "dataset.json"
    rows = read_conversations(path)
    assert len(rows) == 7168
    speakers = [len({t["speaker"] for t in r["messages"]}) for r in rows]
    # Two people in 4,018 of them; in the other 3,150 only one wrote (a single turn: the partner never answered).
    assert (speakers.count(2), speakers.count(1)) == (4018, 3150)
    assert all(len(r["messages"]) == 1 for r, n in zip(rows, speakers) if n == 1)
    figures = compute_conversation_stats(rows[:300], StatsOptions(embeddings=False))
    assert figures["diasynth_table1"]["samples"] == 300 and 5 < figures["diasynth_table1"]["avg_tokens_per_turn"] < 60
    shown = run_cli("stats", str(write_run(tmp_path / "run")), "--compare", str(path), "--limit", "200",
                    "--no-embeddings", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "dataset.json" in shown.stdout and "samples" in shown.stdout
