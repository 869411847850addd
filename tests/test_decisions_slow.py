"""Decisions recover known answers at their nominal rate (issue 21's acceptance): slow lane.

Twenty pairs of simulated isoFLOP sweeps (``chinchilla_sweep``: 9 budgets from 6e18 to
3e21 FLOPs, 10 model sizes each, 1% noise) of two recipes whose compute-optimal loss
curves cross at about 1e20 FLOPs, inside the data; every sweep fitted with the defaults.
Per sweep of recipe A, does the 90% interval hold the truth for

* ``N*`` at the largest fitted budget (:func:`bayescale.compute_optimal`),
* the compute that reaches recipe A's optimal loss at 3e20 (:func:`bayescale.compute_for_target`),

and per pair, for the budget where the two recipes' optimal losses cross
(:func:`bayescale.crossover`)? The law is the truth here, so the answers are the law's
(``extrapolation="none"``; every budget asked about lies inside the fitted range).

Tolerance: a calibrated 90% interval covers each of 20 independent truths a
Binomial(20, 0.9) number of times; at least 15 fails with probability 1.1% per quantity
(3.3% for the three), while intervals half as wide as they should be (coverage 59%) fail
it with probability 0.87, and at coverage 50% with probability 0.98.
"""

import numpy as np
import pytest

import bayescale
from bayescale.simulate import chinchilla_sweep

pytestmark = pytest.mark.slow

RECIPE_A = {"E": 1.8, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.34}
RECIPE_B = {"E": 1.6, "A": 586.0, "B": 586.0, "alpha": 0.34, "beta": 0.34}
SIMULATIONS = 20
FEWEST_COVERED = 15
TOP = 3e21
TARGET_C = 3e20


def optimal_loss(p, C, k=6.0):
    """``L*(C) = E + K (C/k)^-gamma`` for equal exponents and A = B (then N* = sqrt(C/k))."""
    return p["E"] + (p["A"] + p["B"]) * (C / k) ** (-p["alpha"] / 2)


def crossing(a, b, k=6.0):
    """Where the two optimal-loss curves meet: ``(dK / dE)^(1/gamma)`` in ``C/k``."""
    gamma = a["alpha"] / 2
    ratio = (b["A"] + b["B"] - a["A"] - a["B"]) / (a["E"] - b["E"])
    return k * ratio ** (1 / gamma)


@pytest.fixture(scope="module")
def fits():
    out = []
    for seed in range(SIMULATIONS):
        pair = []
        for offset, truth in ((0, RECIPE_A), (1000, RECIPE_B)):
            runs = chinchilla_sweep(random_seed=seed + offset, params=truth)
            pair.append(bayescale.fit(runs, law="chinchilla", random_seed=seed))
        out.append(pair)
    return out


def test_the_design_crosses_inside_the_data():
    assert 6e18 < crossing(RECIPE_A, RECIPE_B) < TOP
    assert optimal_loss(RECIPE_A, 1e19) < optimal_loss(RECIPE_B, 1e19)


@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")
def test_decisions_cover_the_truth_at_the_nominal_rate(fits):
    covered = {"N*": 0, "compute for a target": 0, "crossover": 0}
    target = optimal_loss(RECIPE_A, TARGET_C)
    for fit_a, fit_b in fits:
        row = bayescale.compute_optimal(fit_a, TOP, extrapolation="none").iloc[0]
        truth = np.sqrt(TOP / 6.0)  # A = B and alpha = beta: N* = sqrt(C / 6)
        covered["N*"] += int(row["N_opt_lower"] <= truth <= row["N_opt_upper"])
        row = bayescale.compute_for_target(fit_a, target, extrapolation="none").iloc[0]
        covered["compute for a target"] += int(row["C_lower"] <= TARGET_C <= row["C_upper"])
        cross = bayescale.crossover(fit_a, fit_b, (1e18, 1e23), extrapolation="none")
        covered["crossover"] += int(
            cross["lower"] <= crossing(RECIPE_A, RECIPE_B) <= cross["upper"]
        )
    print(f"90% intervals holding the truth, of {SIMULATIONS}: {covered}")
    assert all(count >= FEWEST_COVERED for count in covered.values()), covered
