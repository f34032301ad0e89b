"""The interval maths (graphs/data/intervals.py) over many generated cases: bounds, coverage, monotony."""

from __future__ import annotations

import random
from math import comb

from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.graphs.data.intervals import corrected_rate, kappa_interval, rate, wilson, z_of


@st.composite
def k_and_n(draw: st.DrawFn, max_n: int = 2000) -> tuple[int, int]:
    n = draw(st.integers(1, max_n))
    return draw(st.integers(0, n)), n


def _coverage(p: float, n: int) -> float:
    """Exact probability that the Wilson interval of Binomial(n, p) holds p."""
    total = 0.0
    for k in range(n + 1):
        low, high = wilson(k, n)
        if low <= p <= high:
            total += comb(n, k) * p ** k * (1 - p) ** (n - k)
    return total


def test_z_of_95_is_1_96() -> None:
    assert abs(z_of(0.95) - 1.959964) < 1e-6


@given(k_and_n())
def test_wilson_bounds_inside_unit_interval_and_hold_the_estimate(kn: tuple[int, int]) -> None:
    k, n = kn
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert low < high
    assert (low == 0.0) == (k == 0) or low < 1e-12
    assert (high == 1.0) == (k == n) or high > 1 - 1e-12


@given(k_and_n(max_n=500), st.integers(2, 20))
def test_wilson_narrows_as_n_grows_at_the_same_proportion(kn: tuple[int, int], factor: int) -> None:
    k, n = kn
    low, high = wilson(k, n)
    low2, high2 = wilson(k * factor, n * factor)
    assert high2 - low2 <= high - low + 1e-12


@given(k_and_n(max_n=300))
def test_wilson_is_symmetric(kn: tuple[int, int]) -> None:
    k, n = kn
    low, high = wilson(k, n)
    low2, high2 = wilson(n - k, n)
    assert abs(low - (1 - high2)) < 1e-9 and abs(high - (1 - low2)) < 1e-9


@settings(max_examples=40, deadline=None)
@given(st.floats(0.1, 0.9), st.integers(10, 150))
def test_wilson_coverage_close_to_nominal(p: float, n: int) -> None:
    # Exact binomial coverage; Wilson's oscillates around 95%: away from the edges it stays above 90% from
    # 10 items and above 92% from 40 (its known dips, measured on a grid: 90.9% and 92.8%).
    assert _coverage(p, n) >= (0.92 if n >= 40 else 0.90)


def test_wilson_average_coverage_is_nominal() -> None:
    average = sum(_coverage(i / 100, 40) for i in range(1, 100)) / 99
    assert 0.94 <= average <= 0.97


@given(k_and_n())
def test_rate_record(kn: tuple[int, int]) -> None:
    k, n = kn
    r = rate(k, n)
    assert r["n"] == n and r["low"] <= r["rate"] <= r["high"]
    assert rate(0, 0) == {"rate": None, "low": None, "high": None, "n": 0}


@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 60), st.integers(0, 60))
def test_kappa_interval_bounds(both: int, first_only: int, second_only: int, neither: int) -> None:
    k = kappa_interval(both, first_only, second_only, neither)
    if k["kappa"] is None:
        return
    assert -1.0 <= k["low"] <= k["kappa"] <= k["high"] <= 1.0
    assert k["se"] >= 0


def test_kappa_known_value() -> None:
    # 20 items: both yes 8, both no 8, 2 and 2 disagreements: po 0.8, pe 0.5, kappa 0.6.
    k = kappa_interval(8, 2, 2, 8)
    assert k["kappa"] == 0.6
    assert abs(k["se"] - (0.8 * 0.2 / 20) ** 0.5 / 0.5) < 1e-4


@given(st.integers(1, 5), st.integers(1, 5))
def test_kappa_interval_narrows_with_n(scale: int, more: int) -> None:
    small = kappa_interval(8 * scale, 2 * scale, 3 * scale, 7 * scale)
    large = kappa_interval(8 * scale * (more + 1), 2 * scale * (more + 1), 3 * scale * (more + 1),
                           7 * scale * (more + 1))
    assert large["high"] - large["low"] <= small["high"] - small["low"] + 1e-9


@given(k_and_n(300), k_and_n(100), k_and_n(100))
def test_corrected_rate_bounds(observed: tuple[int, int], recall: tuple[int, int], fpr: tuple[int, int]) -> None:
    c = corrected_rate(*observed, *recall, *fpr)
    if recall[0] / recall[1] <= fpr[0] / fpr[1]:
        assert not c["possible"] and c["rate"] is None and "not possible" in c["why"]
        return
    assert c["possible"]
    assert 0.0 <= c["low"] <= c["rate"] <= c["high"] <= 1.0


def test_corrected_rate_perfect_critic_is_the_observed_rate() -> None:
    c = corrected_rate(30, 100, 50, 50, 0, 50)
    assert c["rate"] == 0.3 and c["low"] < 0.3 < c["high"]


def test_corrected_rate_not_possible_and_nothing_to_correct() -> None:
    assert "no better" in corrected_rate(30, 100, 10, 50, 10, 50)["why"]
    assert corrected_rate(0, 0, 10, 50, 1, 50)["why"] == "no observed rate"
    assert not corrected_rate(3, 10, 0, 0, 1, 5)["possible"]


@given(st.integers(20, 200), st.integers(20, 200))
def test_corrected_rate_interval_narrows_with_more_calibration(n_cal: int, extra: int) -> None:
    small = corrected_rate(40, 100, int(0.8 * n_cal), n_cal, int(0.1 * n_cal), n_cal)
    big_n = n_cal + extra * 5
    large = corrected_rate(40, 100, int(0.8 * big_n), big_n, int(0.1 * big_n), big_n)
    if small["possible"] and large["possible"]:
        # Rounded proportions differ a little; allow for the step of int().
        assert large["high"] - large["low"] <= small["high"] - small["low"] + 0.02


def test_corrected_rate_covers_the_true_prevalence() -> None:
    """Simulated: a run of 200 judged dialogues with prevalence 0.3, a critic of recall 0.8 and false-positive
    rate 0.1, calibrated on 90 violating and 90 clean items: the interval holds 0.3 at least 95% of the time."""
    rng = random.Random(7)
    prevalence, recall, fpr, trials, held = 0.3, 0.8, 0.1, 600, 0
    observe = prevalence * recall + (1 - prevalence) * fpr
    for _ in range(trials):
        flagged = sum(rng.random() < observe for _ in range(200))
        caught = sum(rng.random() < recall for _ in range(90))
        false_flags = sum(rng.random() < fpr for _ in range(90))
        c = corrected_rate(flagged, 200, caught, 90, false_flags, 90)
        held += c["possible"] and c["low"] <= prevalence <= c["high"]
    assert held / trials >= 0.95
