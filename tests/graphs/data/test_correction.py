"""Rates corrected by the calibration of the run's critic (graphs/data/correction.py) and the report's table."""

from __future__ import annotations

from typing import Any

from sparring.graphs.data.correction import calibrated_critic, correct_rates
from sparring.graphs.data.run_stats import compute_principle_stats
from sparring.graphs.runtime.manifest import RunManifest
from sparring.traces.report_calibration import calibration_html

MANIFEST = RunManifest(backends={"default": {"kind": "openai_compat", "model": "judge-1", "roles": ["critic"]}},
                       roles={"critic": "default"}, runs=[]).critic_backend()


def _figures(caught: int, violating: int, false_flags: int, near: int) -> dict[str, Any]:
    return {"caught": caught, "violating": violating, "false_flags": false_flags, "near_misses": near,
            "near_misses_flagged_any": false_flags, "errors": 0, "recall": caught / violating,
            "precision": None, "false_flag_rate": false_flags / near, "near_miss_any_rate": false_flags / near}


def _calibration(model: str = "judge-1") -> dict[str, Any]:
    good, useless = _figures(36, 40, 4, 40), _figures(4, 40, 8, 40)
    return {"format": 1, "scope": {"principles": ["a.x", "b.y"], "judged_against": ["a.x", "b.y"],
                                   "categories": {"a.x": "cat-a", "b.y": "cat-b"}},
            "items": {"judged": 160, "by_label": {"violates": 80, "near-miss": 80}},
            "critics": [{"name": "judge", "backend": {"kind": "openai_compat", "model": model},
                         "figures": {"overall": _figures(40, 80, 12, 80),
                                     "categories": {"cat-a": good, "cat-b": useless},
                                     "principles": {"a.x": good, "b.y": useless}}, "verdicts": []}],
            "agreement": None}


def _rates() -> dict[str, Any]:
    dialogues = ([{"status": "ok", "target_principles": ["a.x"], "violated_principles": ["a.x"], "verdicts": [{}]}] * 30
                 + [{"status": "ok", "target_principles": [], "violated_principles": ["b.y"], "verdicts": [{}]}] * 10
                 + [{"status": "ok", "target_principles": [], "violated_principles": [], "verdicts": [{}]}] * 60)
    return compute_principle_stats(dialogues, [], {"a.x": "cat-a", "b.y": "cat-b"})


def test_same_critic_is_found_by_kind_and_model() -> None:
    assert calibrated_critic(MANIFEST, _calibration())[0] is not None
    critic, why = calibrated_critic(MANIFEST, _calibration("other-model"))
    assert critic is None and "another critic" in why and "judge-1" in why
    default_only = RunManifest(backend={"kind": "openai_compat", "model": "judge-1"}, runs=[])
    assert calibrated_critic(default_only.critic_backend(), _calibration())[0]
    assert "no calibration" in calibrated_critic(MANIFEST, None)[1]


def test_corrected_rates_and_impossible_correction() -> None:
    attack = {"attacks": 20, "successes": 8}
    corrected = correct_rates(_rates(), attack, MANIFEST, _calibration())
    a = corrected["principles"]["a.x"]
    # observed 0.30, recall 0.9, fpr 0.1: (0.3 - 0.1) / 0.8 = 0.25
    assert a["possible"] and a["rate"] == 0.25 and a["low"] < 0.25 < a["high"]
    b = corrected["principles"]["b.y"]
    assert not b["possible"] and b["rate"] is None and "no better than its false-positive rate" in b["why"]
    assert corrected["attack"]["possible"] and corrected["attack"]["n"] == 20  # overall recall 0.5, fpr 0.15
    html = calibration_html(_calibration(), corrected)
    assert "Rates corrected for critic judge" in html and "no better than its false-positive rate" in html
    assert "25% [" in html


def test_no_correction_for_another_critic_says_why() -> None:
    corrected = correct_rates(_rates(), None, MANIFEST, _calibration("other-model"))
    assert corrected["critic"] is None and not corrected["principles"]
    assert "No corrected rates: the calibration is of another critic" in calibration_html(_calibration("x"), corrected)
