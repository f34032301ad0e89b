"""Checks every exported row against what its trainer expects, before anything is written.

A ``validate_*`` function returns the reasons a row fails (empty = valid), so a
bad row is reported with why, never silently written or silently dropped.

Conversation rules (TRL's conversational format, as its chat templates need it):
messages are ``{"role", "content"}`` dicts with a known role and non-empty text;
an optional system message comes first, then user and assistant alternate,
starting with user. A prompt ends with a user turn (the completion answers it);
a completion (chosen, rejected, KTO completion) is assistant turns starting with
the assistant; an SFT conversation ends with the assistant (the last target).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sparring.graphs.assemble import Track, branch_track, build_sft_record, fixes, job_of, pair_fate, sft_track, trunk
from sparring.graphs.records import DialogueRecord

Row = dict[str, Any]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Problem:
    """One row that failed, and why."""

    index: int
    """Position of the row in what was validated."""
    row_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"row {self.index}" + (f" ({self.row_id})" if self.row_id else "") + f": {self.reason}"


@dataclass
class ValidationReport:
    valid: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _message_problems(messages: Any, what: str) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{what} is not a non-empty list of messages"]
    problems = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or set(m) != {"role", "content"}:
            problems.append(f"{what} message {i} is not a {{role, content}} dict")
        elif m["role"] not in ROLES:
            problems.append(f"{what} message {i} has unknown role {m['role']!r}")
        elif not isinstance(m["content"], str) or not m["content"].strip():
            problems.append(f"{what} message {i} ({m['role']}) is empty")
    return problems


def _alternation_problems(roles: Sequence[str], what: str, *, first: str) -> list[str]:
    """Roles after an optional leading system message must alternate, starting with ``first``."""
    body = list(roles[1:] if roles and roles[0] == "system" else roles)
    if "system" in body:
        return [f"{what} has a system message after the first position"]
    other = {"user": "assistant", "assistant": "user"}
    expected = first
    for i, role in enumerate(body):
        if role != expected:
            return [f"{what} roles do not alternate: turn {i} is {role!r}, expected {expected!r}"]
        expected = other[role]
    return []


def validate_conversation(messages: Any, what: str, *, first: str, last: str | None = None) -> list[str]:
    """Well-formed messages, alternating roles from ``first``, ending on ``last`` when given."""
    problems = _message_problems(messages, what)
    if problems:
        return problems
    roles = [m["role"] for m in messages]
    problems = _alternation_problems(roles, what, first=first)
    if not problems and last is not None and roles[-1] != last:
        problems.append(f"{what} ends with {roles[-1]!r}, expected {last!r}")
    return problems


def _keys_problems(row: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    missing = [k for k in keys if k not in row]
    return [f"missing column(s) {', '.join(missing)}"] if missing else []


def validate_dpo_row(row: Mapping[str, Any]) -> list[str]:
    """A conversational preference row: prompt ending on the user, chosen and rejected non-empty
    assistant completions that differ."""
    problems = _keys_problems(row, ("prompt", "chosen", "rejected"))
    if problems:
        return problems
    problems = validate_conversation(row["prompt"], "prompt", first="user", last="user")
    problems += validate_conversation(row["chosen"], "chosen", first="assistant")
    problems += validate_conversation(row["rejected"], "rejected", first="assistant")
    if not problems and _texts(row["chosen"]) == _texts(row["rejected"]):
        problems.append("chosen and rejected are the same text")
    return problems


def validate_kto_row(row: Mapping[str, Any]) -> list[str]:
    """An unpaired preference row: prompt, an assistant completion, a boolean label."""
    problems = _keys_problems(row, ("prompt", "completion", "label"))
    if problems:
        return problems
    problems = validate_conversation(row["prompt"], "prompt", first="user", last="user")
    problems += validate_conversation(row["completion"], "completion", first="assistant")
    if not isinstance(row["label"], bool):
        problems.append(f"label is {type(row['label']).__name__}, not a boolean")
    return problems


def validate_sft_row(row: Mapping[str, Any]) -> list[str]:
    """A conversation for supervised fine-tuning: user first, assistant last (the final target)."""
    return _keys_problems(row, ("messages",)) or validate_conversation(
        row["messages"], "messages", first="user", last="assistant")


def validate_summarization_row(row: Mapping[str, Any]) -> list[str]:
    problems = _keys_problems(row, ("dialogue", "summary"))
    for key in ("dialogue", "summary") if not problems else ():
        if not isinstance(row[key], str) or not row[key].strip():
            problems.append(f"{key} is empty")
    return problems


def validate_dialogue_row(row: Mapping[str, Any]) -> list[str]:
    """A dialogue record: at least one turn, none of them empty."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["has no turns"]
    return [f"turn {i} is empty" for i, m in enumerate(messages) if not str(m.get("content", "")).strip()]


def _dialogue_record(dialogue: Mapping[str, Any]) -> tuple[DialogueRecord | None, list[str]]:
    try:
        return DialogueRecord.model_validate(dialogue), []
    except ValidationError as exc:
        return None, [f"its dialogue cannot be read ({exc.error_count()} field error(s))"]


def _unfixed(track: Track, i: int) -> str:
    return f"turn {i}, flagged ({', '.join(track.flagged[i])}) and not replaced by a verified revision"


def _unfixed_before(track: Track, upto: int) -> str:
    """Which flagged turn before ``upto`` has no verified revision, said for a problem line."""
    return _unfixed(track, next(i for i in sorted(track.flagged) if i < upto and not fixes(track.revisions.get(i))))


def validate_pair_against_dialogue(pair: Mapping[str, Any], dialogue: Mapping[str, Any] | None, *,
                                   include_unverified: bool = True) -> list[str]:
    """The pair is what its dialogue gives under the data rules (graphs/assemble.py): its prompt is the
    conversation before its turn, seen from the side that spoke it, with every flagged turn replaced by its
    verified revision (from the branch when the dialogue has one), its rejected side is that turn as spoken,
    and it is verified unless ``include_unverified``."""
    if dialogue is None:
        return [f"its dialogue {pair.get('dialogue_id')!r} is not in dialogues.jsonl"]
    record, problems = _dialogue_record(dialogue)
    if record is None:
        return problems
    track = branch_track(record) if pair.get("from_branch") else trunk(record)
    if track is None:
        return ["it says it is from its dialogue's branch, and the dialogue has none"]
    turns = track.messages
    t = pair.get("turn_index")
    if not isinstance(t, int) or not 0 <= t < len(turns):
        return [f"turn_index {t!r} is outside its dialogue ({len(turns)} turns)"]
    if not pair.get("verified") and not include_unverified:
        problems.append("unverified: its revision did not pass the verifier (--include-unverified exports it)")
    rev = track.revisions.get(t)
    fate = pair_fate(record, rev, track, keep_unverified=True) if rev is not None else None
    if fate == "after_branch":
        return [*problems, f"turn {t} is after its dialogue's branch point: its pairs come from the branch"]
    if fate == "flagged_prompt":
        return [*problems, f"prompt holds {_unfixed_before(track, t)}"]
    if fate == "revised_prompt":
        return [*problems, f"prompt holds turn {track.first_replaced()}, replaced by its revision, which the other "
                "side never answered: a conversation that did not happen"]
    if fate == "cut_turn":
        return [*problems, f"turn {t} or its revision was cut at the token limit: neither is a training target"]
    if fate == "unjudged_prompt":
        return [*problems, f"prompt holds turn {min(track.unjudged)}, which the critic could not judge"]
    if fate in ("revision_failed", "verify_failed") and not pair.get("verified"):
        problems.append(f"{fate.replace('_', ' ')}: its {'revision' if fate == 'revision_failed' else 'check'} "
                        "call failed for good")
    speaker = turns[t].speaker
    clean = track.clean_turns(t) or []
    expected = [{"role": "assistant" if m.speaker == speaker else "user", "content": m.content} for m in clean]
    convo = [dict(m) for m in pair.get("prompt") or [] if isinstance(m, Mapping) and m.get("role") != "system"]
    opens = not clean or turns[0].speaker == speaker
    if opens and len(convo) == len(expected) + 1 and convo[0].get("role") == "user":
        convo = convo[1:]  # the cue a side that opens the conversation gets
    if convo != expected:
        at = next((i for i, (a, b) in enumerate(zip(convo, expected)) if a != b), min(len(convo), len(expected)))
        spoken = {turns[i].content: i for i in track.flagged if i < t}
        held = spoken.get(str(convo[at].get("content"))) if at < len(convo) else None
        if held is not None:
            return [*problems, f"prompt holds turn {held} as spoken, flagged ({', '.join(track.flagged[held])}); "
                    "its verified revision belongs there"]
        return [*problems, f"prompt is not a prefix of its dialogue: message {at} differs "
                f"({len(convo)} messages vs the dialogue's {len(expected)} before turn {t})"]
    rejected = [m.get("content") for m in pair.get("rejected") or [] if isinstance(m, Mapping)]
    if rejected != [turns[t].content]:  # exactly, whitespace included: a target's reply is kept as it came
        return [*problems, f"rejected is not turn {t} of its dialogue as spoken"]
    return problems


def validate_sft_against_dialogue(row: Mapping[str, Any], dialogue: Mapping[str, Any] | None) -> list[str]:
    """The SFT conversation is what its dialogue gives under the data rules: no flagged turn is a training
    target unless replaced by its verified revision (cut before the first that has none)."""
    if dialogue is None:
        return [f"its dialogue {row.get('dialogue_id')!r} is not in dialogues.jsonl"]
    record, problems = _dialogue_record(dialogue)
    if record is None:
        return problems
    expected = build_sft_record(record, job_of(record))
    body = [m for m in row.get("messages") or [] if m.get("role") != "system"]
    want = [m for m in (expected.messages if expected else []) if m.get("role") != "system"]
    if body == want[:len(body)]:
        return []
    track = sft_track(record)
    targets = {m.get("content") for m in body if m.get("role") == "assistant"}
    for i in sorted(track.flagged):
        if not fixes(track.revisions.get(i)) and track.messages[i].content in targets:
            return [f"holds {_unfixed(track, i)} as a training target"]
    for i in sorted(track.unjudged):
        if track.messages[i].content in targets:
            return [f"holds turn {i}, which the critic could not judge, as a training target"]
    for i in sorted(track.cut):
        if track.messages[i].speaker == record.briefed_side and track.messages[i].content in targets:
            return [f"holds turn {i}, cut at the token limit, as a training target"]
    at = next((i for i, (a, b) in enumerate(zip(body, want)) if a != b), min(len(body), len(want)))
    return [f"messages are not its dialogue's training view: message {at} differs"]


def _texts(messages: Iterable[Mapping[str, Any]]) -> list[Any]:
    return [str(m.get("content", "")).strip() for m in messages]


def _shape(row: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The column names and which columns are conversations: rows of one dataset share both."""
    conversational = tuple(sorted(k for k, v in row.items()
                                  if isinstance(v, list) and v and isinstance(v[0], Mapping) and "role" in v[0]))
    return tuple(sorted(row)), conversational


def validate_rows(rows: Sequence[Row], check: Callable[[Row], list[str]], *,
                  ids: Sequence[str | None] | None = None) -> ValidationReport:
    """Run ``check`` on every row and require one format throughout (the first row's columns, and
    the same columns holding conversations)."""
    report = ValidationReport()
    shape = _shape(rows[0]) if rows else None
    for index, row in enumerate(rows):
        reasons = check(row)
        if not reasons and _shape(row) != shape:
            assert shape is not None
            reasons = [f"its format differs from row 0 (columns {list(_shape(row)[0])} vs {list(shape[0])}; "
                       f"conversational {list(_shape(row)[1])} vs {list(shape[1])})"]
        if reasons:
            report.problems.append(Problem(index, ids[index] if ids else None, "; ".join(reasons)))
        else:
            report.valid.append(row)
    return report
