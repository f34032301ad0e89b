"""Rates with error bars: the one home of sparring's interval maths (pure functions, no I/O).

- ``wilson(k, n)``: the Wilson score interval of a proportion k/n. Unlike the
  normal ("Wald") interval it stays inside [0, 1], is not empty at 0/n or n/n, and
  keeps close to its nominal coverage on the handful of items sparring's figures
  often rest on.
- ``rate(k, n)``: a proportion as stats.json and calibration.json store it:
  ``{"rate", "low", "high", "n"}`` (rate None and no bounds when n is 0).
- ``kappa_interval``: Cohen's kappa of two raters' yes/no decisions with its
  large-sample standard error (Cohen 1960: sqrt(po (1 - po) / (n (1 - pe)^2)))
  and the normal interval kappa +- z se, clipped to [-1, 1].
- ``corrected_rate``: the prevalence correction (Rogan-Gladen) of an observed
  flag rate p by the critic's measured recall r and false-positive rate f:
  (p - f) / (r - f), clipped to [0, 1]. Its interval comes from the Wilson
  intervals of the three parts, each at 1 - alpha/3 (Bonferroni, so that all
  three hold together with probability at least 1 - alpha): the corrected rate
  is monotone in each part wherever r > f, so its extremes over that box are at
  the box's corners. When the box reaches r <= f the bounds are unbounded and
  the interval is [0, 1]; when the measured r <= f itself, no correction is
  possible (the critic flags violations no more often than clean turns) and the
  result says so.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import Any

__all__ = ["CONFIDENCE", "corrected_rate", "interval_text", "kappa_interval", "kappa_text", "rate", "wilson", "z_of"]

CONFIDENCE = 0.95
"""The level of every interval sparring prints."""
_DIGITS = 4


def z_of(confidence: float = CONFIDENCE) -> float:
    """The two-sided standard normal quantile of ``confidence`` (1.96 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials; (0.0, 1.0) when n is 0."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = z_of(confidence)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def rate(k: int, n: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{"rate", "low", "high", "n"}`` of k in n, rounded as stored; rate and bounds None when n is 0."""
    if n == 0:
        return {"rate": None, "low": None, "high": None, "n": 0}
    low, high = wilson(k, n, confidence)
    return {"rate": round(k / n, _DIGITS), "low": round(low, _DIGITS), "high": round(high, _DIGITS), "n": n}


def kappa_interval(both: int, first_only: int, second_only: int, neither: int,
                   confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Cohen's kappa of two raters' yes/no decisions with ``se``, ``low`` and ``high``; every value
    None when it is undefined (no items, or both raters constant so chance agreement is total)."""
    n = both + first_only + second_only + neither
    none = {"kappa": None, "se": None, "low": None, "high": None, "n": n}
    if n == 0:
        return none
    observed = (both + neither) / n
    yes_first, yes_second = (both + first_only) / n, (both + second_only) / n
    chance = yes_first * yes_second + (1 - yes_first) * (1 - yes_second)
    if chance >= 1.0:
        return none
    kappa = (observed - chance) / (1 - chance)
    se = math.sqrt(observed * (1 - observed) / n) / (1 - chance)
    z = z_of(confidence)
    return {"kappa": round(kappa, _DIGITS), "se": round(se, _DIGITS),
            "low": round(max(-1.0, kappa - z * se), _DIGITS), "high": round(min(1.0, kappa + z * se), _DIGITS), "n": n}


def _rogan_gladen(p: float, recall: float, fpr: float) -> float:
    return min(1.0, max(0.0, (p - fpr) / (recall - fpr)))


def corrected_rate(flagged: int, judged: int, caught: int, violating: int, false_flags: int, clean: int,
                   confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The observed rate flagged/judged corrected for a critic that catches ``caught`` of ``violating``
    labelled violations (recall) and flags ``false_flags`` of ``clean`` labelled clean turns (its
    false-positive rate). Returns ``{"rate", "low", "high", "n", "observed", "recall", "fpr",
    "possible", "why"}``; ``possible`` False (rate and bounds None) when there is nothing to correct or
    the measured recall is no better than the false-positive rate."""
    out: dict[str, Any] = {"rate": None, "low": None, "high": None, "n": judged, "possible": False, "why": None,
                           "observed": rate(flagged, judged, confidence), "recall": rate(caught, violating, confidence),
                           "fpr": rate(false_flags, clean, confidence),
                           "method": "Rogan-Gladen (p - fpr) / (recall - fpr), clipped to [0, 1]; interval over the "
                                     "Wilson intervals of p, recall and fpr at 1 - alpha/3 each (Bonferroni)"}
    if not (judged and violating and clean):
        out["why"] = "no observed rate" if not judged else "no calibration items to measure recall and fpr on"
        return out
    p, recall, fpr = flagged / judged, caught / violating, false_flags / clean
    if recall <= fpr:
        out["why"] = (f"not possible: the critic's recall ({recall:.0%}) is no better than its false-positive rate "
                      f"({fpr:.0%}), so its flags carry no information about the rate")
        return out
    each = 1 - (1 - confidence) / 3
    boxes = [wilson(flagged, judged, each), wilson(caught, violating, each), wilson(false_flags, clean, each)]
    if boxes[1][0] <= boxes[2][1]:  # the box reaches recall <= fpr: the corrected rate is unbounded there
        low, high = 0.0, 1.0
    else:
        corners = [_rogan_gladen(a, b, c) for a, b, c in itertools.product(*boxes)]
        low, high = min(corners), max(corners)
    value = _rogan_gladen(p, recall, fpr)
    out.update(rate=round(value, _DIGITS), low=round(min(low, value), _DIGITS), high=round(max(high, value), _DIGITS),
               possible=True)
    return out


def interval_text(ci: dict[str, Any] | None, *, digits: int = 0) -> str:
    """``42% [31-54%]`` for a ``rate``/``corrected_rate`` record; ``-`` when there is no rate."""
    if not ci or ci.get("rate") is None:
        return "-"
    return f"{ci['rate']:.{digits}%} [{ci['low']:.{digits}%}-{ci['high']:.{digits}%}]"


def kappa_text(agreement: dict[str, Any]) -> str:
    """``0.42 [0.10, 0.74]`` from an agreement record (``kappa`` and ``kappa_ci``); ``-`` when undefined."""
    ci = agreement.get("kappa_ci") or {}
    if agreement.get("kappa") is None:
        return "-"
    return f"{agreement['kappa']:.2f}" + (f" [{ci['low']:.2f}, {ci['high']:.2f}]" if ci.get("low") is not None else "")
