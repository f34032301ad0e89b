"""Writing a run's report.html from its files (the page itself is traces.report_page's)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sparring.graphs.commands.critic_calibration import read_calibration
from sparring.traces.read import iter_spans
from sparring.traces.report_page import RunFacts, render_report

from .manifest import RunManifest, load_manifest
from .store import DIALOGUES, PREFERENCES, REPORT, iter_jsonl

log = logging.getLogger(__name__)


def write_report(run_dir: Path, out: Path | None = None, *, shown_as: Path | None = None) -> Path:
    """Render the report of ``run_dir`` into ``out`` (default: its report.html), atomically.
    ``shown_as``: the directory the report names (a merge writes it before renaming its output)."""
    from sparring.graphs.data.correction import correct_rates
    from sparring.graphs.data.run_stats import category_of, compute_principle_stats
    from sparring.graphs.data.target_comparison import attack_figures

    manifest = load_manifest(run_dir)
    dialogues, pairs = list(iter_jsonl(run_dir / DIALOGUES)), list(iter_jsonl(run_dir / PREFERENCES))
    categories = manifest.principle_categories()
    rates = compute_principle_stats([d for d in dialogues if d.get("status") == "ok"], pairs, categories)
    attack = attack_figures(dialogues, lambda pid: category_of(pid, categories), manifest.targets())
    calibration = read_calibration(run_dir)
    html = render_report(run_facts(manifest), dialogues, pairs, iter_spans(run_dir), run_dir=str(shown_as or run_dir),
                         rates=rates, calibration=calibration, attack=attack,
                         corrected=correct_rates(rates, attack, manifest.critic_backend(), calibration))
    target = out or run_dir / REPORT
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target


def run_facts(manifest: RunManifest) -> RunFacts:
    """What the report shows of ``manifest``."""
    usage = manifest.usage
    return RunFacts(name=manifest.name or "", status=manifest.status,
                    backends=manifest.backends or {"default": manifest.backend or {}},
                    mode=manifest.setting("dialogue", "mode", "?"),
                    max_turns=manifest.setting("dialogue", "max_turns", "?"),
                    seed=manifest.seed if manifest.seed is not None else "", principles=len(manifest.principles),
                    prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, calls=usage.calls,
                    wall_s=manifest.timings.wall_s or 0, updated_at=manifest.timings.updated_at)


def write_report_quietly(run_dir: Path) -> Path | None:
    """``write_report`` at the end of a run: a report that cannot be written must not fail the run."""
    try:
        return write_report(run_dir)
    except Exception as exc:  # the data is written; the report can be made later with `sparring report`
        log.warning("could not write %s: %s: %s (run `sparring report %s` to retry)",
                    run_dir / REPORT, type(exc).__name__, exc, run_dir)
        return None
