"""A run's violation and attack-success rates corrected by the calibration of its critic.

A critic that misses some violations (recall < 1) and flags some clean turns
(false-positive rate > 0) biases every rate it produces. When the run directory
holds a ``calibration.json`` (``sparring calibrate --out RUN_DIR``) of the same
critic (same backend kind and model as the run's critic role), each rate is
corrected with ``intervals.corrected_rate`` (Rogan-Gladen, with its interval):

- per principle: the flag rate (SDSD's violation rate), with that principle's
  recall and false-flag rate on its labelled items (few items: wide intervals);
- per category, and the attack success rate: with the figures of the category
  (the whole calibration for attacks).

The calibration measures the critic on single turns, the rates count dialogues
(flagged when any turn is): the correction assumes the per-turn error rates
carry over to a dialogue, an approximation stated wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .intervals import corrected_rate

__all__ = ["UNIT_NOTE", "calibrated_critic", "correct_rates"]

UNIT_NOTE = ("corrected with the critic's recall and false-flag rate measured on labelled single turns; the rates "
             "count dialogues, so this assumes the per-turn error rates carry over to a dialogue")


def calibrated_critic(run: Mapping[str, Any], calibration: Mapping[str, Any] | None
                      ) -> tuple[dict[str, Any] | None, str]:
    """The calibration's critic that is the run's critic (same backend kind and model), and why not when None.
    ``run``: the manifest's entry of the backend the run's critic ran on (``RunManifest.critic_backend``)."""
    if not calibration or not calibration.get("critics"):
        return None, "the run directory holds no calibration"
    if not run.get("model"):
        return None, "the run's manifest does not name its critic's model"
    for critic in calibration["critics"]:
        b = critic.get("backend") or {}
        if (b.get("kind"), b.get("model")) == (run.get("kind"), run.get("model")):
            return critic, ""
    names = ", ".join(f"{(c.get('backend') or {}).get('model')}" for c in calibration["critics"])
    return None, f"the calibration is of another critic ({names}; the run's is {run.get('model')})"


def _correct(observed_k: int, observed_n: int, f: Mapping[str, Any] | None) -> dict[str, Any]:
    if f is None:
        return {"rate": None, "low": None, "high": None, "n": observed_n, "possible": False,
                "why": "no labelled items of it in the calibration"}
    return corrected_rate(observed_k, observed_n, f["caught"], f["violating"], f["false_flags"], f["near_misses"])


def correct_rates(rates: Mapping[str, Any], attack: Mapping[str, Any] | None, run_critic: Mapping[str, Any],
                  calibration: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"critic", "why", "principles", "categories", "attack", "note"}``: corrected flag rates per
    principle and category (``rates`` as ``stats.compute_principle_stats`` gives them) and the corrected
    attack success rate; ``critic`` None and ``why`` said when the run has no calibration of its critic."""
    critic, why = calibrated_critic(run_critic, calibration)
    out: dict[str, Any] = {"critic": None, "why": why, "principles": {}, "categories": {}, "attack": None,
                           "note": UNIT_NOTE}
    if critic is None:
        return out
    figures = critic["figures"]
    out["critic"] = critic.get("name")
    for key in ("principles", "categories"):
        for name, row in (rates.get(key) or {}).items():
            if row.get("judged"):
                out[key][name] = _correct(row["flagged"], row["judged"], figures[key].get(name))
    if attack and attack.get("attacks"):
        out["attack"] = _correct(attack["successes"], attack["attacks"], figures["overall"])
    return out
