"""Backtests: fit on the smaller runs, predict the larger held-out ones, score honestly.

This is how a user checks, on their own data, the claim that matters: do 90% predictive
intervals at 10-100x the fitted scale hold the truth about 90% of the time? Each method
(every law's posterior, their stacking average, and the field's Huber + L-BFGS +
bootstrap baseline for each law) is scored on the same held-out rows with the proper
scores of :mod:`bayescale.evaluation.scores`, all on ``log y``.
"""

import inspect
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayescale.arguments import is_integer, is_number
from bayescale.batch import fit_many
from bayescale.data import numeric_column, read_table, row_labels
from bayescale.errors import DataError, SpecError
from bayescale.evaluation import baselines, scores
from bayescale.evaluation.averaging import average as average_fits
from bayescale.evaluation.scores import LEVELS, bootstrap_interval
from bayescale.extrapolation import resolve as resolve_extrapolation
from bayescale.fitting import fit as fit_law
from bayescale.laws import ScalingLaw, get_law
from bayescale.predictive import quantiles
from bayescale.progress import progress_bar

UNCERTAIN_SCORES = (
    *(f"coverage_{round(100 * level)}" for level in LEVELS),
    "interval_score_90",
    "crps",
    "lpd",
)
"""Scores :meth:`Backtest.uncertainty` can bound: those the table averages by a mean."""


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
    pointwise : pandas.DataFrame
        Every score per method and held-out row (:func:`bayescale.evaluation.scores.pointwise`),
        indexed by ``(method, row)`` with the rows labelled as in the data; ``table``'s
        averages are taken over it.
    """

    table: pd.DataFrame
    predictions: pd.DataFrame
    fits: dict
    pointwise: pd.DataFrame

    def uncertainty(
        self,
        by=None,
        scores=UNCERTAIN_SCORES,
        relative_to=None,
        prob=0.9,
        n_resamples=4000,
        random_seed=0,
    ):
        """Bootstrap intervals of ``table``'s average scores over the held-out rows.

        Coverage of 23 held-out runs is one draw of many the same sweep could have given;
        this says how far it could move, by resampling the held-out rows
        (:func:`bayescale.evaluation.scores.bootstrap_interval`). Two methods scored on the same rows
        share much of their luck, so whether one beats the other is read from the interval
        of their paired difference (``relative_to``), not from two overlapping intervals.

        Parameters
        ----------
        by : str or array-like, optional
            Column of the held-out rows, or one label per held-out row, marking dependent
            rows (checkpoints of one run, runs of one isoFLOP budget); they are resampled
            together; two or more clusters are needed. Default: every row on its own,
            which is too narrow when rows share their errors.
        scores : str or sequence of str
            Scores averaged by a mean (coverage, interval score, CRPS, lpd).
        relative_to : str, optional
            A method of ``table``: bound each method's score minus that method's, row by
            row (a paired bootstrap; an interval of an interval-score difference wholly
            below 0 means the method is better on rows like these).
        prob : float
            Probability of each interval, in (0, 1).
        n_resamples : int
            At least ``2 / (1 - prob)`` (20 at 90%), so that each tail holds a resample.
        random_seed : int

        Returns
        -------
        pandas.DataFrame
            One row per method; columns ``"<score> lower"`` and ``"<score> upper"``.
        """
        scores = [scores] if isinstance(scores, str) else list(scores)
        unknown = set(scores) - set(UNCERTAIN_SCORES)
        if unknown or not scores:
            raise SpecError(
                f"scores={scores!r}: intervals are available for one or more of "
                f"{list(UNCERTAIN_SCORES)} (means over rows; a median or RMSLE is not)"
            )
        if isinstance(by, str):
            if by not in self.predictions.columns:
                raise DataError(
                    f"by={by!r} is not a column of the held-out rows: "
                    f"{list(self.predictions.columns)}"
                )
            by = self.predictions[by].to_numpy()
        if relative_to is not None and relative_to not in self.table.index:
            raise SpecError(
                f"relative_to={relative_to!r} is not a method of this backtest: "
                f"{list(self.table.index)}"
            )
        reference = 0.0 if relative_to is None else self.pointwise.loc[relative_to]
        rows = {}
        for method, points in self.pointwise.groupby(level="method", sort=False):
            values = points.droplevel("method") - reference
            rows[method] = {}
            for score in scores:
                lower, upper = bootstrap_interval(
                    values[score].to_numpy(), by, prob, n_resamples, random_seed
                )
                rows[method].update({f"{score} lower": lower, f"{score} upper": upper})
        return pd.DataFrame(rows).T


def split_rows(df, split):
    """Boolean mask of the rows to fit, from a column name, a ``{column: cut}`` or a mask.

    ``{"C": 1e21}`` fits rows with ``C <= 1e21`` (several keys: all must hold; a row
    without a number there is an error, not a held-out row); a string
    names a boolean column (True = fit); an array is used as is.
    """
    if split is None:
        raise SpecError(
            "backtest needs split=: a {column: cut} such as {'C': 1e21}, a boolean column's "
            "name, or a mask of the rows to fit (bayescale.reach_split makes one)"
        )
    if isinstance(split, str):
        if split not in df.columns:
            raise DataError(f"split column {split!r} is missing; the table has {list(df.columns)}")
        mask = _fit_mask(df[split].to_numpy(), f"split column {split!r}")
    elif isinstance(split, dict):
        mask = np.ones(len(df), bool)
        for column, cut in split.items():
            if column not in df.columns:
                raise DataError(f"split on {column!r}, which is not a column: {list(df.columns)}")
            if not is_number(cut) or np.isnan(cut):
                raise SpecError(f"split cut for {column!r} must be a number, got {cut!r}")
            values = pd.to_numeric(df[column], errors="coerce")
            missing = values.isna().to_numpy()
            if missing.any():  # NaN <= cut is False: such rows would be held out unseen
                raise DataError(
                    f"split column {column!r} has missing or non-numeric values at "
                    f"{row_labels(df.index, missing)}: every row needs a number to fall on one side "
                    "of the cut; drop or fill those rows first"
                )
            mask &= (values <= cut).to_numpy()
    else:
        mask = np.asarray(split)
        if mask.shape != (len(df),):
            raise DataError(f"split mask has shape {mask.shape}; the table has {len(df)} rows")
        mask = _fit_mask(mask, "split mask")
    if mask.all() or not mask.any():
        raise DataError(
            f"split leaves {int(mask.sum())} rows to fit and {int((~mask).sum())} to test: "
            "both must be non-empty"
        )
    return mask


def _fit_mask(values, what):
    """``values`` as the boolean mask of rows to fit: booleans, or 0/1 (not any number)."""
    if values.dtype != bool and not np.isin(values, [0, 1]).all():
        raise DataError(f"{what} must hold booleans (True = fit) or 0/1")
    return values.astype(bool)


def reach_split(data, column, reach):
    """The split that holds out the runs within a factor ``reach`` of the largest ``column``.

    Before extrapolating a fit ``reach``-fold (from the largest run to a target 13x its
    compute, say), backtest the same reach inside the runs at hand:
    ``backtest(data, laws, split=reach_split(data, "C", 13))`` fits the runs up to
    ``max(C) / 13`` and scores the intervals on the rest. A miss there is a warning about
    the real extrapolation: on the Chinchilla sweep, this backtest one step below the real
    one under-covered as the real one did (``case_studies/backtests.py``).

    Parameters
    ----------
    data : DataFrame, dict or CSV path
    column : str
        Column measuring scale (compute, parameters, tokens, steps).
    reach : float
        How far the fit must extrapolate, as a factor above 1.

    Returns
    -------
    dict
        ``{column: max / reach}``, for ``split=``.
    """
    df = read_table(data)
    if df.empty:
        raise DataError(f"reach_split needs runs: the table has no rows ({list(df.columns)})")
    if not is_number(reach) or not reach > 1:
        raise SpecError(f"reach must be a factor above 1 (13 for 13x), got {reach!r}")
    if column not in df.columns:
        raise DataError(f"reach on {column!r}, which is not a column: {list(df.columns)}")
    top = numeric_column(df, column, "scale of the reach split").max()
    return {column: float(top / reach)}


def _labelled(laws):
    """``{label: {"law": law}}``: each law by its name, or with its options where two share it.

    Labelling by name alone kept only the last of ``n_breaks=1`` and ``n_breaks=2``.
    """
    names = [law.name for law in laws]
    labels = [law.name if names.count(law.name) == 1 else law.label for law in laws]
    if twice := sorted({label for label in labels if labels.count(label) > 1}):
        raise SpecError(f"laws lists {twice} more than once: each law is fitted and scored once")
    return {label: {"law": law} for label, law in zip(labels, laws, strict=True)}


def _specs(laws):
    """``{label: fit keyword arguments}`` from one law, a list of laws or a dict of them.

    Every law is resolved here, so a misspelt name or a spec without ``"law"`` fails
    before the first fit rather than after it.
    """
    if isinstance(laws, str | ScalingLaw):
        laws = [laws]
    if isinstance(laws, list | tuple):
        laws = _labelled([get_law(law) for law in laws])
    if not isinstance(laws, dict):
        raise SpecError(
            f"laws must be a law, a list of laws or a dict of them, not {type(laws).__name__}"
        )
    out = {}
    for label, spec in laws.items():
        spec = dict(spec) if isinstance(spec, dict) else {"law": spec}
        if "law" not in spec:
            raise SpecError(
                f"law spec {label!r} has no 'law' key (it has {sorted(spec)}): give "
                "{'law': name, 'inputs': ..., 'likelihood': ...}"
            )
        if taken := sorted({"data", "y"} & set(spec)):
            raise SpecError(
                f"law spec {label!r} sets {taken}: backtest fits every law to the rows its "
                "split selects, with its own y="
            )
        out[label] = {**spec, "law": get_law(spec["law"])}
    if not out:
        raise SpecError("backtest needs at least one law")
    return out


def _check_fit_options(fit_options):
    """``fit_options`` must be keywords of :func:`bayescale.fit` that backtest leaves open."""
    if fit_options is None:
        return
    if not isinstance(fit_options, dict):
        raise SpecError(
            f"fit_options must be a dict of bayescale.fit keywords, got {fit_options!r}"
        )
    taken = {"data", "law", "y"}  # the held-in rows, each law, backtest's own y=
    allowed = set(inspect.signature(fit_law).parameters) - taken
    if wrong := sorted(set(fit_options) - allowed):
        raise SpecError(
            f"fit_options {wrong} are not bayescale.fit keywords that backtest leaves open; "
            f"choose among {sorted(allowed)} (y= and the laws are backtest's own arguments)"
        )


def _check_n_bootstrap(n_bootstrap):
    """A baseline's intervals are percentiles of its refits: two or more are needed."""
    if not is_integer(n_bootstrap):
        raise SpecError(f"n_bootstrap must be an integer, got {n_bootstrap!r}")
    if n_bootstrap < 2:
        raise SpecError(
            f"n_bootstrap={n_bootstrap}: a baseline's predictive interval is a percentile "
            "interval of its bootstrap refits, so it needs at least 2 (hundreds for a stable "
            "one); pass baseline=False to score no baseline"
        )


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
    extrapolation="calibrated",
    client=None,
    progress=True,
):
    """Fit each law on the rows ``split`` selects, predict the rest, and score every method.

    Parameters
    ----------
    data : DataFrame or CSV path
    laws : str, ScalingLaw, list or dict
        A law or a list of laws to fit (names or instances), or ``{label: law}``, or
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
        many parameters can be left out). It reads the inputs, ``flops_per_token`` and
        ``group`` its law's fit reads; with a group, each group is fitted on its own, as
        the field fits each corpus (:func:`~bayescale.evaluation.baselines.huber_fit`).
    n_bootstrap : int
        Bootstrap refits of each baseline, at least 2 (their percentile intervals are the
        baseline's predictive intervals).
    fit_options : dict, optional
        Passed to every :func:`bayescale.fit` (``draws``, ``chains``, ``likelihood``...).
    random_seed : int
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        The error of the law's shape beyond the fitted rows that the Bayesian methods'
        predictions carry, as in :meth:`bayescale.ScalingFit.predict` (the baseline is
        scored as the field uses it, without).
    client : distributed.Client or str, optional
        ``None`` (default) fits the laws one after another in this process. A Dask client,
        a scheduler address or ``"local"`` (a local cluster) fits them as one batch there
        (:func:`bayescale.fit_many`), with the same posteriors bit for bit.
    progress : bool
        A progress bar over the fits in a terminal or notebook (:mod:`bayescale.progress`).

    Returns
    -------
    Backtest
    """
    resolve_extrapolation(extrapolation)  # a bad value fails before the first fit
    df = read_table(data)
    specs = _specs(laws)
    chosen = list(specs) if baseline is True else list(baseline or [])
    unknown = set(chosen) - set(specs)
    if unknown:
        raise SpecError(f"baseline= names {sorted(unknown)}, not among the laws {list(specs)}")
    if chosen:
        _check_n_bootstrap(n_bootstrap)
    _check_fit_options(fit_options)
    if y not in df.columns:
        raise DataError(f"response column {y!r} is missing; the table has {list(df.columns)}")
    mask = split_rows(df, split)
    train, test = df[mask], df[~mask]
    log_y = np.log(numeric_column(test, y, "held-out response"))
    tasks = {
        label: {"random_seed": random_seed, **(fit_options or {}), **spec, "data": train, "y": y}
        for label, spec in specs.items()
    }
    if client is None:
        each = progress_bar(list(tasks.values()), desc="backtest", progress=progress)
        fitted = [fit_law(**task) for task in each]
    else:
        fitted = fit_many(list(tasks.values()), client=client, progress=progress)
    methods = dict(zip(tasks, fitted, strict=True))
    if average and len(methods) >= 2:
        methods["stacked average"] = average_fits(dict(methods))
    bayesian = set(methods)  # the baselines below have no model of extrapolation error
    for label in chosen:
        task = tasks[label]  # the baseline reads the runs as its law's Bayesian fit did:
        shared = {k: task[k] for k in ("inputs", "group", "flops_per_token") if k in task}
        methods[f"baseline {label}"] = baselines.huber_fit(
            train,
            law=task["law"],
            y=y,
            n_bootstrap=n_bootstrap,
            random_seed=random_seed,
            **shared,
        )
    rows, points, predictions = {}, {}, test.copy()
    for name, method in methods.items():  # each a bayescale.predictive.Predictive
        options = {"extrapolation": extrapolation} if name in bayesian else {}
        _, draws = method.predictive_draws(
            test, kind="observed", random_seed=random_seed, **options
        )
        log_draws = np.log(draws)
        lpd = method.log_predictive_density(test, **options)
        if (likelihood := getattr(method, "likelihood", None)) is not None:  # else log y
            lpd = lpd + likelihood.log_y_jacobian(np.exp(log_y))
        converged = method.converged
        points[name] = scores.pointwise(log_draws, log_y, lpd).set_index(test.index)
        rows[name] = {
            "n_fit": int(mask.sum()),
            "n_test": len(test),
            "converged": converged,
            **scores.summarise(points[name]),
        }
        median, lower, upper = quantiles(draws, 0.9)
        predictions[f"{name}: median"] = median
        predictions[f"{name}: lower"] = lower
        predictions[f"{name}: upper"] = upper
    pointwise = pd.concat(points, names=["method", "row"])
    return Backtest(pd.DataFrame.from_dict(rows, orient="index"), predictions, methods, pointwise)
