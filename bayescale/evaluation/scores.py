"""Proper scores of predictive distributions against held-out observations.

Every score here is computed on ``log y``: scaling-law targets span orders of magnitude
and their noise is multiplicative, so a 2% miss should cost the same on a 1.8-nat loss as
on a 5-nat one, and scores of different tasks can be averaged. Lower is better for the
interval score, CRPS and absolute error; higher for the log predictive density.

References: Gneiting and Raftery (2007), "Strictly Proper Scoring Rules, Prediction, and
Estimation", JASA 102:359 (interval score, CRPS); Winkler (1972).
"""

import math

import numpy as np
import pandas as pd

from bayescale.arguments import check_probability, is_integer, seeded
from bayescale.errors import DataError, SpecError
from bayescale.predictive import quantiles

LEVELS = (0.5, 0.8, 0.9, 0.95)
"""Central-interval probabilities whose empirical coverage backtests report."""


def covered(draws, y, level):
    """Whether each observation lies in the central ``level`` interval of its draws."""
    _, lower, upper = quantiles(draws, level)
    return (lower <= y) & (y <= upper)


def interval_score(draws, y, level=0.9):
    """Winkler's interval score of the central ``level`` interval, per row.

    ``(u - l) + (2 / a) (l - y) 1{y < l} + (2 / a) (y - u) 1{y > u}`` with ``a = 1 - level``:
    width, plus a penalty for misses scaled so that the score is proper. A narrow
    interval that misses pays more than a wide one that covers.
    """
    _, lower, upper = quantiles(draws, level)
    alpha = 1.0 - level
    below = np.maximum(lower - y, 0.0)
    above = np.maximum(y - upper, 0.0)
    return (upper - lower) + 2.0 / alpha * (below + above)


def crps(draws, y):
    """Continuous ranked probability score from draws, per row (NaN draws left out).

    ``E|X - y| - E|X - X'| / 2``, with the second term from the sorted draws in
    O(m log m): ``E|X - X'| = 2 / m^2 * sum_i (2 i - m - 1) x_(i)``.
    """
    out = np.empty(draws.shape[1])
    for j in range(draws.shape[1]):
        x = np.sort(draws[:, j][np.isfinite(draws[:, j])])
        m = len(x)
        spread = 2.0 / m**2 * np.sum((2 * np.arange(1, m + 1) - m - 1) * x)
        out[j] = np.mean(np.abs(x - y[j])) - spread / 2.0
    return out


def abs_error_of_median(draws, y):
    """``|median - y|`` per row: on ``log y``, the absolute log error of the point forecast."""
    return np.abs(np.nanmedian(draws, axis=0) - y)


def pointwise(log_draws, log_y, lpd=None, levels=LEVELS):
    """Every score of one method, per held-out row.

    Parameters
    ----------
    log_draws : ndarray, shape (draws, rows)
        Predictive draws of ``log y``.
    log_y : ndarray, shape (rows,)
        Held-out observations, logged.
    lpd : ndarray, optional
        Pointwise log predictive density of ``log y``, when the method has one.
    levels : tuple of float

    Returns
    -------
    pandas.DataFrame
        One row per held-out row: ``coverage_50 ... coverage_95`` (1.0 where the row lies
        in that central interval, else 0.0), ``interval_score_90``, ``crps``,
        ``abs_log_error`` (of the median) and ``lpd`` (NaN without a density). Kept per row
        so that :func:`bootstrap_interval` can say how far a backtest's averages could
        move with other held-out runs.
    """
    out = {
        f"coverage_{round(100 * lv)}": covered(log_draws, log_y, lv).astype(float) for lv in levels
    }
    out.update(
        interval_score_90=interval_score(log_draws, log_y, 0.9),
        crps=crps(log_draws, log_y),
        abs_log_error=abs_error_of_median(log_draws, log_y),
        lpd=np.asarray(lpd, float) if lpd is not None else np.full(len(log_y), np.nan),
    )
    return pd.DataFrame(out)


def score_table(log_draws, log_y, lpd=None, levels=LEVELS):
    """All scores of one method on held-out rows, as a dict of averages over :func:`pointwise`.

    Returns
    -------
    dict
        ``coverage_50 ... coverage_95`` (fractions), ``interval_score_90``, ``crps``,
        ``median_abs_log_error``, ``rmsle`` (of the median) and ``lpd`` (mean, or NaN).
    """
    return summarise(pointwise(log_draws, log_y, lpd, levels))


def summarise(rows):
    """The averages :func:`score_table` reports, from :func:`pointwise`'s rows."""
    out = rows.drop(columns="abs_log_error").mean(skipna=False).astype(float).to_dict()
    errors = rows["abs_log_error"].to_numpy()
    out.update(
        median_abs_log_error=float(np.median(errors)), rmsle=float(np.sqrt(np.mean(errors**2)))
    )
    return out


def bootstrap_interval(values, clusters=None, prob=0.9, n_resamples=4000, random_seed=0):
    """Percentile bootstrap interval of the mean of ``values``, resampling whole clusters.

    A backtest's coverage is an average over a handful of held-out runs, and neighbouring
    runs share their errors (checkpoints of one curve, runs of one budget), so 81% from
    65 curves and 65% from 23 runs are not equally sure. Resampling clusters with
    replacement (the cluster bootstrap; Davison and Hinkley 1997, section 3.8) keeps the
    dependence inside each cluster; each resample's mean is over all of its points, so
    large clusters weigh as they do in the estimate.

    Parameters
    ----------
    values : array-like of float
        One score per point (e.g. 1.0/0.0 for covered or not).
    clusters : array-like, optional
        A label per point; points sharing a label are resampled together. Default: every
        point is its own cluster (independent points).
    prob : float
        Probability of the interval.
    n_resamples : int
        At least ``2 / (1 - prob)`` (20 at 90%), so that each tail holds a resample.
    random_seed : int

    Returns
    -------
    (float, float)
        The interval; NaN where any value is NaN. Below about ten clusters the interval
        is too narrow (it can only take values the clusters' means allow: with every
        point covered it is [1, 1]), so read it as a lower bound on the uncertainty.

    Raises
    ------
    SpecError
        For ``prob`` outside (0, 1) or too few ``n_resamples``.
    DataError
        For fewer than 2 clusters (or points), or ``clusters`` of another shape.
    """
    _check_resampling(prob, n_resamples)
    values = np.asarray(values, float)
    if values.ndim != 1:
        raise DataError(f"bootstrap_interval needs a 1-d array of values, got shape {values.shape}")
    labels = np.arange(len(values)) if clusters is None else np.asarray(clusters)
    if labels.shape != values.shape:
        raise DataError(f"clusters has shape {labels.shape}; values have {values.shape}")
    codes = pd.factorize(labels, use_na_sentinel=False)[0]  # a missing label is one cluster
    n_clusters = codes.max(initial=-1) + 1
    if n_clusters < 2:  # every resample would be the one cluster: a zero-width interval
        raise DataError(
            "an interval needs at least 2 held-out rows/clusters to resample; got "
            f"{len(values)} row(s) in {n_clusters} cluster(s) of the labels (clusters= or by=)"
        )
    if np.isnan(values).any():
        return np.nan, np.nan
    sums, counts = np.bincount(codes, values), np.bincount(codes).astype(float)
    rng = seeded(random_seed)
    picks = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=n_resamples)
    means = (picks @ sums) / (picks @ counts)
    tail = (1.0 - prob) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def _check_resampling(prob, n_resamples):
    """``prob`` in (0, 1) and enough resamples to put one beyond each end of the interval.

    With fewer than ``2 / (1 - prob)`` resamples (20 at 90%) a tail holds no resample, and
    the interval's ends are the extreme resamples: narrower than asked, silently.
    """
    check_probability(prob, "prob")
    fewest = math.ceil(2 / (1 - prob) - 1e-9)  # 2 / (1 - 0.9) is 20.000000000000004
    if not is_integer(n_resamples):
        raise SpecError(f"n_resamples must be an integer, got {n_resamples!r}")
    if n_resamples < fewest:
        raise SpecError(
            f"n_resamples={n_resamples} is too few for a {prob:g} interval: at least {fewest} "
            "put one resample beyond each end (thousands give a stable interval)"
        )
