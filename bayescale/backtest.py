"""Backtests: fit on the smaller runs, predict the larger held-out ones, score honestly.

This is how a user checks, on their own data, the claim that matters: do 90% predictive
intervals at 10-100x the fitted scale hold the truth about 90% of the time? Each method
(every law's posterior, their stacking average, and the field's Huber + L-BFGS +
bootstrap baseline for each law) is scored on the same held-out rows with the proper
scores of :mod:`bayescale.scores`, all on ``log y``.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayescale import baselines, scores
from bayescale.average import average as average_fits
from bayescale.data import read_table
from bayescale.errors import DataError, SpecError
from bayescale.fitting import fit as fit_law
from bayescale.laws import get_law


@dataclass(frozen=True)
class Backtest:
    """Result of :func:`backtest`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method: ``n_fit``, ``n_test``, ``converged``, coverage of the
        50/80/90/95% central intervals, ``interval_score_90``, ``crps``,
        ``median_abs_log_error``, ``rmsle`` and ``lpd`` (mean log predictive density of
        ``log y``; NaN for a baseline without bootstrap refits).
    predictions : pandas.DataFrame
        Held-out rows with ``y`` and, per method, the 90% interval and median.
    fits : dict
        The fitted objects by method name (``ScalingFit``, ``AveragedFit``, ``BaselineFit``).
    """

    table: pd.DataFrame
    predictions: pd.DataFrame
    fits: dict


def split_rows(df, split):
    """Boolean mask of the rows to fit, from a column name, a ``{column: cut}`` or a mask.

    ``{"C": 1e21}`` fits rows with ``C <= 1e21`` (several keys: all must hold); a string
    names a boolean column (True = fit); an array is used as is.
    """
    if isinstance(split, str):
        if split not in df.columns:
            raise DataError(f"split column {split!r} is missing; the table has {list(df.columns)}")
        mask = df[split].to_numpy()
        if mask.dtype != bool and not np.isin(mask, [0, 1]).all():
            raise DataError(f"split column {split!r} must hold booleans (True = fit) or 0/1")
        mask = mask.astype(bool)
    elif isinstance(split, dict):
        mask = np.ones(len(df), bool)
        for column, cut in split.items():
            if column not in df.columns:
                raise DataError(f"split on {column!r}, which is not a column: {list(df.columns)}")
            mask &= (pd.to_numeric(df[column], errors="coerce") <= cut).to_numpy()
    else:
        mask = np.asarray(split, bool)
        if mask.shape != (len(df),):
            raise DataError(f"split mask has shape {mask.shape}; the table has {len(df)} rows")
    if mask.all() or not mask.any():
        raise DataError(
            f"split leaves {int(mask.sum())} rows to fit and {int((~mask).sum())} to test: "
            "both must be non-empty"
        )
    return mask


def _specs(laws):
    """``{label: fit keyword arguments}`` from a list of laws or a dict of them."""
    if not isinstance(laws, dict):
        laws = {get_law(law).name: law for law in laws}
    out = {k: dict(v) if isinstance(v, dict) else {"law": v} for k, v in laws.items()}
    if not out:
        raise SpecError("backtest needs at least one law")
    return out


def _bootstrap_lpd(log_draws, log_y):
    """Log density of ``log y`` under a normal fitted to the bootstrap draws.

    The bootstrap gives a cloud of curves, not a density; a normal with the cloud's mean
    and sd is the most charitable density it implies.
    """
    return sps.norm.logpdf(log_y, np.mean(log_draws, axis=0), np.std(log_draws, axis=0, ddof=1))


def backtest(
    data,
    laws,
    y="loss",
    *,
    split,
    average=True,
    baseline=True,
    n_bootstrap=200,
    fit_options=None,
    random_seed=0,
):
    """Fit each law on the rows ``split`` selects, predict the rest, and score every method.

    Parameters
    ----------
    data : DataFrame or CSV path
    laws : list or dict
        Laws to fit (names or instances), or ``{label: law}``, or
        ``{label: {"law": ..., "inputs": ..., "likelihood": ...}}`` for per-law fit
        arguments (e.g. ``inputs={"x": "N"}`` for a one-input law).
    y : str
        Response column.
    split : str, dict or array of bool
        Which rows to fit; see :func:`split_rows`. Typically ``{"C": cut}``.
    average : bool
        Also score the stacking-weighted mixture of the fits (needs two or more).
    baseline : bool or list of str
        Also score the field's fit (Huber + L-BFGS grid + bootstrap) of each law, or of
        the laws labelled in the list (its start grid grows as 4^parameters, so laws with
        many parameters can be left out).
    n_bootstrap : int
        Bootstrap refits of each baseline (their percentile intervals are the baseline's
        predictive intervals).
    fit_options : dict, optional
        Passed to every :func:`bayescale.fit` (``draws``, ``chains``, ``likelihood``...).
    random_seed : int

    Returns
    -------
    Backtest
    """
    df = read_table(data)
    mask = split_rows(df, split)
    train, test = df[mask], df[~mask]
    log_y = np.log(test[y].to_numpy(float))
    methods = {}
    specs = _specs(laws)
    chosen = list(specs) if baseline is True else list(baseline or [])
    unknown = set(chosen) - set(specs)
    if unknown:
        raise SpecError(f"baseline= names {sorted(unknown)}, not among the laws {list(specs)}")
    for label, spec in specs.items():
        options = {"random_seed": random_seed, **(fit_options or {}), **spec}
        methods[label] = fit_law(train, y=y, **options)
    if average and len(methods) >= 2:
        methods["stacked average"] = average_fits(dict(methods))
    for label in chosen:
        spec = specs[label]
        methods[f"baseline {label}"] = baselines.huber_fit(
            train,
            law=spec["law"],
            y=y,
            inputs=spec.get("inputs"),
            n_bootstrap=n_bootstrap,
            random_seed=random_seed,
        )
    rows, predictions = {}, test.copy()
    for name, method in methods.items():
        if isinstance(method, baselines.BaselineFit):
            _, draws = method.predictive_draws(test)
            log_draws = np.log(draws)
            lpd = _bootstrap_lpd(log_draws, log_y)
            converged = None  # an optimiser, not a sampler: nothing to check
        else:
            _, draws = method.predictive_draws(test, kind="observed", random_seed=random_seed)
            log_draws = np.log(draws)
            lpd = method.log_predictive_density(test)
            fits = method.fits.values() if hasattr(method, "fits") else [method]
            converged = all(f.diagnostics.ok for f in fits)
        rows[name] = {
            "n_fit": int(mask.sum()),
            "n_test": len(test),
            "converged": converged,
            **scores.score_table(log_draws, log_y, lpd),
        }
        lower, upper = scores.central_interval(draws, 0.9)
        predictions[f"{name}: median"] = np.nanmedian(draws, axis=0)
        predictions[f"{name}: lower"] = lower
        predictions[f"{name}: upper"] = upper
    return Backtest(table=pd.DataFrame(rows).T, predictions=predictions, fits=methods)
