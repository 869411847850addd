"""Proper scores of predictive distributions against held-out observations.

Every score here is computed on ``log y``: scaling-law targets span orders of magnitude
and their noise is multiplicative, so a 2% miss should cost the same on a 1.8-nat loss as
on a 5-nat one, and scores of different tasks can be averaged. Lower is better for the
interval score, CRPS and absolute error; higher for the log predictive density.

References: Gneiting and Raftery (2007), "Strictly Proper Scoring Rules, Prediction, and
Estimation", JASA 102:359 (interval score, CRPS); Winkler (1972).
"""

import numpy as np

LEVELS = (0.5, 0.8, 0.9, 0.95)
"""Central-interval probabilities whose empirical coverage backtests report."""


def central_interval(draws, level):
    """Equal-tailed ``level`` interval of draws (draws, rows), ignoring NaN draws."""
    tail = (1.0 - level) / 2.0
    return np.nanquantile(draws, tail, axis=0), np.nanquantile(draws, 1.0 - tail, axis=0)


def covered(draws, y, level):
    """Whether each observation lies in the central ``level`` interval of its draws."""
    lower, upper = central_interval(draws, level)
    return (lower <= y) & (y <= upper)


def interval_score(draws, y, level=0.9):
    """Winkler's interval score of the central ``level`` interval, per row.

    ``(u - l) + (2 / a) (l - y) 1{y < l} + (2 / a) (y - u) 1{y > u}`` with ``a = 1 - level``:
    width, plus a penalty for misses scaled so that the score is proper. A narrow
    interval that misses pays more than a wide one that covers.
    """
    lower, upper = central_interval(draws, level)
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


def score_table(log_draws, log_y, lpd=None, levels=LEVELS):
    """All scores of one method on held-out rows, as a dict of averages.

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
    dict
        ``coverage_50 ... coverage_95`` (fractions), ``interval_score_90``, ``crps``,
        ``median_abs_log_error``, ``rmsle`` (of the median) and ``lpd`` (mean, or NaN).
    """
    out = {
        f"coverage_{round(100 * lv)}": float(np.mean(covered(log_draws, log_y, lv)))
        for lv in levels
    }
    errors = abs_error_of_median(log_draws, log_y)
    out.update(
        interval_score_90=float(np.mean(interval_score(log_draws, log_y, 0.9))),
        crps=float(np.mean(crps(log_draws, log_y))),
        median_abs_log_error=float(np.median(errors)),
        rmsle=float(np.sqrt(np.mean(errors**2))),
        lpd=float(np.mean(lpd)) if lpd is not None else float("nan"),
    )
    return out
