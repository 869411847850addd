"""Fit the extrapolation-error model of :mod:`bayescale.extrapolation` to backtests.

Input: held-out rows of many backtests ("records"), each row with its reach, its ``log y``
and the uncalibrated posterior predictive of ``log y`` there, summarised by a centre ``m``
(median) and a spread ``s`` (half the central 68% interval). A record is one fit (one cut
of one sweep, or one learning curve); a source is a set of runs (a sweep and its copies).
Model, for the rows ``i`` of record ``c`` from source ``k``::

    log y_ci - m_ci = b_c log r_ci + e_ci
    e_ci ~ Normal(0, s_ci^2 + omega^2 (log r_ci)^2)
    b_c ~ Normal(0, tau_c),   log tau_c = mu + gamma x_c + psi g_c + sigma eta_k
    eta_k ~ Normal(0, 1)

``x_c`` and ``g_c`` are the record's :class:`~bayescale.extrapolation.Edge` covariates.
``x_c`` is ``log`` of its edge spread (:func:`edge_spread`) over
:data:`~bayescale.extrapolation.REFERENCE_SPREAD`: a curve whose fit is pinned tightly at
the edge of its data drifts less beyond it (over the benchmark's 1-D learning curves,
``log |b|`` and ``log`` edge spread correlate at about 0.6; over those of image
classification alone, at 0.3), so a new sweep's drift scale starts from its own
spread, not from the average sweep's. ``g_c``, for records of 1-D laws (the
``edge_slope`` column, :func:`edge_slope`; 0 elsewhere), is ``log`` of how fast the law
still falls at that edge over :data:`~bayescale.extrapolation.REFERENCE_SLOPE`: a curve
that has flattened has less left to bend. ``b_c`` is integrated out in closed form (a
rank-one update of a diagonal covariance per record), so NUTS explores only
``mu, sigma, omega, gamma, psi`` and one ``eta`` per source. Rows at reach 1 carry no
information on the error and are dropped; a record with more than
:data:`MAX_ROWS` rows beyond its data keeps that many, evenly spaced in reach (a learning
curve's hundreds of neighbouring checkpoints share their errors and would add cost, not
information: the drift is one slope per record).

Priors: ``mu ~ Normal(log 0.01, 1.5)`` (a drift of about 1% of the loss per e-fold of
reach, give or take a factor of 20), ``sigma ~ HalfNormal(1)``, ``omega ~ HalfNormal(0.02)``,
``gamma ~ Normal(0, 1)`` and ``psi ~ Normal(0, 1)`` (no effect of the spread or the slope, a
priori; ``psi`` is fitted only where some record has an edge slope, else it is 0).

Records that carry the slope ``b_hat`` (standard error ``se``, :func:`nested_slope`) of a
backtest nested inside their fitted runs fit :class:`~bayescale.extrapolation.DriftPersistence`
instead: ``b_hat ~ Normal(0, nu^2 + se^2)`` and, with ``lam = nu^2 / (nu^2 + se^2)``,
``b_c ~ Normal(k lam b_hat, tau_k^2 + k^2 lam se^2)``; ``k ~ Normal(0.5, 0.5)`` (0: nothing
carries over, 1: all of it), ``nu ~ HalfNormal(0.05)``; there the residual scale has no
spread covariate (``gamma = 0``: over the sweeps over ``N`` and ``D`` the edge spread does not
predict the drift, correlation about 0).
"""

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bayescale import arviz_adapter
from bayescale import diagnostics as diag_mod
from bayescale.arguments import is_number
from bayescale.engine.sample import generated_source_in_cache
from bayescale.errors import BayescaleError, ConvergenceWarning, DataError, SpecError
from bayescale.evaluation.backtesting import Backtest
from bayescale.extrapolation import (
    NESTED_MIN_ROWS,
    UNCONVERGED_BACKTEST,
    DriftPersistence,
    Edge,
    ExtrapolationError,
    carried_slope,
    default,
    log_scale,
    persistence,
    persists,
    record_log_likelihood,
    resolve,
    sloped,
)
from bayescale.fitting import refit
from bayescale.ops import PYTENSOR
from bayescale.predictive import median_and_spread
from bayescale.result import ScalingFit, check_fit

COLUMNS = ("source", "record", "log_reach", "error", "spread")
EDGE_SLOPE = "edge_slope"
"""Optional column: a record's :func:`edge_slope` (NaN or absent: none, as over ``N`` and ``D``)."""
NESTED = ("nested_slope", "nested_se")
"""Optional columns: the slope of a backtest nested inside the record's fitted runs."""
MAX_ROWS = 25
"""Rows kept per record, evenly spaced in reach."""


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`.

    Attributes
    ----------
    model : ExtrapolationError or DriftPersistence
        Posterior draws of ``mu, sigma, omega`` (and ``k, nu`` for records with a nested
        backtest); ``source`` says when NUTS did not converge.
    diagnostics : Diagnostics
        Of those and the sources' ``eta``.
    source_scales : pandas.Series
        Posterior median of each source's drift scale ``tau``, by source (for the
        population, at :data:`~bayescale.extrapolation.REFERENCE_SPREAD`).
    """

    model: ExtrapolationError
    diagnostics: object
    source_scales: pd.Series


def summarise_draws(log_draws, log_y):
    """Centre and spread of predictive draws of ``log y``: ``(log y - median, half 68% width)``."""
    med, spread = median_and_spread(log_draws)
    return log_y - med, spread


def nested_slope(log_reach, log_draws, log_y):
    """A nested backtest's drift slope and its standard error, from its predictive draws.

    Each draw's slope is the weighted least-squares fit through 0 of ``log y`` minus that
    draw on ``log reach`` (weights ``1 / spread^2``); their median and sd. Taken over the
    draws rather than from independent rows because a fit's parameter uncertainty moves
    all its predictions together: on the benchmark's small sweeps that sd is 2-5x what
    independent rows would say.

    Parameters
    ----------
    log_reach : ndarray, shape (rows,)
        Rows at reach 1 are ignored.
    log_draws : ndarray, shape (draws, rows)
        The nested fit's predictive draws of ``log y``, without extrapolation error.
    log_y : ndarray, shape (rows,)

    Returns
    -------
    tuple of float
        ``(slope, se)``.
    """
    u, y = np.asarray(log_reach, float), np.asarray(log_y, float)
    keep = u > 0
    if not keep.any():
        raise SpecError("the backtest has no row beyond its fitted range (reach > 1)")
    d = np.asarray(log_draws, float)[:, keep]
    u, y = u[keep], y[keep]
    _, spread = summarise_draws(d, y)
    w = u / spread**2
    slopes = (y - d) @ w / np.sum(w * u)
    return float(np.median(slopes)), float(np.std(slopes))


def record_table(source, record, log_reach, log_draws, log_y, nested=None, slope=False):
    """One record's rows in the form :func:`calibrate` reads.

    Parameters
    ----------
    source, record : str
        The set of runs (sweep) and the fit (cut, curve) the rows come from.
    log_reach : ndarray, shape (rows,)
    log_draws : ndarray, shape (draws, rows)
        Uncalibrated predictive draws of ``log y``.
    log_y : ndarray, shape (rows,)
    nested : tuple of ndarray, optional
        ``(log_reach, log_draws, log_y)`` of a backtest nested inside the record's fitted
        runs: its slope (:func:`nested_slope`) is added as the :data:`NESTED` columns.
    slope : bool
        Add the :data:`EDGE_SLOPE` column (:func:`edge_slope`): for records of 1-D laws.
    """
    error, spread = summarise_draws(log_draws, log_y)
    table = pd.DataFrame(
        {
            "source": source,
            "record": record,
            "log_reach": np.asarray(log_reach, float),
            "error": error,
            "spread": spread,
        }
    )
    if nested is not None:
        table[list(NESTED)] = nested_slope(*nested)
    if slope:
        table[EDGE_SLOPE] = edge_slope(log_reach, np.asarray(log_y, float) - error)
    return table


def _check(table):
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"calibration records lack columns {missing}; need {list(COLUMNS)}")
    if EDGE_SLOPE not in table.columns:
        table = table.assign(**{EDGE_SLOPE: np.nan})
    beyond = table[table["log_reach"] > 0]
    numbers = ["log_reach", "error", "spread", *(c for c in NESTED if c in table.columns)]
    bad = ~np.isfinite(beyond[numbers].to_numpy()).all(axis=1)
    if bad.any():
        raise DataError(
            f"calibration records have non-finite {', '.join(numbers)} at "
            f"{list(beyond.index[bad][:8])}"
        )
    if beyond.empty:
        raise DataError(
            "no held-out row lies beyond its fit's largest scale (reach > 1): nothing to "
            "learn extrapolation error from"
        )
    keys = ["source", "record"]
    edges = beyond.groupby(keys, sort=False).apply(
        lambda g: edge_spread(g["log_reach"], g["spread"]), include_groups=False
    )
    return _thin(beyond.join(edges.rename("edge_spread"), on=keys))


def edge_spread(log_reach, spread):
    """A record's stand-in for its fit's edge spread: the least predictive spread beyond the data.

    The covariate of the drift scale is the fit's spread at its largest fitted scale
    (:attr:`bayescale.predictive.Evaluator.edge`); a record holds only its
    held-out rows, and the one of them where the parameters' uncertainty has grown least
    stands in for it (:func:`calibrate` takes the same per record).
    """
    u = np.asarray(log_reach, float)
    return float(np.min(np.asarray(spread, float)[u > 0]))


SLOPE_WINDOW = 1.0
"""Width in ``log`` reach of the held-out rows :func:`edge_slope` reads: the first e-fold."""


def edge_slope(log_reach, median):
    """A record's stand-in for its fit's edge slope: how fast its predictive median falls beyond the data.

    The covariate is the fit's median law's fall in ``log y`` over the first e-fold beyond
    its largest fitted scale (:attr:`bayescale.predictive.Evaluator.edge`); a record holds
    only its held-out rows, so the least-squares slope of their medians on ``log`` reach,
    over those within :data:`SLOPE_WINDOW` of the first, stands in for it (absolute
    value). NaN where fewer than two such rows span more than 0.05 (a record of one
    held-out run): no slope, the reference.
    """
    u, m = np.asarray(log_reach, float), np.asarray(median, float)
    near = (u > 0) & (u <= np.min(u[u > 0], initial=np.inf) + SLOPE_WINDOW)
    if near.sum() < 2 or np.ptp(u[near]) <= 0.05:
        return np.nan
    return float(abs(np.polyfit(u[near], m[near], 1)[0]))


def _thin(rows):
    """At most :data:`MAX_ROWS` rows of each record, evenly spaced in reach."""
    rows = rows.sort_values(["source", "record", "log_reach"], kind="stable")
    groups = rows.groupby(["source", "record"], sort=False)["log_reach"]
    i, n = groups.cumcount().to_numpy(), groups.transform("size").to_numpy()
    step = np.maximum(n - 1, 1) / (MAX_ROWS - 1)  # keep i nearest to 0, step, 2 step, ...
    keep = (n <= MAX_ROWS) | (np.round(np.round(i / step) * step) == i)
    return rows[keep]


def calibrate(table, draws=1000, chains=4, random_seed=0, source_label=""):
    """Posterior of the extrapolation-error model given calibration records.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`record_table` for any number of records and sources; with the
        :data:`NESTED` columns, the persistence model is fitted.
    draws, chains, random_seed
        NUTS settings (numpyro).
    source_label : str
        Stored in the result's ``source``.

    Returns
    -------
    Calibration
    """
    import pymc as pm  # lazily, as everywhere: importing bayescale builds no model
    import pytensor.tensor as pt

    rows = _check(table)
    persistent = set(NESTED) <= set(rows.columns)
    source_idx, sources = pd.factorize(rows["source"], sort=True)
    record_idx, records = pd.factorize(rows["source"] + "\0" + rows["record"].astype(str))

    def per_record_value(column):
        return pd.Series(column).groupby(record_idx).first().to_numpy()

    record_source = per_record_value(source_idx)
    u = rows["log_reach"].to_numpy()
    e = rows["error"].to_numpy()
    s2 = rows["spread"].to_numpy() ** 2
    covariates = [
        Edge(np.log(spread), np.log(slope)).covariates()
        for spread, slope in zip(
            per_record_value(rows["edge_spread"].to_numpy()),
            per_record_value(rows[EDGE_SLOPE].to_numpy()),
            strict=True,
        )
    ]
    x, g = np.array(covariates).T
    n_records = len(records)
    with pm.Model():
        mu = pm.Normal("mu", np.log(0.01), 1.5)
        sigma = pm.HalfNormal("sigma", 1.0)
        omega = pm.HalfNormal("omega", 0.02)
        eta = pm.Normal("eta", 0.0, 1.0, shape=len(sources))
        log_tau = mu + sigma * eta
        if persistent:
            k = pm.Normal("k", 0.5, 0.5)
            nu = pm.HalfNormal("nu", 0.05)
            b_hat, se = (per_record_value(rows[c].to_numpy()) for c in NESTED)
            pm.Normal("nested_slopes", 0.0, pt.sqrt(nu**2 + se**2), observed=b_hat)
            centre, variance = carried_slope(k, nu, b_hat, se)
            e = e - centre[record_idx] * u
            tau2 = pt.exp(2 * log_tau)[record_source] + variance
        else:
            log_tau = log_tau[record_source] + pm.Normal("gamma", 0.0, 1.0) * x
            if g.any():
                log_tau = log_tau + pm.Normal("psi", 0.0, 1.0) * g
            tau2 = pt.exp(2 * log_tau)
        v = s2 + omega**2 * u**2

        def per_record(x):
            return pt.zeros(n_records)[record_idx].inc(x)

        sums = [per_record(x / v) for x in (u * u, u * e, e * e)]
        log_lik = record_log_likelihood(PYTENSOR, tau2, *sums, per_record(pt.log(v)))
        pm.Potential("records", pt.sum(log_lik))
        generated_source_in_cache()
        idata = pm.sample(
            draws=draws,
            chains=chains,
            random_seed=random_seed,
            target_accept=0.95,  # few sources: sigma near 0 makes a funnel of eta
            nuts_sampler="numpyro",
            progressbar=False,
        )
    kind = DriftPersistence if persistent else ExtrapolationError
    post = idata["posterior"]
    names = [k for k in kind.PARAMETERS if k in post]
    check = diag_mod.check(idata, arviz_adapter.summary(idata, [*names, "eta"], 0.9))
    flat = {k: post[k].to_numpy().reshape(-1) for k in names}
    # its own check, named as its own: a source may already name failed backtest fits
    label = source_label + ("" if check.ok else f"; this error model: {check}")
    if not check.ok:  # its source says so on every prediction that carries it, too
        warnings.warn(
            f"the extrapolation-error model {source_label!r} failed its convergence checks "
            f"({check}); rerun with more draws, or learn from more backtests",
            ConvergenceWarning,
            stacklevel=2,
        )
    log_tau = post["mu"] + post["sigma"] * post["eta"]
    scales = pd.Series(
        np.exp(log_tau.median(dim=("chain", "draw")).to_numpy()), index=sources, name="tau"
    )
    return Calibration(kind(**flat, source=label), check, scales)


def sweep_error(fit, reach=3.0, extrapolation="calibrated", n=4000):
    """The extrapolation error of ``fit``'s own sweep, learnt from a backtest inside its runs.

    This refits the fit (:func:`bayescale.fitting.refit`: same law, priors, likelihood,
    sampler and seed) on the runs at most ``1/reach`` of its largest scale and predicts the
    rest. What those errors say depends on the law:

    - Over ``N`` and ``D`` (:func:`~bayescale.extrapolation.persists`), a sweep's drift
      persists: the nested backtest's slope (:func:`nested_slope`) is carried over by the
      shipped :class:`~bayescale.extrapolation.DriftPersistence`, which moves the
      prediction's median and leaves the residual drift's spread. With the defaults this
      is what ``extrapolation="calibrated"`` gives such a fit
      (:attr:`~bayescale.ScalingFit.own_extrapolation`, :func:`own_error`).
    - For 1-D curves a nested slope does not predict the drift beyond (on the benchmark's
      learning curves the two slopes do not correlate: :mod:`bayescale.extrapolation`),
      so it only weighs the population's drift scales by how well each explains those
      errors (:meth:`ExtrapolationError.given`).

    What these answers gain in the extrapolation benchmark, leave one source out, is
    measured in the README ("Drift persists" and the leave-one-source-out table).

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law with scale inputs (``N`` and ``D``, or ``x``) and a loss likelihood.
    reach : float
        Factor above 1: the nested fit keeps the rows whose scale is at most the largest
        fitted scale over ``reach`` (3, the nested reach the shipped persistence was
        learnt at; its held-out rows reach up to 3x).
    extrapolation : "calibrated", "population", ExtrapolationError or DriftPersistence
        What the backtest updates: ``"calibrated"``, the shipped persistence for laws over
        ``N`` and ``D`` and the shipped population for 1-D laws; ``"population"`` or an
        :class:`~bayescale.extrapolation.ExtrapolationError` (e.g. from
        :func:`recalibrate`) is weighed by the backtest, a ``DriftPersistence`` carries
        its slope over.
    n : int
        Draws of the result.

    Returns
    -------
    ExtrapolationError
        Pass it as ``extrapolation=`` to :meth:`~bayescale.ScalingFit.predict` and the
        other predictions.

    Raises
    ------
    SpecError
        For a law without scale inputs or a likelihood of accuracies, ``reach`` not above
        1, ``extrapolation="none"``, or a cut that leaves too few rows on either side.
    """
    check_fit(fit)
    if not is_number(reach) or not reach > 1:
        raise SpecError(f"reach must be a factor above 1, got {reach!r}")
    if isinstance(extrapolation, DriftPersistence):
        model = extrapolation
    elif extrapolation == "calibrated" and persists(fit.law):
        model = persistence()
    else:
        model = resolve(extrapolation)
    if model is None:
        raise SpecError("sweep_error needs a population to start from, not extrapolation='none'")
    if not fit.evaluator_with("population").extrapolates:
        raise SpecError(
            f"law {fit.law.name!r} with a {fit.likelihood.name} likelihood has no "
            "extrapolation error to learn (it needs scale inputs and a loss)"
        )
    inside, short = nested_cut(fit, reach, 2 * len(fit.law.parameters))
    if short:
        raise SpecError(f"{short}; choose a smaller reach")
    evidence, failed = checked_backtest(fit, inside)
    error = given_backtest(model, *evidence, n=n, edge=fit.evaluator.edge)
    return _unconverged_backtest(fit, inside, reach, failed, error)


def nested_cut(fit, reach, fewest=None):
    """The fitted rows a nested backtest at ``reach`` keeps, and why it cannot be made ("" if it can).

    It keeps the rows whose scale is at most the largest over ``reach``; it cannot be made
    when that leaves fewer than ``fewest`` runs to fit or none to predict. ``fewest``
    defaults to what a drift persistence's nested backtest needs: at least
    :data:`~bayescale.extrapolation.NESTED_MIN_ROWS` runs, and two per law parameter.
    """
    if fewest is None:
        fewest = max(NESTED_MIN_ROWS, 2 * len(fit.law.parameters))
    scale = log_scale(fit.law, fit.data.frame)
    inside = np.asarray(scale <= scale.max() - np.log(reach) + 1e-9)
    short = ""
    if inside.sum() < fewest or inside.all():
        short = (
            f"a cut at 1/{reach:g} of the largest scale leaves {int(inside.sum())} runs to fit "
            f"(at least {fewest} needed for law {fit.law.name!r}) and {int((~inside).sum())} "
            "to predict"
        )
    return inside, short


def nested_backtest(fit, inside):
    """Refit ``fit`` on the rows ``inside`` and predict the rest: ``(log reach, log draws, log y)``.

    Of a grouped fit, only the rows of groups the refit has: the drift measured is in
    scale, and a group with no run inside has no level of its own there (by default a
    group's terms are separate, :func:`bayescale.pooling.resolve`).
    """
    frame = fit.data.frame
    nested = refit(fit, frame[inside])
    held = frame[~inside]
    if fit.spec.group:
        held = held[held[fit.spec.group].isin(nested.group_labels)]
        if held.empty:
            raise SpecError("no group with runs beyond the cut has runs inside it")
    rows, draws = nested.predictive_draws(held, extrapolation="none")
    log_y = np.log(held[fit.data.y].to_numpy(float))
    return np.log(nested.evaluator.reach(rows)), np.log(draws), log_y


def checked_backtest(fit, inside):
    """:func:`nested_backtest`, and its fit's failed checks (``""`` if it converged).

    The refit's :class:`~bayescale.errors.ConvergenceWarning` is held back, for the caller
    to say what it means for its answer; anything else the refit says is passed on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        evidence = nested_backtest(fit, inside)
    failed = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    for w in caught:
        if w not in failed:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return evidence, str(failed[0].message) if failed else ""


def _unconverged_backtest(fit, inside, reach, failed, error):
    """``error``, its ``source`` marked and one warning given where the backtest's fit failed."""
    if not failed:
        return error
    runs = f"a refit on the {int(inside.sum())} runs up to 1/{reach:g} of its largest scale"
    warnings.warn(
        f"{fit.label}: its own backtest ({runs}) failed its convergence checks ({failed}); "
        "its errors are used all the same, as in the benchmark the error models were learnt "
        "from; extrapolation='population' leaves it out",
        ConvergenceWarning,
        stacklevel=3,
    )
    return replace(error, source=f"{error.source}; {UNCONVERGED_BACKTEST}")


def own_error(fit, reach=3.0):
    """What ``extrapolation="calibrated"`` adds beyond a fit over ``N`` and ``D``.

    :func:`sweep_error` with the shipped persistence, where the sweep can be backtested
    as the persistence was learnt: the cut at ``1/reach`` of the largest scale keeps at
    least :data:`~bayescale.extrapolation.NESTED_MIN_ROWS` runs and leaves some beyond.
    Otherwise, or where the runs below the cut cannot be fitted alone (a grouped sweep
    left with one group), the shipped population, its ``source`` saying why.

    Leave one source out in the extrapolation benchmark, this default (the population
    for 1-D laws) covers 94.0% at 90% averaged over sources and beats the uncalibrated
    fit's interval score by -0.056 [-0.072, -0.029] (README, "Drift persists").

    A nested fit that fails its convergence checks is still used: the persistence was
    learnt from such fits too (most of the benchmark's grouped real sweeps had a few
    divergent draws), and a few divergences move a slope little. One
    :class:`~bayescale.errors.ConvergenceWarning` says so, and the ``source`` carries it;
    ``extrapolation="population"`` leaves the backtest out.

    Returns
    -------
    ExtrapolationError
    """
    population = default()
    inside, short = nested_cut(fit, reach)
    if short:
        return replace(population, source=f"{population.source} (no own backtest: {short})")
    try:
        evidence, failed = checked_backtest(fit, inside)
    except BayescaleError as err:  # e.g. a group whose runs all lie beyond the cut
        reason = f"the runs below a cut at 1/{reach:g} cannot be fitted alone: {err}"
        return replace(population, source=f"{population.source} (no own backtest: {reason})")
    error = given_backtest(persistence(), *evidence)
    return _unconverged_backtest(fit, inside, reach, failed, error)


def given_backtest(model, log_reach, log_draws, log_y, n=4000, random_seed=0, edge=None):
    """One sweep's :class:`ExtrapolationError` from a backtest nested inside its runs.

    A :class:`DriftPersistence` carries the backtest's slope (:func:`nested_slope`) over;
    an :class:`ExtrapolationError` is weighed by its errors (:meth:`ExtrapolationError.given`).

    Parameters
    ----------
    model : ExtrapolationError or DriftPersistence
    log_reach, log_draws, log_y : ndarray
        As in :func:`nested_slope`: the nested fit's predictive draws of its held-out rows.
    n, random_seed : int
    edge : Edge, optional
        The sweep's edge covariates (:attr:`bayescale.predictive.Evaluator.edge`),
        which an :class:`ExtrapolationError` grows its drift scale with.
    """
    if isinstance(model, DriftPersistence):
        slope = nested_slope(log_reach, log_draws, log_y)
        return model.given(*slope, n=n, random_seed=random_seed)
    summary = summarise_draws(log_draws, log_y)
    return model.given(log_reach, *summary, n=n, random_seed=random_seed, edge=edge)


def recalibrate(backtests, method=None, draws=1000, chains=4, random_seed=0, persistence=False):
    """Learn extrapolation error from your own backtests instead of the shipped sweeps.

    Parameters
    ----------
    backtests : Backtest or dict of str to Backtest
        Each a :func:`bayescale.backtest` of one sweep (its key names the sweep: the drift
        scale varies between sweeps, so two backtests of one sweep at different cuts
        should be passed as one sweep via the same key prefix, ``"mine/1"``, ``"mine/2"``).
    method : str, optional
        The fitted method of each backtest to learn from; default its first law.
    persistence : bool
        Learn the drift persistence instead (laws over ``N`` and ``D``): each backtest's
        fit is backtested once more inside its own runs, as ``extrapolation="calibrated"``
        does (:func:`own_error`: one refit each, on the runs up to a third of its largest
        scale), and the model relates that nested slope to the drift beyond.

    Returns
    -------
    ExtrapolationError or DriftPersistence
        For ``predict(..., extrapolation=...)``; a ``DriftPersistence`` through
        :func:`sweep_error` (``sweep_error(fit, extrapolation=model)``). With one sweep,
        the spread between sweeps (``sigma``) is its prior, and a backtest nested inside
        the runs at hand can under-state the drift beyond them (on Chinchilla it did):
        learn from several sweeps where you can. How the drift scale grows with a fit's
        edge spread (``gamma``) and, for 1-D laws, its edge slope (``psi``) is learnt only
        from backtests whose edge spreads (slopes) differ; with one, each keeps its prior,
        ``Normal(0, 1)``, which widens the intervals of fits whose spread (slope) differs
        from that backtest's. Without a backtest of a 1-D law, ``psi`` is 0.
    """
    if not isinstance(persistence, bool):
        raise SpecError(f"persistence must be True or False, got {persistence!r}")
    if not isinstance(backtests, dict):
        backtests = {"backtest": backtests}
    if not backtests:
        raise SpecError("recalibrate needs at least one backtest")
    if wrong := {
        k: type(bt).__name__ for k, bt in backtests.items() if not isinstance(bt, Backtest)
    }:
        raise SpecError(
            f"recalibrate takes bayescale.backtest results (Backtest), or a dict of them; got "
            f"{wrong}"
        )
    tables, unconverged = [], []
    for key, bt in backtests.items():
        name = method or next(iter(bt.fits))
        fit = bt.fits.get(name)
        if not isinstance(fit, ScalingFit):
            raise SpecError(
                f"backtest {key!r}: method {name!r} is not a fitted law; choose among "
                f"{[k for k, v in bt.fits.items() if isinstance(v, ScalingFit)]}"
            )
        if fit.converged is False:
            unconverged.append(key)
        held = bt.predictions
        frame, d = fit.predictive_draws(held, extrapolation="none")
        log_y = np.log(held[fit.data.y].to_numpy())
        reach = fit.evaluator.reach(frame)
        nested = None
        if persistence:
            nested, failed = _nested_evidence(key, fit)
            if failed:
                unconverged.append(f"{key} (its own backtest)")
        tables.append(
            record_table(
                key.split("/")[0],
                key,
                np.log(reach),
                np.log(d),
                log_y,
                nested=nested,
                slope=sloped(fit.law),
            )
        )
    return calibrate(
        pd.concat(tables, ignore_index=True),
        draws=draws,
        chains=chains,
        random_seed=random_seed,
        source_label=_recalibrated_label(sorted(backtests), unconverged),
    ).model


def _recalibrated_label(keys, unconverged):
    """The recalibrated model's ``source``; one warning where a fit it learnt from failed."""
    label = f"recalibrated on {keys}"
    if not unconverged:
        return label
    warnings.warn(
        f"recalibrate: the fits of {unconverged} failed their convergence checks; their "
        "errors are learnt from all the same: refit them with more draws to be sure",
        ConvergenceWarning,
        stacklevel=3,
    )
    return f"{label}; the fits of {unconverged} did not converge"


def _nested_evidence(key, fit, reach=3.0):
    """Backtest ``key``'s fit inside its own runs, as :func:`own_error` does; else a SpecError.

    Returns what :func:`checked_backtest` returns.
    """
    if not persists(fit.law):
        raise SpecError(
            f"backtest {key!r}: law {fit.law.name!r} is not over N and D; a drift "
            "persistence is learnt for those only (persistence=False learns the population)"
        )
    inside, short = nested_cut(fit, reach)
    if short:
        raise SpecError(f"backtest {key!r}: {short}; its fit cannot be backtested inside")
    return checked_backtest(fit, inside)
