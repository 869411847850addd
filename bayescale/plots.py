"""Figures of a fit: the pictures a scaling-law result is read as.

A scaling-law result is read as pictures before it is read as numbers: the runs with the
fitted law through them, the fan of the extrapolation to the budget that matters, the
isoFLOP curves and their minima, the residuals that show a law's tilt, the laws side by
side, a backtest's hits and misses. Every function returns a
:class:`matplotlib.figure.Figure` built with the object API (no ``pyplot`` state, never
``plt.show``), so figures work alike in notebooks, scripts, reports and headless CI; those
that draw a single panel also take ``ax=`` to draw into an existing axes.

Law figures, drawn here from the posterior draws evaluated in numpy on dense grids
(no resampling):

- :func:`fit_plot`: the data with the law's median and bands, per group and per model size;
- :func:`extrapolation_plot`: the fan from the data to a target, with how much of it is
  extrapolation error;
- :func:`isoflop_plot`: loss against model size at fixed budgets, with the posterior minima;
- :func:`frontier_plot`: the compute-optimal ``N*(C)`` and ``D*(C)``;
- :func:`residual_plot`: residuals against compute and tokens per parameter (or the inputs);
- :func:`comparison_plot`: several fits' fans overlaid;
- :func:`backtest_plot`: held-out predictions and their coverage against the nominal level.

Posterior views, ArviZ's own figures through arviz-plots: :func:`posterior_plot`,
:func:`forest_plot`, :func:`rank_plot`, :func:`trace_plot`, :func:`pair_plot`,
:func:`prior_posterior_plot`, :func:`ppc_plot`.

A figure of a fit that failed its convergence checks comes with the
:class:`~bayescale.errors.ConvergenceWarning` every answer gives (not the rank, trace and
pair plots, which are how one looks at that failure).

Conventions. Lines are posterior medians and bands central, equal-tailed intervals
(:func:`bayescale.predictive.quantiles`, like every interval bayescale reports) of the law's
mean: parameter uncertainty, not run-to-run noise. Bands are 50% and 90% unless ``ci=``
says otherwise. Beyond the largest fitted run they include the calibrated extrapolation
error (:mod:`bayescale.extrapolation`) unless ``extrapolation="none"``, exactly as
:meth:`bayescale.ScalingFit.predict` does. Axes are logarithmic wherever the law works on
logs: every input but a law's linear ones, and the response of a likelihood on ``log y``.
"""

import arviz_plots as azp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from arviz_base import rc_context, rcParams
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from bayescale.arguments import check_count, check_probability, is_number
from bayescale.diagnostics import unconverged
from bayescale.errors import SpecError
from bayescale.evaluation import decisions
from bayescale.evaluation.backtesting import Backtest
from bayescale.extrapolation import resolve as resolve_extrapolation
from bayescale.pooling import HIERARCHICAL
from bayescale.predictive import quantiles
from bayescale.result import ScalingFit, check_fit

__all__ = [
    "backtest_plot",
    "comparison_plot",
    "extrapolation_plot",
    "fit_plot",
    "forest_plot",
    "frontier_plot",
    "isoflop_plot",
    "pair_plot",
    "posterior_plot",
    "ppc_plot",
    "prior_posterior_plot",
    "rank_plot",
    "residual_plot",
    "trace_plot",
]

BANDS = (0.5, 0.9)
"""Default interval probabilities of the bands: the half the runs should fall in, and the 90%
that bayescale quotes everywhere."""

GRID_POINTS = 120
"""Points of every dense curve: smooth on a log axis spanning several decades."""

PATH_POINTS = 32
"""Budgets along a compute-optimal path: each is an optimisation per draw, numeric for laws
without a closed form (``kaplan``, ``data_constrained``: about a second per budget for 4,000
draws, measured on a loaded 2-core machine); the path is smooth in ``log C``, so 32 draw it
well."""

MAX_CURVES = 6
"""Most curves per group in :func:`fit_plot`; more model sizes are binned (a dozen
overlapping bands cannot be read)."""

ISOFLOP_TOLERANCE = 0.05
"""Runs within this many decades of a budget are drawn on its isoFLOP curve (12%: the
spread of the ``6 N D`` rule around a sweep's nominal budgets)."""

PRIOR_DRAWS = 2000
"""Prior draws of :func:`prior_posterior_plot`: smooth densities in well under a second."""

PANEL_SIZE = (5.5, 4.0)
"""Width and height in inches of one panel."""

PAIR_PANEL = 1.8
"""Side in inches of one panel of :func:`pair_plot`: square panels (arviz-plots' default
squeezes the matrix into a wide, flat figure)."""


def fit_plot(
    fit, against=None, ci=BANDS, ax=None, max_curves=MAX_CURVES, extrapolation="calibrated"
):
    """The fitted runs with the law's posterior median and bands through them.

    The picture a scaling law is first judged by: does the curve go through the runs, and
    how tightly is it pinned down there? A law of several inputs is a surface, so it is
    drawn along the runs' own slices: against ``C`` (or ``D``) one curve per model size
    ``N`` (the common "loss against compute, coloured by model size" figure), against
    ``N`` one curve per token count, each over the range its runs span. More distinct
    values than ``max_curves`` are binned (the curve at each bin's geometric mean). A
    grouped fit gets one colour per group.

    Parameters
    ----------
    fit : ScalingFit
    against : str, optional
        ``"C"`` (compute ``k N D``, the default for laws in ``N`` and ``D``) or one of the
        law's inputs (``"N"``, ``"D"``, ``"x"``...; the fit's own column names work too).
        Default for other laws: their first input.
    ci : float or sequence of float
        Probabilities of the bands.
    ax : matplotlib.axes.Axes, optional
        Draw into this axes instead of a new figure.
    max_curves : int
        Most curves per group.
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        As in :meth:`bayescale.ScalingFit.predict`; matters only where a curve reaches
        beyond the largest fitted run.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecError
        For ``against`` that is not ``"C"`` of a law in ``N`` and ``D`` or an input of the
        law, a bad ``ci`` or ``max_curves``.
    """
    _checked(fit)
    levels = _levels(ci)
    check_count(max_curves, "max_curves")
    key = _resolve_key(fit, against, _axis_keys(fit), "against")
    varied = "D" if key == "C" else key  # along C, each model size gets more tokens
    held = [k for k in fit.law.inputs if k != varied]
    data = fit.data.frame
    curves = list(_curves(fit, held, max_curves))
    tables = []
    for group, rows, values in curves:
        span = data.loc[rows, varied]
        if span.min() == span.max():  # a single run: draw over the group's range
            span = data.loc[_group_rows(fit, group), varied]
        grid = _grid(span.min(), span.max(), varied in fit.law.linear_inputs)
        tables.append(_table(fit, {**values, varied: grid}, group))
    frame, draws = fit.predictive_draws(
        pd.concat(tables, ignore_index=True), kind="mean", extrapolation=extrapolation
    )
    own = ax is None
    fig, ax = _axes(ax)
    x_data, y_data = _values(fit, data, key), fit.data.y_values()
    starts = np.cumsum([0, *(len(t) for t in tables)])
    for (_, rows, _), colour, label, start, stop in zip(
        curves,
        _curve_colours(fit, curves),
        _curve_labels(fit, curves),
        starts[:-1],
        starts[1:],
        strict=True,
    ):
        x = _values(fit, frame.iloc[start:stop], key)
        _bands(ax, x, draws[:, start:stop], levels, colour, label)
        ax.scatter(x_data[rows], y_data[rows], s=16, color=colour, edgecolor="white", zorder=3)
    _decorate(ax, fit, key, levels)
    if fit.spec.group:  # group labels are long and the groups' runs fill the axes
        legend = ax.get_legend()
        legend.set(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if own:  # widen the new figure by the legend, so the axes keep their width
            fig.set_figwidth(PANEL_SIZE[0] + legend.get_window_extent().width / fig.dpi)
    ax.set_title(f"{fit.law.name} fit: runs and posterior median", wrap=True)
    return fig


def extrapolation_plot(
    fit, to, ci=BANDS, group=None, extrapolation="calibrated", unique_tokens=None, ax=None
):
    """The fan of predictions from the fitted runs out to a target, and its sources.

    An extrapolation is only as good as its spread, and the spread has two sources: the
    law's parameters (what the posterior knows) and the drift of the law's shape beyond
    the data (what the field's backtests say it does). The bands of the law alone are
    drawn in blue; what the extrapolation error adds to the widest band, in orange.
    A vertical line marks where the data end; the target's median and widest interval are
    written beside it.

    For laws in ``N`` and ``D`` the path is the compute-optimal one: at each budget ``C``
    the loss at each draw's own optimal allocation
    (:func:`bayescale.compute_optimal`'s ``loss_opt``), the lowest loss that budget buys.
    For a law of one scale input it is the input itself.

    Parameters
    ----------
    fit : ScalingFit
    to : dict
        ``{"C": budget}`` for laws in ``N`` and ``D``; ``{"x": value}`` (or the fit's
        column name for it) for a law of one scale input.
    ci : float or sequence of float
        Probabilities of the bands.
    group : str, optional
        Required for a grouped fit: a fitted group, or a new label for a new group.
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        The error beyond the data, as in :meth:`bayescale.ScalingFit.predict`.
    unique_tokens : float, optional
        ``U`` for laws with a unique-token input (``data_constrained``).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecError
        For a law with neither ``N`` and ``D`` nor a single scale input, a ``to`` that is
        not one positive number beyond the smallest fitted run, a missing or unexpected
        ``group``.
    """
    _checked(fit)
    levels = _levels(ci)
    key, target = _target(fit, to)
    group = decisions.group_label(fit, group)
    fitted = _values(fit, fit.data.frame, key)
    if not target > fitted.min():
        raise SpecError(f"to={to!r} must lie beyond the smallest fitted run ({fitted.min():.3g})")
    grid = _path_grid(key, fitted.min(), target)
    fig, ax = _axes(ax)
    alone = _path_draws(fit, key, grid, group, "none", unique_tokens)
    _bands(ax, grid, alone, levels, "C0", "posterior median; bands: the law alone")
    full = alone
    if resolve_extrapolation(extrapolation) is not None:
        full = _path_draws(fit, key, grid, group, extrapolation, unique_tokens)
        _, lower, upper = quantiles(full, levels[0], axis=0)
        _, lower_alone, upper_alone = quantiles(alone, levels[0], axis=0)
        for edge, inner in ((lower, lower_alone), (upper, upper_alone)):
            ax.fill_between(
                grid, edge, inner, where=edge != inner, color="C1", alpha=0.35, linewidth=0
            )
        ax.collections[-1].set_label(f"extrapolation error ({levels[0]:.0%} band)")
    rows = _group_rows(fit, group)
    ax.scatter(fitted[rows], fit.data.y_values()[rows], s=14, color="0.3", label="fitted runs")
    ax.axvline(fitted.max(), color="0.4", linestyle=":", label="largest fitted run")
    median, lower, upper = quantiles(full[:, -1], levels[0])
    ax.errorbar(grid[-1], median, yerr=[[median - lower], [upper - median]], fmt="o", color="black")
    ax.annotate(
        f"{median:#.3g} [{lower:#.3g}, {upper:#.3g}]",
        (grid[-1], upper),
        xytext=(-4, 4),
        textcoords="offset points",
        ha="right",
        va="bottom",
    )
    _decorate(ax, fit, key, levels)
    where = f" ({fit.spec.group} = {group})" if group is not None else ""
    ax.set_title(
        f"{fit.law.name}{where}: extrapolation to {fit.spec.column(key)} = {target:.3g}", wrap=True
    )
    return fig


def isoflop_plot(
    fit,
    budgets,
    ci=BANDS,
    group=None,
    span=30.0,
    unique_tokens=None,
    ax=None,
    extrapolation="calibrated",
):
    """Loss against model size at fixed FLOP budgets, with the posterior's minima.

    The isoFLOP view of Hoffmann et al. (2022): along ``C = k N D`` (``k`` the fit's FLOPs
    per parameter per token) a small model sees too many tokens and a large one too few,
    so each budget's curve has a minimum; where it lies is the compute-optimal model
    size. Each curve is drawn with its bands over ``N*/span`` to ``N* span`` around its
    median optimum; the minima are marked with the widest interval of ``N*`` and of the
    loss there (:func:`bayescale.compute_optimal`). Fitted runs within
    :data:`ISOFLOP_TOLERANCE` decades of a budget are drawn on its curve.

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law in ``N`` and ``D``.
    budgets : float or array_like
        FLOP budgets, one curve each.
    ci : float or sequence of float
        Probabilities of the bands and (the widest) of the minima's intervals.
    group : str, optional
        Required for a grouped fit: a fitted group, or a new label for a new group.
    span : float
        Factor above 1 each side of the median optimum that the curves span.
    unique_tokens : float, optional
        ``U`` for laws with a unique-token input (``data_constrained``).
    ax : matplotlib.axes.Axes, optional
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        As in :meth:`bayescale.ScalingFit.predict`; matters only where a curve reaches
        beyond the largest fitted run.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecError
        For a law without inputs ``N`` and ``D``, budgets that are not positive and finite,
        ``span`` not above 1, a missing or unexpected ``group``.
    """
    _checked(fit)
    levels = _levels(ci)
    if not is_number(span) or not 1 < span < np.inf:
        raise SpecError(f"span must be a factor above 1, got {span!r}")
    opt = decisions.optimal_draws(
        fit, budgets, group, unique_tokens=unique_tokens, extrapolation=extrapolation
    )
    budgets = np.atleast_1d(np.asarray(budgets, float))
    k = fit.spec.flops_per_token
    extra = {"U": unique_tokens} if "U" in fit.law.inputs else {}
    n_opt = np.array(quantiles(opt["N_opt"], levels[0], axis=0))  # median, lower, upper
    loss_opt = np.array(quantiles(opt["loss_opt"], levels[0], axis=0))
    grids = [_grid(n / span, n * span) for n in n_opt[0]]
    tables = [
        _table(fit, {"N": n, "D": c / (k * n), **extra}, group)
        for c, n in zip(budgets, grids, strict=True)
    ]
    _, draws = fit.predictive_draws(
        pd.concat(tables, ignore_index=True), kind="mean", extrapolation=extrapolation
    )
    fig, ax = _axes(ax)
    log_c = np.log10(_values(fit, fit.data.frame, "C"))
    colours = colormaps["viridis"](np.linspace(0.0, 0.85, len(budgets)))
    for i, (c, grid, colour) in enumerate(zip(budgets, grids, colours, strict=True)):
        _bands(ax, grid, draws[:, i * GRID_POINTS : (i + 1) * GRID_POINTS], levels, colour)
        (med_n, lo_n, hi_n), (med_l, lo_l, hi_l) = n_opt[:, i], loss_opt[:, i]
        ax.errorbar(
            med_n,
            med_l,
            xerr=[[med_n - lo_n], [hi_n - med_n]],
            yerr=[[med_l - lo_l], [hi_l - med_l]],
            fmt="o",
            color=colour,
            markeredgecolor="black",
            label=f"C = {c:.2g}: N* = {med_n:.3g}",
            zorder=4,
        )
        near = (np.abs(log_c - np.log10(c)) < ISOFLOP_TOLERANCE) & _group_rows(fit, group)
        ax.scatter(
            fit.data.frame["N"].to_numpy()[near],
            fit.data.y_values()[near],
            s=16,
            color=colour,
            edgecolor="white",
            zorder=3,
        )
    _decorate(ax, fit, "N", levels)
    ax.set_title(f"{fit.law.name}: isoFLOP curves and minima", wrap=True)
    return fig


def frontier_plot(fit, budgets, ci=BANDS, group=None, unique_tokens=None):
    """The compute-optimal model size ``N*(C)`` and tokens ``D*(C)``, with bands.

    Two panels, from the smallest fitted budget to the largest of ``budgets``: each
    draw's optimal allocation (:func:`bayescale.compute_optimal`), its median and bands,
    with the given budgets marked by their medians and widest intervals, and the fitted
    runs' own ``N`` and ``D`` for reference. How fast the bands open beyond the largest
    fitted run (the dotted line) is how little the data say about the allocation there.

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law in ``N`` and ``D``.
    budgets : float or array_like
        FLOP budgets to mark.
    ci : float or sequence of float
        Probabilities of the bands and (the widest) of the marks' intervals.
    group : str, optional
        Required for a grouped fit: a fitted group, or a new label for a new group.
    unique_tokens : float, optional
        ``U`` for laws with a unique-token input (``data_constrained``).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecError
        As :func:`bayescale.compute_optimal`.
    """
    _checked(fit)
    levels = _levels(ci)
    # N* and D* only: the loss's extrapolation error (a refit, by default) is not needed
    options = {"unique_tokens": unique_tokens, "extrapolation": "none"}
    marked = decisions.optimal_draws(fit, budgets, group, **options)
    budgets = np.atleast_1d(np.asarray(budgets, float))
    fitted = _values(fit, fit.data.frame, "C")
    grid = _path_grid("C", min(fitted.min(), budgets.min()), max(fitted.max(), budgets.max()))
    opt = decisions.optimal_draws(fit, grid, group, **options)
    rows = _group_rows(fit, group)
    fig, axes = _panels(2)
    for ax, name in zip(axes, ("N", "D"), strict=True):
        _bands(ax, grid, opt[f"{name}_opt"], levels, "C0", f"{name}*(C), posterior median")
        median, lower, upper = quantiles(marked[f"{name}_opt"], levels[0], axis=0)
        ax.errorbar(
            budgets,
            median,
            yerr=[median - lower, upper - median],
            fmt="o",
            color="black",
            label="given budgets",
        )
        ax.scatter(fitted[rows], fit.data.frame[name].to_numpy()[rows], s=10, color="0.6")
        ax.axvline(fitted.max(), color="0.4", linestyle=":", label="largest fitted run")
        _decorate(ax, fit, "C", levels, ylabel=f"compute-optimal {fit.spec.column(name)}")
        ax.set_yscale("log")
    fig.suptitle(f"{fit.law.name}: compute-optimal allocation (grey: fitted runs)", wrap=True)
    return fig


def residual_plot(fit):
    """Residuals of the fitted runs against the quantities a law's misfit shows along.

    A law that is the wrong shape leaves residuals that trend: on the Chinchilla sweep
    the backtest found a tilt in compute and in tokens per parameter, invisible in a
    loss-against-compute plot where curves cover the runs. Residuals are ``log y`` minus
    the log of the posterior median mean (``y`` minus it, for a likelihood not on
    ``log y``), against ``C`` and ``D/N`` for laws in ``N`` and ``D`` and against each
    input otherwise, with a least-squares trend line per panel whose slope is in the
    legend.

    Parameters
    ----------
    fit : ScalingFit

    Returns
    -------
    matplotlib.figure.Figure
    """
    _checked(fit)
    data = fit.data.frame
    log_mean = quantiles(fit.log_mean_draws(data), 0.5, axis=0)[0]
    y = fit.data.y_values()
    on_log = fit.likelihood.scale == "log y"
    residual = np.log(y) - log_mean if on_log else y - np.exp(log_mean)
    keys = ["C", "D/N"] if {"N", "D"} <= set(fit.law.inputs) else list(fit.law.inputs)
    fig, axes = _panels(len(keys))
    groups = _groups(fit)
    for ax, key in zip(axes, keys, strict=True):
        x = _values(fit, data, key)
        for (label, rows), colour in zip(groups, _palette(len(groups)), strict=True):
            ax.scatter(x[rows], residual[rows], s=16, color=colour, label=label)
        linear = key in fit.law.linear_inputs
        u = x if linear else np.log10(x)
        slope, intercept = np.polyfit(u, residual, 1)
        ends = np.array([u.min(), u.max()])
        per = "unit" if linear else "decade"
        ax.plot(
            ends if linear else 10.0**ends,
            intercept + slope * ends,
            color="black",
            linestyle="--",
            label=f"trend: {slope:+.3g} per {per}",
        )
        ax.axhline(0.0, color="0.5", linewidth=0.8)
        ax.set_xscale("linear" if linear else "log")
        ax.set_xlabel(_axis_label(fit, key))
        ax.set_ylabel(f"log {fit.data.y} residual" if on_log else f"{fit.data.y} residual")
        ax.legend(fontsize="small")
    fig.suptitle(
        f"{fit.law.name}: residuals of the fitted runs (observed - posterior median)", wrap=True
    )
    return fig


def comparison_plot(fits, to=None, ci=0.9, group=None, ax=None, extrapolation="calibrated"):
    """Several fits' predictions overlaid along one axis, each with its bands.

    Two laws can fit the same runs equally well and part ways beyond them; this shows
    where. Each fit is drawn as in :func:`extrapolation_plot` (the compute-optimal path
    for laws in ``N`` and ``D``, the input itself for a law of one scale input), with
    the extrapolation error beyond the data, so the fits must share the
    quantity along which they are drawn: compute ``C`` for laws in ``N`` and ``D`` and,
    for a law of one input, the column it was fitted on (a power law fitted with
    ``inputs={"x": "C"}`` compares with Chinchilla's frontier). Pair it with
    :func:`bayescale.compare` for which fit the data prefer.

    Parameters
    ----------
    fits : dict of str to ScalingFit
        At least one fit, by label.
    to : dict, optional
        ``{column: value}`` to extend every curve to (default: the largest fitted run).
    ci : float or sequence of float
        Probabilities of the bands (one by default: overlaid pairs of bands blur).
    group : str, optional
        For grouped fits: a group label, used for every fit.
    ax : matplotlib.axes.Axes, optional
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        As in :meth:`bayescale.ScalingFit.predict`; matters only where a curve reaches
        beyond the largest fitted run.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecError
        For fits that are not a non-empty dict of ScalingFit, or that are drawn along
        different quantities.
    """
    levels = _levels(ci)
    if not isinstance(fits, dict) or not fits:
        raise SpecError("comparison_plot needs a dict of label -> ScalingFit")
    if wrong := [k for k, f in fits.items() if not isinstance(f, ScalingFit)]:
        raise SpecError(f"comparison_plot takes bayescale fits; {wrong} are not")
    unconverged(fits, "figure", stacklevel=2)
    keys = {name: _path_key(fit) for name, fit in fits.items()}
    columns = {name: fit.spec.column(keys[name]) for name, fit in fits.items()}
    if len(set(columns.values())) > 1:
        raise SpecError(
            f"the fits are drawn along different quantities {columns}: compare fits of one "
            "column (map a one-input law's x to it with inputs={'x': column})"
        )
    for fit in fits.values():  # each refuses a label it cannot take; all read it alike
        label = decisions.group_label(fit, group)
    group = label
    fitted = {name: _values(fit, fit.data.frame, keys[name]) for name, fit in fits.items()}
    first = next(iter(fits))
    start = min(v.min() for v in fitted.values())
    end = max(v.max() for v in fitted.values())
    if to is not None:
        end = max(end, max(_target(fit, to)[1] for fit in fits.values()))
    grid = _path_grid(keys[first], start, end)
    fig, ax = _axes(ax)
    for (name, fit), colour in zip(fits.items(), _palette(len(fits)), strict=True):
        draws = _path_draws(fit, keys[name], grid, group, extrapolation, None)
        _bands(ax, grid, draws, levels, colour, name)
    reference = fits[first]
    rows = _group_rows(reference, group)
    ax.scatter(
        fitted[first][rows], reference.data.y_values()[rows], s=14, color="0.3", label="runs"
    )
    ax.axvline(max(v.max() for v in fitted.values()), color="0.4", linestyle=":")
    _decorate(ax, reference, keys[first], levels)
    ax.set_title(
        "laws compared" + (" (compute-optimal path)" if keys[first] == "C" else ""), wrap=True
    )
    return fig


def backtest_plot(bt, prob=0.9):
    """A backtest's held-out predictions against the truth, and their coverage.

    Left: each method's median and 90% predictive interval (the intervals the backtest
    stored) against the held-out value; points on the dashed line are perfect, intervals
    that miss it are misses. Right: the share of held-out runs inside each method's
    central interval against the interval's nominal probability, with bootstrap intervals
    (:meth:`bayescale.Backtest.uncertainty`, rows resampled independently): a calibrated
    method sits on the diagonal, an over-confident one below it.

    Parameters
    ----------
    bt : Backtest
        From :func:`bayescale.backtest`.
    prob : float
        Probability of the bootstrap intervals of the coverages.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(bt, Backtest):
        raise SpecError(f"backtest_plot takes a bayescale.Backtest, not {type(bt).__name__}")
    check_probability(prob, "prob")
    y = next(f for f in bt.fits.values() if isinstance(f, ScalingFit)).data.y
    observed = bt.predictions[y].to_numpy(float)
    coverage = [c for c in bt.table.columns if c.startswith("coverage_")]
    nominal = np.array([int(c.removeprefix("coverage_")) / 100 for c in coverage])
    bounds = bt.uncertainty(scores=coverage, prob=prob)
    fig, (left, right) = _panels(2)
    methods = list(bt.table.index)
    for method, colour in zip(methods, _palette(len(methods)), strict=True):
        median, lower, upper = (
            bt.predictions[f"{method}: {part}"].to_numpy(float)
            for part in ("median", "lower", "upper")
        )
        left.errorbar(
            observed,
            median,
            yerr=[median - lower, upper - median],
            fmt="o",
            markersize=4,
            color=colour,
            alpha=0.8,
            label=method,
        )
        empirical = bt.table.loc[method, coverage].to_numpy(float)
        low = bounds.loc[method, [f"{c} lower" for c in coverage]].to_numpy(float)
        high = bounds.loc[method, [f"{c} upper" for c in coverage]].to_numpy(float)
        right.errorbar(
            nominal,
            empirical,
            yerr=[empirical - low, high - empirical],
            fmt="o-",
            color=colour,
            capsize=3,
            label=method,
        )
    ends = [np.nanmin(observed), np.nanmax(observed)]
    left.plot(ends, ends, color="black", linestyle="--", label="prediction = held-out")
    _log_response(left, "x")
    _log_response(left)
    left.set_xlabel(f"held-out {y}")
    left.set_ylabel(f"predicted {y} (median, 90% interval)")
    left.legend(fontsize="small")
    right.plot([0, 1], [0, 1], color="black", linestyle="--", label="calibrated")
    right.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="nominal probability of the interval")
    right.set_ylabel("share of held-out runs inside")
    right.legend(fontsize="small")
    fig.suptitle(
        f"backtest on {len(observed)} held-out runs (right: {prob:.0%} bootstrap intervals)",
        wrap=True,
    )
    return fig


def _n_panels(fit, names):
    """Panels of one per value of each variable: a grouped parameter has one per group."""
    post = fit.posterior["posterior"]
    return sum(int(np.prod(post[k].shape[2:], dtype=int)) for k in names)


def _arviz_panels(n):
    """Let ArviZ draw ``n`` panels: it refuses more than 40 by default (8 groups ask 45)."""
    return rc_context(rc={"plot.max_subplots": max(rcParams["plot.max_subplots"], n)})


def posterior_plot(fit, var_names=None, ci=0.9):
    """Marginal posterior of each parameter, with its median and central interval.

    ArviZ's ``plot_dist`` with the interval pinned to bayescale's (equal-tailed, ``ci``)
    rather than ArviZ's changing defaults.

    Parameters
    ----------
    fit : ScalingFit
    var_names : str or list of str, optional
        Posterior variables; default what NUTS sampled (:attr:`ScalingFit.sampled_names`).
    ci : float
        Probability of the interval.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _checked(fit)
    names = _var_names(fit, var_names, fit.sampled_names)
    with _arviz_panels(_n_panels(fit, names)):
        pc = azp.plot_dist(
            fit.posterior,
            var_names=names,
            ci_kind="eti",
            ci_prob=check_probability(ci, "ci"),
            point_estimate="median",
        )
    return _figure_of(pc)


def forest_plot(fit, var_names=None, ci=BANDS):
    """Medians and intervals of the parameters, one row each (each group's, for groups).

    The compact view of a grouped fit: how far the groups' exponents or floors differ,
    against how well each is known. ArviZ's ``plot_forest``, chains combined.

    Parameters
    ----------
    fit : ScalingFit
    var_names : str or list of str, optional
        Default: the law's parameters.
    ci : float or sequence of float
        Probabilities of the intervals (equal-tailed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _checked(fit)
    names = _var_names(fit, var_names, fit.law.parameters)
    pc = azp.plot_forest(
        fit.posterior,
        var_names=names,
        combined=True,
        ci_kind="eti",
        ci_probs=sorted(_levels(ci)),
        point_estimate="median",
    )
    return _figure_of(pc)


def rank_plot(fit, var_names=None):
    """Rank ECDFs of each chain: a chain that explored elsewhere leaves the envelope.

    The convergence check behind r-hat, drawn (Vehtari et al. 2021); ArviZ's
    ``plot_rank``. It needs two or more chains to say anything.

    Parameters
    ----------
    fit : ScalingFit
    var_names : str or list of str, optional
        Default: :attr:`ScalingFit.sampled_names`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_fit(fit)
    names = _var_names(fit, var_names, fit.sampled_names)
    with _arviz_panels(_n_panels(fit, names)):
        return _figure_of(azp.plot_rank(fit.posterior, var_names=names))


def trace_plot(fit, var_names=None):
    """Each chain's draws in order and their densities (ArviZ's ``plot_trace_dist``).

    Divergent transitions, when the sampler reported any, are marked on the traces.

    Parameters
    ----------
    fit : ScalingFit
    var_names : str or list of str, optional
        Default: :attr:`ScalingFit.sampled_names`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_fit(fit)
    names = _var_names(fit, var_names, fit.sampled_names)
    return _figure_of(azp.plot_trace_dist(fit.posterior, var_names=names))


def pair_plot(fit, var_names=None):
    """Pairwise scatter of the parameters' draws, with marginals on the diagonal.

    Scaling-law parameters trade off (the floor against both reducible terms, each
    coefficient against its exponent): the ridges here are why a parameter's marginal
    is wide while predictions inside the data are tight, and where divergences sit.

    Parameters
    ----------
    fit : ScalingFit
    var_names : str or list of str, optional
        Default: the sampled parameters that do not vary by group.

    Returns
    -------
    matplotlib.figure.Figure
    """
    check_fit(fit)
    post = fit.posterior["posterior"]
    default = [k for k in fit.sampled_names if post[k].ndim == 2]  # (chain, draw) only
    names = _var_names(fit, var_names, default)
    side = PAIR_PANEL * len(names)
    with _arviz_panels(len(names) ** 2):  # 7 parameters (data_constrained) ask 49
        pc = azp.plot_pair(
            fit.posterior, var_names=names, marginal=True, figure_kwargs={"figsize": (side, side)}
        )
    return _figure_of(pc)


def prior_posterior_plot(fit, var_names=None):
    """Each parameter's prior density under its posterior: what the data taught.

    A posterior that sits on its prior was learnt from the prior, not the runs (the
    floor ``E`` of a sweep that never bends, say). Prior draws come from the fit's own
    priors (:attr:`ScalingFit.priors`, seeded by the fit's ``random_seed``); a pooled
    parameter is shown through its population mean ``{name}_mu``, whose prior is the
    parameter's (its group values have the hierarchical prior instead).

    Parameters
    ----------
    fit : ScalingFit
    var_names : str or list of str, optional
        Default: every sampled variable with a prior of its own.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    SpecError
        For a variable without a prior of its own (derived, or a pooled parameter's group
        values).
    """
    _checked(fit)
    post = fit.posterior["posterior"]
    default = [k for k in fit.sampled_names if _prior_of(fit, k) is not None]
    names = _var_names(fit, var_names, default)
    rng = np.random.default_rng(fit.spec.random_seed)
    prior = {}
    for name in names:
        if (dist := _prior_of(fit, name)) is None:
            raise SpecError(
                f"{name!r} has no prior of its own (derived, or a pooled parameter's group "
                f"values); variables with one: {default}"
            )
        var = post[name]
        prior[name] = xr.DataArray(
            dist.scipy().rvs(size=(1, PRIOR_DRAWS, *var.shape[2:]), random_state=rng),
            dims=var.dims,
            coords={d: var[d] for d in var.dims[2:] if d in var.coords},
        )
    parts = {"posterior": post.to_dataset()[names], "prior": xr.Dataset(prior)}
    if "group" in post.dims:  # arviz-plots stacks prior and posterior along a "group" dim
        parts = {k: v.rename({"group": "group label"}) for k, v in parts.items()}
    pc = azp.plot_prior_posterior(xr.DataTree.from_dict(parts), var_names=names)
    return _figure_of(pc)


def ppc_plot(fit, num_samples=50):
    """Densities of replicated data sets against the observed responses.

    A posterior predictive check: draws of new runs at the fitted inputs
    (:meth:`ScalingFit.predictive_draws` with ``kind="observed"``), ``num_samples`` of
    them drawn as densities over the observed one, on ``log y`` for a likelihood on that
    scale. A mismatch in shape or spread says the likelihood misses how runs scatter.

    Parameters
    ----------
    fit : ScalingFit
    num_samples : int
        Replicated data sets drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _checked(fit)
    check_count(num_samples, "num_samples")
    data = fit.data.frame
    columns = {k: data[k].to_numpy() for k in fit.law.inputs}
    group = data[fit.spec.group].to_numpy() if fit.spec.group else None
    _, draws = fit.predictive_draws(_table(fit, columns, group), kind="observed")
    y, name = fit.data.y_values(), fit.data.y
    if fit.likelihood.scale == "log y":
        draws, y, name = np.log(draws), np.log(y), f"log {name}"
    tree = xr.DataTree.from_dict(
        {
            "posterior_predictive": xr.Dataset({name: (("chain", "draw", "obs"), draws[None])}),
            "observed_data": xr.Dataset({name: ("obs", y)}),
        }
    )
    pc = azp.plot_ppc_dist(tree, num_samples=min(num_samples, len(draws)))
    return _figure_of(pc)


def _checked(fit):
    """Check ``fit``; warn, as every answer does, if it failed its convergence checks.

    Not for the figures that show convergence itself (rank, trace, pair).
    """
    check_fit(fit)
    unconverged({fit.label: fit}, "figure", stacklevel=3)


def _figure_of(plot):
    """The figure of an arviz-plots ``PlotCollection`` or ``PlotMatrix``, released by pyplot.

    arviz-plots creates its figures through pyplot, which would keep every one alive (and
    show it a second time in a notebook); released, it is a plain figure like the others
    here, drawn and saved as usual. Its layout is made constrained: arviz-plots' fixed
    spacing lets a panel's title run into the tick labels of the panel above.
    """
    fig = plot.get_viz("figure")
    plt.close(fig)
    fig.set_layout_engine("constrained")
    return fig


def _levels(ci):
    """Interval probabilities, widest first, from one probability or a sequence of them."""
    levels = [ci] if np.ndim(ci) == 0 else list(ci)
    if not levels:
        raise SpecError("ci must be a probability or a sequence of probabilities, got none")
    return sorted((check_probability(p, "ci") for p in levels), reverse=True)


def _axes(ax):
    """``(figure, ax)``: the given axes and its figure, or a new one-panel figure."""
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = Figure(figsize=PANEL_SIZE, layout="constrained")
    return fig, fig.subplots()


def _panels(n):
    """A new figure of ``n`` panels side by side, and its axes as a list."""
    fig = Figure(figsize=(PANEL_SIZE[0] * n, PANEL_SIZE[1]), layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, n)))


def _palette(n):
    """``n`` distinct categorical colours.

    Matplotlib's cycle up to ten, then tab20, then evenly spaced along a continuous map
    (more groups than 20 cannot all look apart).
    """
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    return list(colormaps["turbo"](np.linspace(0.05, 0.95, n)))


def _bands(ax, x, draws, levels, colour, label=None):
    """Draw bands of ``draws`` (draws, points) along ``x`` and the median, named ``label``.

    Bands are translucent, so the narrower ones, drawn over the wider, come out darker.
    """
    for prob in levels:
        _, lower, upper = quantiles(draws, prob, axis=0)
        ax.fill_between(x, lower, upper, color=colour, alpha=0.2, linewidth=0)
    ax.plot(x, quantiles(draws, levels[0], axis=0)[0], color=colour, label=label)


def _decorate(ax, fit, key, levels, ylabel=None):
    """Log scales where the law works on logs, axis labels, and a legend naming the bands."""
    linear = key in fit.law.linear_inputs
    ax.set_xscale("linear" if linear else "log")
    if fit.likelihood.scale == "log y":
        _log_response(ax)
    ax.set_xlabel(_axis_label(fit, key))
    ax.set_ylabel(ylabel or fit.data.y)
    bands = ", ".join(f"{p:.0%}" for p in sorted(levels))
    ax.legend(title=f"bands: {bands} intervals", fontsize="small", title_fontsize="small")


def _log_response(ax, which="y"):
    """Log scale on ``ax``'s ``which`` axis, labelled with plain numbers.

    A loss axis rarely spans a decade, so matplotlib's default would label it with a
    single ``3x10^0``.
    """
    ax.set(**{f"{which}scale": "log"})
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(LogFormatter())
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))


def _axis_label(fit, key):
    """Axis label of ``key``: the fit's column name, with what compute and ratios mean."""
    if key == "C":
        return f"compute {fit.spec.column('C')} = {fit.spec.flops_per_token:g} N D (FLOPs)"
    if key == "D/N":
        return "tokens per parameter D/N"
    return fit.spec.column(key)


def _values(fit, frame, key):
    """Values of ``key`` (an input, ``"C"`` or ``"D/N"``) at the rows of a validated frame."""
    if key == "C":
        return decisions.row_compute(frame, fit.spec.flops_per_token)
    if key == "D/N":
        return frame["D"].to_numpy(float) / frame["N"].to_numpy(float)
    return frame[key].to_numpy(float)


def _axis_keys(fit):
    """What a fit can be drawn against: its inputs, and compute for laws in ``N`` and ``D``."""
    inputs = list(fit.law.inputs)
    return ["C", *inputs] if {"N", "D"} <= set(inputs) else inputs


def _resolve_key(fit, key, options, argument):
    """``key`` (a law input, ``"C"`` or the fit's column name for one) among ``options``.

    ``None`` gives the first option.
    """
    if key is None:
        return options[0]
    names = {fit.spec.column(k): k for k in options} | {k: k for k in options}
    if not isinstance(key, str) or key not in names:
        compute = " (C: compute k N D)" if "C" in options else ""
        raise SpecError(
            f"{argument}={key!r}: law {fit.law.name!r} with inputs {list(fit.law.inputs)} is "
            f"drawn against one of {sorted(names)}{compute}"
        )
    return names[key]


def _path_key(fit):
    """The quantity a fit's fan runs along: ``"C"``, or the law's one scale input."""
    law = fit.law
    if {"N", "D"} <= set(law.inputs):
        return "C"
    if len(law.inputs) == 1 and law.scale_inputs == law.inputs:
        return law.inputs[0]
    raise SpecError(
        f"law {law.name!r} has inputs {list(law.inputs)}: a fan needs a law in model size "
        "N and tokens D (drawn along the compute-optimal path in C) or in one scale input"
    )


def _target(fit, to):
    """``(key, value)`` of an extrapolation target ``{key: value}``."""
    key = _path_key(fit)
    if not isinstance(to, dict) or len(to) != 1:
        raise SpecError(f"to= must be one {{{fit.spec.column(key)!r}: value}}, got {to!r}")
    ((name, value),) = to.items()
    _resolve_key(fit, name, [key], "to")
    if not is_number(value) or not 0 < value < np.inf:
        raise SpecError(f"to={to!r}: the target must be a positive number")
    return key, float(value)


def _path_draws(fit, key, grid, group, extrapolation, unique_tokens):
    """Draws (draws, points) of the law's mean along a fan's path at ``grid``."""
    if key == "C":
        opt = decisions.optimal_draws(
            fit, grid, group, unique_tokens=unique_tokens, extrapolation=extrapolation
        )
        return opt["loss_opt"]
    table = _table(fit, {key: grid}, group)
    return fit.predictive_draws(table, kind="mean", extrapolation=extrapolation)[1]


def _grid(low, high, linear=False, points=GRID_POINTS):
    """``points`` values from ``low`` to ``high``, evenly spaced on the axis's scale."""
    return np.linspace(low, high, points) if linear else np.geomspace(low, high, points)


def _path_grid(key, low, high):
    """The grid of a fan's path: :data:`PATH_POINTS` budgets along ``C``, else a dense grid."""
    return _grid(low, high, points=PATH_POINTS if key == "C" else GRID_POINTS)


def _table(fit, values, group=None):
    """A prediction table of law inputs ``values``, under the fit's column names, and the group.

    Values are arrays or numbers, broadcast together.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, float) for v in values.values()))
    table = pd.DataFrame({fit.spec.column(k): v for k, v in zip(values, arrays, strict=True)})
    if group is not None:
        table[fit.spec.group] = group
    return table


def _group_rows(fit, group):
    """Mask of the fitted rows of ``group`` (all rows without groups or for a new group)."""
    data = fit.data.frame
    if group is None or group not in fit.group_labels:
        return np.ones(len(data), bool)
    return (data[fit.spec.group] == group).to_numpy()


def _groups(fit):
    """``(label, rows)`` per group of the fitted rows; one unlabelled entry without groups."""
    if not fit.spec.group:
        return [(None, np.ones(len(fit.data.frame), bool))]
    return [(label, _group_rows(fit, label)) for label in fit.group_labels]


def _curves(fit, held, max_curves):
    """``(group, rows, held values)`` of each curve of :func:`fit_plot`.

    Per group, the distinct values of the first held input, sorted and split into at most
    ``max_curves`` runs of neighbours; each curve holds every held input at the geometric
    (arithmetic, for a linear input) mean of its rows.
    """
    data = fit.data.frame
    for group, in_group in _groups(fit):
        if not held:
            yield group, in_group, {}
            continue
        first = data[held[0]].to_numpy()
        distinct = np.unique(first[in_group])
        for chunk in np.array_split(distinct, min(max_curves, len(distinct))):
            rows = in_group & np.isin(first, chunk)
            values = {}
            for k in held:
                v = data.loc[rows, k].to_numpy(float)
                values[k] = v.mean() if k in fit.law.linear_inputs else np.exp(np.log(v).mean())
            yield group, rows, values


def _curve_colours(fit, curves):
    """One colour per group; without groups, a sequential colour per curve (model size)."""
    if fit.spec.group:
        colour = dict(zip(fit.group_labels, _palette(len(fit.group_labels)), strict=True))
        return [colour[group] for group, _, _ in curves]
    return list(colormaps["viridis"](np.linspace(0.0, 0.85, len(curves))))


def _curve_labels(fit, curves):
    """Legend labels: each group's first curve, else each curve's held inputs' values."""
    if fit.spec.group:
        groups = [group for group, _, _ in curves]
        return [
            f"{fit.spec.group} = {g}" if g not in groups[:i] else None for i, g in enumerate(groups)
        ]
    if len(curves) == 1:
        return ["posterior median"]
    return [
        ", ".join(f"{fit.spec.column(k)} ≈ {v:.2g}" for k, v in values.items())
        for _, _, values in curves
    ]


def _var_names(fit, var_names, default):
    """Posterior variables to draw: ``default``, or those named, each checked to exist."""
    if var_names is None:
        names = list(default)
    else:
        names = [var_names] if isinstance(var_names, str) else list(var_names)
    post = fit.posterior["posterior"]
    if unknown := [k for k in names if k not in post]:
        raise SpecError(f"no posterior variable {unknown}; this fit has {list(post.data_vars)}")
    if not names:
        raise SpecError("no posterior variables to draw")
    return names


def _prior_of(fit, name):
    """The prior of posterior variable ``name``, or None where it has none of its own.

    A shared or separate parameter, a group scale and a noise parameter have their own
    prior; a pooled parameter's population mean ``{p}_mu`` has ``p``'s; a pooled
    parameter's group values have a hierarchical one.
    """
    hierarchical = {k for k, mode in fit.pooling.items() if mode in HIERARCHICAL}
    if name.endswith("_mu") and (base := name.removesuffix("_mu")) in hierarchical:
        return fit.priors[base]
    if name in hierarchical:
        return None
    return fit.priors.get(name)
