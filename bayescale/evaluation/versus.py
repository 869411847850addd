"""Comparisons of two recipes: P(A beats B) at a budget, and where their curves cross.

Two recipes (data sets, architectures, optimisers), each fitted by its own law, or two groups
of one grouped fit. Each question is asked of pairs of posterior draws, one of each recipe:

- Two fits have independent posteriors, so any pairing of their draws is a draw of the joint
  posterior. The draws are paired after a permutation of each, seeded by the two fits'
  ``random_seed`` (pairing by index alone would correlate two fits sampled with the same
  seed); the longer posterior is cut to the shorter's length.
- Two groups of one fit share the posterior: the same draw gives both, so what the groups
  share (a common ``E``, exponents drawn together) cancels in the comparison as it should.
  This is recognised by identity (``fit_a is fit_b``).

Extrapolation error (:mod:`bayescale.extrapolation`) enters each recipe's loss beyond its own
fitted budgets as it enters :func:`~bayescale.evaluation.decisions.compute_optimal`. For two
fits the drifts are independent (two sweeps whose shapes may each be off). With the
population's error alone (``extrapolation="population"``, centred at 0) that pulls
``P(A beats B)`` toward 1/2 the further the budget lies beyond the data: the honest answer
when nothing says the two laws err alike. The default also centres each fit's drift by a
backtest inside its own runs, which can move ``P`` either way, even past 1/2: each sweep's
own evidence of which way its law bends. Two groups of one fit share a draw's drift (one
sweep), which multiplies both losses by the same factor and so leaves their order unchanged.
``extrapolation="none"`` gives the comparison under the laws alone.
"""

import numpy as np
import pandas as pd

from bayescale.arguments import check_probability
from bayescale.data import read_table
from bayescale.diagnostics import flag
from bayescale.errors import SpecError
from bayescale.evaluation.decisions import (
    check_budgets,
    extra_inputs,
    fitted_compute,
    group_label,
    law_parameters,
    new_groups,
    optimal_draws,
    row_compute,
)
from bayescale.evaluation.targets import LossCurve, first_crossing, search_grid
from bayescale.ops import NUMPY
from bayescale.predictive import quantiles
from bayescale.result import check_fit


def prob_beats(
    fit_a,
    fit_b,
    C=None,
    ci=0.9,
    group_a=None,
    group_b=None,
    at=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """P(recipe A has a lower loss than recipe B), per budget or per given allocation.

    Parameters
    ----------
    fit_a, fit_b : ScalingFit
        Fits of laws in ``N`` and ``D``; the same fit for two of its groups.
    C : float or array_like, optional
        FLOP budgets: each recipe at its own compute-optimal allocation there.
    ci : float
        Probability of the central interval of the loss difference.
    group_a, group_b : str, optional
        The group of each grouped fit (a fitted label, or a new one for a new group).
    at : DataFrame, dict of arrays or CSV path, optional
        Instead of ``C``: rows of ``N`` and ``D`` (or ``C``, as
        :meth:`~bayescale.ScalingFit.predict` reads them) at which both recipes are compared.
    flops_per_token : float, optional
        With ``C``: ``k`` in ``C = k N D``, the same for both recipes (a budget means the same
        FLOPs); default each fit's own.
    unique_tokens : float, optional
        With ``C``: ``U`` for the recipes whose law has a unique-token input.
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        The error beyond each fit's data (module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per budget (column ``C``) or per row of ``at`` (its inputs): ``p_a_better``,
        the posterior probability that A's loss is below B's; ``difference_median``,
        ``difference_lower``, ``difference_upper`` of ``loss_A - loss_B`` (negative: A
        better); ``reach_a``, ``reach_b``, each budget over the largest budget its fit saw
        (counted with ``flops_per_token`` where given, as the budgets are).
        Pairs where either law is undefined are left out.

    Raises
    ------
    SpecError
        Neither or both of ``C`` and ``at``; one fit and one group compared with
        themselves; and what :func:`~bayescale.evaluation.decisions.compute_optimal` refuses.
    """
    check_fit(fit_a, "fit_a")
    check_fit(fit_b, "fit_b")
    check_probability(ci, "ci")
    if (C is None) == (at is None):
        raise SpecError("pass exactly one of C= (budgets, optimal allocations) and at= (N, D rows)")
    _check_distinct(fit_a, fit_b, group_a, group_b)
    if at is None:
        budgets = check_budgets(C)
        _check_unique_tokens(unique_tokens, fit_a, fit_b)
        loss = [
            optimal_draws(
                fit, budgets, group, flops_per_token, _own(unique_tokens, fit), extrapolation
            )["loss_opt"]
            for fit, group in ((fit_a, group_a), (fit_b, group_b))
        ]
        table = pd.DataFrame({"C": budgets})
        compute = [budgets, budgets]
    else:
        if unique_tokens is not None or flops_per_token is not None:
            raise SpecError(
                "flops_per_token= and unique_tokens= are for budgets C=; at= gives N, D "
                "(and a U column for a law that takes one)"
            )
        frames = [_frame(fit, at, group) for fit, group in ((fit_a, group_a), (fit_b, group_b))]
        loss = [
            _loss_at(fit, frame, group, extrapolation)
            for fit, frame, group in zip((fit_a, fit_b), frames, (group_a, group_b), strict=True)
        ]
        table = frames[0].drop(columns=[c for c in (fit_a.spec.group,) if c]).reset_index(drop=True)
        compute = [  # with each fit's k, as its fitted budgets are counted
            row_compute(frame, fit.spec.flops_per_token)
            for fit, frame in zip((fit_a, fit_b), frames, strict=True)
        ]
    ia, ib = pair_draws(fit_a, fit_b, len(loss[0]), len(loss[1]))
    difference = loss[0][ia] - loss[1][ib]
    defined = np.isfinite(difference)
    with np.errstate(invalid="ignore"):
        table["p_a_better"] = (difference < 0).sum(axis=0) / defined.sum(axis=0)
    med, lo, hi = quantiles(difference, ci, axis=0)
    table["difference_median"], table["difference_lower"], table["difference_upper"] = med, lo, hi
    table["reach_a"] = compute[0] / fitted_compute(fit_a, flops_per_token).max()
    table["reach_b"] = compute[1] / fitted_compute(fit_b, flops_per_token).max()
    table = new_groups(table, (fit_a, group_a), (fit_b, group_b))
    return flag(table, _named(fit_a, fit_b), "P(A beats B)")


def crossover(
    fit_a,
    fit_b,
    C_range,
    ci=0.9,
    group_a=None,
    group_b=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """Posterior of the budget where two recipes' compute-optimal loss curves cross.

    Per pair of draws, the first budget in ``C_range`` where ``log L*_A(C) - log L*_B(C)``
    changes sign (a scan of a log-``C`` grid, refined by a bracketed root finder as in
    :mod:`bayescale.evaluation.targets`), extrapolation error included as a drift per draw.
    A recipe that learns slower but starts ahead is overtaken there; P(no crossing) says how
    sure the posterior is that the order holds over the whole range.

    Parameters
    ----------
    fit_a, fit_b, ci, group_a, group_b, flops_per_token, unique_tokens, extrapolation
        As for :func:`prob_beats`.
    C_range : tuple of float
        ``(lo, hi)``: the budgets searched, ``0 < lo < hi``.

    Returns
    -------
    pandas.Series
        ``median``, ``lower``, ``upper`` of the crossover budget over the pairs that cross;
        ``p_no_crossing``: the share of pairs whose curves do not cross in the range;
        ``p_a_better_after``: among the pairs that cross, the share where A's loss is the
        lower one just above the crossing; ``reach_a``, ``reach_b``: the median crossover
        over the largest budget each fit saw.
    """
    check_fit(fit_a, "fit_a")
    check_fit(fit_b, "fit_b")
    check_probability(ci, "ci")
    draws = crossover_draws(
        fit_a, fit_b, C_range, group_a, group_b, flops_per_token, unique_tokens, extrapolation
    )
    c = draws["C"]
    med, lo, hi = quantiles(c, ci)
    crossed = np.isfinite(c)
    after = draws["a_better_after"][crossed].mean() if crossed.any() else np.nan
    result = pd.Series(
        {
            "median": med,
            "lower": lo,
            "upper": hi,
            "p_no_crossing": 1.0 - crossed.mean(),
            "p_a_better_after": after,
            "reach_a": med / fitted_compute(fit_a, flops_per_token).max(),
            "reach_b": med / fitted_compute(fit_b, flops_per_token).max(),
        },
        name="crossover C",
    )
    result = new_groups(result, (fit_a, group_a), (fit_b, group_b))
    return flag(result, _named(fit_a, fit_b), "crossover")


def _named(fit_a, fit_b):
    """The two recipes' fits by name, for :func:`~bayescale.diagnostics.flag`."""
    return {f"A ({fit_a.label})": fit_a, f"B ({fit_b.label})": fit_b}


def crossover_draws(
    fit_a,
    fit_b,
    C_range,
    group_a=None,
    group_b=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """Per-pair answers behind :func:`crossover`: arrays of shape (pairs,).

    Returns
    -------
    dict of str to ndarray
        ``C``: the first crossover in the range (NaN for pairs that do not cross);
        ``a_better_after``: whether A's loss is the lower one just above it.
    """
    lo, hi = _check_range(C_range)
    _check_distinct(fit_a, fit_b, group_a, group_b)
    _check_unique_tokens(unique_tokens, fit_a, fit_b)
    curves = [
        LossCurve.of(fit, group, flops_per_token, _own(unique_tokens, fit), extrapolation)
        for fit, group in ((fit_a, group_a), (fit_b, group_b))
    ]
    log_grid = search_grid(lo, hi)
    ia, ib = pair_draws(fit_a, fit_b, len(curves[0].slope), len(curves[1].slope))
    gap = curves[0].on_grid(log_grid)[ia] - curves[1].on_grid(log_grid)[ib]
    defined = np.isfinite(gap[:, :-1]) & np.isfinite(gap[:, 1:])
    change = defined & ((gap[:, :-1] > 0) != (gap[:, 1:] > 0))
    args_a = [a[ia] for a in curves[0].arguments()]
    args_b = [a[ib] for a in curves[1].arguments()]
    split = len(args_a)

    def difference(x, *args):
        return curves[0].log_loss(x, *args[:split]) - curves[1].log_loss(x, *args[split:])

    log_c = first_crossing(change, log_grid, difference, args_a + args_b)
    cell = np.argmax(change, axis=1)
    return {"C": np.exp(log_c), "a_better_after": gap[np.arange(len(gap)), cell + 1] <= 0}


def pair_draws(fit_a, fit_b, n_a, n_b):
    """Indices pairing ``n_a`` draws of A with ``n_b`` of B (module docstring)."""
    if fit_a is fit_b:
        return np.arange(n_a), np.arange(n_b)
    rng = np.random.default_rng([fit_a.spec.random_seed, fit_b.spec.random_seed])
    n = min(n_a, n_b)
    return rng.permutation(n_a)[:n], rng.permutation(n_b)[:n]


def _loss_at(fit, frame, group, extrapolation):
    """The law's mean loss, with its extrapolation error, at validated rows: (draws, rows)."""
    params = {key: v[:, None] for key, v in law_parameters(fit, group).items()}
    z = {key: v[None, :] for key, v in fit.law.z(frame, fit.log_ref).items()}
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        log_mu = fit.law.log_mean(NUMPY, params, z)
    rng = np.random.default_rng(fit.spec.random_seed)
    return np.exp(fit.evaluator_with(extrapolation).drifted(log_mu, frame, rng))


def _frame(fit, at, group):
    """``at`` validated as ``fit`` reads new rows, with ``group`` as its group column."""
    if not {"N", "D"} <= set(fit.law.inputs):
        extra_inputs(fit.law, None)  # refuses the law with the message every decision gives
    law_parameters(fit, group)  # the group is checked first, with the message every call gives
    table = read_table(at)
    if fit.spec.group:
        table = table.assign(**{fit.spec.group: group})
    return fit.spec.prediction_frame(table)


def _check_distinct(fit_a, fit_b, group_a, group_b):
    if fit_a is fit_b and group_label(fit_a, group_a) == group_label(fit_b, group_b):
        raise SpecError(
            f"fit_a and fit_b are the same fit with the same group ({group_a!r}): nothing to "
            "compare; pass group_a= and group_b= two groups of it, or two fits"
        )


def _check_unique_tokens(unique_tokens, *fits):
    if unique_tokens is not None and not any("U" in fit.law.inputs for fit in fits):
        raise SpecError("neither law has a unique-token input; drop unique_tokens=")


def _own(unique_tokens, fit):
    """``unique_tokens`` for a fit whose law takes ``U``, None for one whose law does not."""
    return unique_tokens if "U" in fit.law.inputs else None


def _check_range(C_range):
    """``(lo, hi)`` budgets with ``0 < lo < hi``, else a SpecError naming ``C_range``."""
    try:
        lo, hi = check_budgets(C_range)
    except (SpecError, ValueError):
        raise SpecError(
            f"C_range must be two positive finite budgets (lo, hi), got {C_range!r}"
        ) from None
    if not lo < hi:
        raise SpecError(f"C_range must be (lo, hi) with lo < hi, got {C_range!r}")
    return lo, hi
