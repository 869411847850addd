"""Approach 2 of Hoffmann et al. (2022) as one law: isoFLOP parabolas whose minima follow power laws."""

import numpy as np
import pandas as pd

from bayescale.arguments import is_number
from bayescale.data import numeric_column, read_table
from bayescale.errors import DataError, SpecError
from bayescale.laws import ScalingLaw
from bayescale.priors import Prior

WINDOW = 3.0
"""Default of :func:`near_optimum`: runs within a factor 3 of each budget's best model size."""


class IsoFLOP(ScalingLaw):
    r"""IsoFLOP curves, parabolas in ``log N`` at fixed compute, with a power-law frontier.

    Approach 2 of Hoffmann et al. fits a parabola to the loss against ``log N`` at each
    FLOP budget, takes each parabola's minimum, and regresses ``log N*`` on ``log C``. The
    exponent's quoted uncertainty then ignores how uncertain each minimum is. Here the
    parabolas and the line through their minima are one model, so the posterior of the
    exponent ``a`` carries the minima's uncertainty. With ``C = k N D``, so
    ``z_C = z_N + z_D`` (log inputs centred on the reference scales ``N_ref``, ``D_ref``):

    .. math::

        \log L = \log L_{opt} - \gamma\, z_C + \kappa\,(z_N - n_{opt} - a\, z_C)^2

    At a fixed budget the loss is lowest at ``log N* = log N_ref + n_opt + a z_C``, so
    ``N* ∝ C^a`` and ``D* ∝ C^(1-a)``, and the loss there falls as ``L* ∝ C^-gamma``.

    Fitted without groups, every budget's minimum lies exactly on the frontier. Fitted
    with ``group=`` a budget label (the intended use), ``L_opt`` and ``n_opt`` are pooled
    by default: each budget's minimum and the loss there scatter around the frontier, with
    the scatter learnt, the Bayesian form of fitting each budget and then a line through
    the minima. ``a`` and ``gamma``, which relate budgets to each other, and the curvature
    ``kappa`` stay shared (:attr:`group_pooling`); pass ``pooling={"kappa": "pooled"}``
    for curves whose width changes with the budget.

    Why these defaults (divergent transitions of 4 x 1,000 draws, seed 0, on eight real
    isoFLOP sets: the four Open-Athena sets and Porian et al.'s first and last
    configurations on both corpora, runs within a factor 3 of each budget's best): with
    ``kappa`` pooled, the curvatures of one set barely differ and their scale collapses
    into a funnel (105 divergences on Porian et al.'s tuned RefinedWeb set, all runs).
    With ``kappa`` shared, ``L_opt`` and ``n_opt`` are ``"pooled"``: each budget is sampled
    around its own estimate (:mod:`bayescale.engine.geometry`), because the budgets' minima
    are pinned by their runs while the frontier is their prior mean, the regime where
    neither fixed form is right. Over the 15 sets of ``case_studies/isoflop_approaches.py``
    (runs within a factor 3 of each budget's best), seeds 0 and 1: 5 divergent draws in all
    (4 of the 30 fits with 1-2 each) against 248 with both non-centred (10 fits failing, one
    with a stuck chain: 238 divergences, r-hat 1.11); earlier, over the eight sets above,
    centring weights fixed from the data gave 50 and the centred form 722.

    Parameters (free)
    -----------------
    L_opt
        Loss at the optimum at the reference budget ``k N_ref D_ref``,
        ``LogNormal(1, 0.75)``: median 2.7 nats, 95% in [0.6, 12].
    gamma
        Fall of the optimum's log loss per e-fold of compute, ``LogNormal(log 0.04, 0.75)``:
        95% in [0.009, 0.17] (Porian et al.'s RefinedWeb frontier falls by 0.047 near
        1e18 FLOPs).
    n_opt
        ``log N* - log N_ref`` at the reference budget, ``Normal(0, 1)``: an isoFLOP sweep
        centres its model sizes near the optimum.
    a
        Frontier exponent of ``N* ∝ C^a``, ``Beta(2, 2)``: median 0.5, 95% in [0.09, 0.91].
    kappa
        Curvature of ``log L`` in ``log N`` at fixed compute, ``LogNormal(log 0.02, 1)``:
        95% in [0.003, 0.14]; Open-Athena's copy of Chinchilla's isoFLOP runs gives 0.022.

    ``G`` of ``N* = G (C/k)^a`` and ``b = 1 - a`` are reported as derived quantities.

    Limits. A parabola is the curve's second-order expansion at its minimum: fit the
    runs near each budget's optimum (:func:`near_optimum`). Real isoFLOP curves are
    asymmetric, and far-off runs pull the fitted minimum: on Porian et al.'s reproduction
    of Kaplan et al., the runs within a factor 3 of each budget's best give ``a`` = 0.85,
    within a factor 10 0.92 (published 0.835). The loss at the optimum is a pure power
    law in ``C`` (no floor), adequate over the few decades of an isoFLOP sweep; beyond
    them the calibrated extrapolation error widens the prediction.

    Prior predictive (``law.prior_predictive``, 4,000 draws; N in [7e7, 1.6e10], D in
    [5e9, 5e11]): median loss 2.9, 90% of draws in [0.8, 11] nats (checked in
    ``tests/test_law_isoflop.py``).

    References
    ----------
    Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models",
    arXiv:2203.15556, section 3.2. Porian et al. (2024), arXiv:2406.19146.
    """

    name = "isoflop"
    inputs = ("N", "D")
    scale_inputs = ("N", "D")
    group_pooling = {
        "gamma": "shared",
        "a": "shared",
        "kappa": "shared",
    }
    priors = {
        "L_opt": Prior("LogNormal", mu=1.0, sigma=0.75),
        "gamma": Prior("LogNormal", mu=float(np.log(0.04)), sigma=0.75),
        "n_opt": Prior("Normal", mu=0.0, sigma=1.0),
        "a": Prior("Beta", alpha=2.0, beta=2.0),
        "kappa": Prior("LogNormal", mu=float(np.log(0.02)), sigma=1.0),
    }
    citation = "Hoffmann et al. 2022, arXiv:2203.15556 (Approach 2)"

    def log_mean(self, m, p, z):  # noqa: D102
        z_c = z["N"] + z["D"]
        off = z["N"] - p["n_opt"] - p["a"] * z_c
        return m.log(p["L_opt"]) - p["gamma"] * z_c + p["kappa"] * off**2

    def derived(self, m, p, log_ref):  # noqa: D102
        log_g = log_ref["N"] + p["n_opt"] - p["a"] * (log_ref["N"] + log_ref["D"])
        return {"G": m.exp(log_g), "b": 1.0 - p["a"]}

    def frontier_exponent(self, params):
        """``a`` of ``N* ∝ C^a``: the law's own parameter."""
        return params["a"]

    @staticmethod
    def compute_optimal(params, C, flops_per_token=6.0):
        """``(N*, D*)`` at compute ``C = k N D``: ``N* = G (C/k)^a`` (``params``: ``G``, ``a``)."""
        n_opt = params["G"] * (np.asarray(C) / flops_per_token) ** params["a"]
        return n_opt, np.asarray(C) / (flops_per_token * n_opt)


def near_optimum(data, budget, factor=WINDOW, y="loss", size="N", fewest=3):
    """The runs of each budget within ``factor`` of its best run's model size.

    Approach 2 fits a parabola near each budget's minimum, not through runs a hundred times
    too small or too large, whose asymmetric losses would pull it. This keeps, per budget,
    the runs whose ``N`` lies within a factor ``factor`` either side of the run with the
    lowest loss. It drops budgets whose lowest loss is at their smallest or largest model
    (the minimum is not bracketed, so its place would be extrapolated) and budgets left
    with fewer than ``fewest`` runs (a parabola needs three points).

    Parameters
    ----------
    data : DataFrame, dict or CSV path
    budget : str
        Column labelling each run's FLOP budget (what the grouped fit groups by).
    factor : float
        Above 1; default :data:`WINDOW`.
    y, size : str
        The loss and model-size columns.
    fewest : int
        Runs a budget must keep.

    Returns
    -------
    pandas.DataFrame
        The rows kept, with their original index; ``attrs["dropped_budgets"]`` maps each
        budget dropped to the reason.
    """
    df = read_table(data)
    if not is_number(factor) or not factor > 1:
        raise SpecError(f"factor must be a number above 1, got {factor!r}")
    for column in (budget, y, size):
        if column not in df.columns:
            raise DataError(f"column {column!r} is missing; the table has {list(df.columns)}")
    if df[budget].isna().any():
        raise DataError(f"budget column {budget!r} has missing labels: every run needs its budget")
    log_n = np.log(numeric_column(df, size, "model size"))
    loss = pd.Series(numeric_column(df, y, "loss"))  # positional index: row i of df
    best = loss.groupby(df[budget].to_numpy()).transform("idxmin").to_numpy()
    by_budget = pd.Series(log_n).groupby(df[budget].to_numpy())
    edge = (log_n[best] <= by_budget.transform("min")) | (log_n[best] >= by_budget.transform("max"))
    near = np.abs(log_n - log_n[best]) <= np.log(factor) + 1e-9
    runs = pd.Series(near).groupby(df[budget].to_numpy()).transform("sum").to_numpy()
    dropped = dict.fromkeys(df[budget][edge.to_numpy()], "lowest loss at the smallest or largest N")
    dropped |= {
        label: f"fewer than {fewest} runs within a factor {factor:g} of the best"
        for label in df[budget][near & (runs < fewest)]
        if label not in dropped
    }
    kept = df[near & (runs >= fewest) & ~edge.to_numpy()].copy()
    kept.attrs["dropped_budgets"] = dropped
    return kept
