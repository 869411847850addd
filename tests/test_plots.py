"""Figures (issue 22, item 1): fast, on fits built from given draws, never on an empty axes.

Each test counts what was drawn (median lines, bands as PolyCollections, points), checks
that the data's range is on the axes, the scales, the labels, and where a figure shows a
number bayescale computes elsewhere (an optimum, a residual, a coverage), that the figure
holds that number.
"""

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

import bayescale
from bayescale import SpecError, plots
from bayescale.evaluation import scores
from bayescale.evaluation.backtesting import Backtest
from bayescale.predictive import quantiles
from bayescale.simulate import from_law
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

S = 200
TRUTH = {"E": 1.8, "a_ref": 0.3, "b_ref": 0.25, "alpha": 0.34, "beta": 0.37}
N_SIZES, D_SIZES = np.geomspace(7e7, 1.6e10, 5), np.geomspace(5e9, 5e11, 4)


def jittered(values, spread, seed):
    rng = np.random.default_rng(seed)
    out = {k: v * np.exp(spread * rng.standard_normal(S)) for k, v in values.items()}
    return out | {"sigma": 0.01 + 0.002 * rng.random(S)}


def nd_design(group=None):
    n, d = (a.ravel() for a in np.meshgrid(N_SIZES, D_SIZES))
    frame = from_law("chinchilla", TRUTH, {"N": n, "D": d}, random_seed=1)[["N", "D", "loss"]]
    return frame if group is None else frame.assign(g=group)


@pytest.fixture(scope="module")
def chinchilla():
    return fake_fit(nd_design(), "chinchilla", jittered(TRUTH, 0.03, 0), chains=2)


@pytest.fixture(scope="module")
def grouped():
    frame = pd.concat([nd_design("x"), nd_design("y")], ignore_index=True)
    draws = jittered(TRUTH, 0.03, 1)
    alpha = draws.pop("alpha")
    draws |= {
        "alpha": np.stack([alpha * 0.95, alpha * 1.05], axis=1),
        "alpha_mu": alpha,
        "alpha_tau": 0.05 + 0.01 * np.random.default_rng(2).random(S),
    }
    pooling = dict.fromkeys(TRUTH, "shared") | {"alpha": "pooled"}
    return fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling, chains=2)


POWER = {"E": 1.5, "a_ref": 0.8, "alpha": 0.3}
SWEEP = from_law("power_law", POWER, {"x": np.geomspace(1e6, 2e10, 18)}, random_seed=0)
CURVE = SWEEP.rename(columns={"x": "N"})[["N", "loss"]]
"""A power law in a column named N (mapped to the law's x): 12 runs fitted, 6 held out."""


def power_fit(params, seed, chains=1):
    draws = jittered(params, 0.02, seed)
    log_ref = bayescale.get_law("power_law").log_reference(SWEEP)  # the simulation's scales
    return fake_fit(
        CURVE[:12], "power_law", draws, inputs={"x": "N"}, log_ref=log_ref, chains=chains
    )


@pytest.fixture(scope="module")
def power():
    return power_fit(POWER, 3, chains=2)


def bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def points(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections if type(c) is PathCollection])


def spans(ax, values, axis="x"):
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    return low <= np.min(values) and np.max(values) <= high


def test_fit_plot_draws_one_curve_per_model_size_against_compute(chinchilla):
    fig = plots.fit_plot(chinchilla)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == len(N_SIZES)  # one median per model size
    assert len(bands(ax)) == 2 * len(N_SIZES)  # 50% and 90% each
    frame = chinchilla.data.frame
    compute = 6.0 * frame["N"] * frame["D"]
    assert len(points(ax)) == len(frame)
    assert spans(ax, compute) and spans(ax, frame["loss"], "y")
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "compute" in ax.get_xlabel() and ax.get_ylabel() == "loss"
    legend = ax.get_legend()
    assert "50%, 90%" in legend.get_title().get_text()
    assert legend.get_texts()[0].get_text() == "N ≈ 7e+07"
    # each median runs over its own runs' compute, and is the law's median there
    first = ax.lines[0]
    ends = frame[frame["N"] == N_SIZES[0]].sort_values("D").iloc[[0, -1]]
    np.testing.assert_allclose(first.get_xdata()[[0, -1]], 6.0 * ends["N"] * ends["D"])
    at_ends = chinchilla.predict(ends, kind="mean")["median"]
    np.testing.assert_allclose(first.get_ydata()[[0, -1]], at_ends, rtol=1e-10)


def test_fit_plot_bins_model_sizes_and_plots_against_an_input(chinchilla):
    ax = plots.fit_plot(chinchilla, max_curves=2, ci=0.9).axes[0]
    assert len(ax.lines) == 2 and len(bands(ax)) == 2
    ax = plots.fit_plot(chinchilla, against="N").axes[0]  # one curve per token count
    assert len(ax.lines) == len(D_SIZES) and ax.get_xlabel() == "N"
    assert spans(ax, N_SIZES)


def test_fit_plot_of_a_one_input_law_uses_the_fits_column_and_a_given_axes(power):
    fig = Figure()
    ax = fig.subplots()
    assert plots.fit_plot(power, ax=ax) is fig
    assert len(ax.lines) == 1 and len(bands(ax)) == 2 and len(points(ax)) == 12
    assert ax.get_xlabel() == "N" and spans(ax, power.data.frame["x"])
    assert len(plots.fit_plot(power, against="x").axes[0].lines) == 1  # the law's name works too


def test_fit_plot_colours_groups(grouped):
    ax = plots.fit_plot(grouped).axes[0]
    assert len(ax.lines) == 2 * len(N_SIZES)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["g = x", "g = y"]
    colours = {line.get_color() for line in ax.lines}
    assert colours == {"C0", "C1"}


def test_fit_plot_refuses_bad_arguments(chinchilla, power):
    with pytest.raises(SpecError, match="against='C'.*power_law"):
        plots.fit_plot(power, against="C")
    with pytest.raises(SpecError, match="against='steps'"):
        plots.fit_plot(chinchilla, against="steps")
    with pytest.raises(SpecError, match="ci must be a probability"):
        plots.fit_plot(chinchilla, ci=1.5)
    with pytest.raises(SpecError, match="got none"):
        plots.fit_plot(chinchilla, ci=[])
    with pytest.raises(SpecError, match="max_curves"):
        plots.fit_plot(chinchilla, max_curves=0)


def test_extrapolation_plot_shows_the_extrapolation_error_beyond_the_data(chinchilla):
    ax = plots.extrapolation_plot(chinchilla, {"C": 1e24}).axes[0]
    compute = 6.0 * chinchilla.data.frame["N"] * chinchilla.data.frame["D"]
    assert ax.get_xlim()[1] >= 1e24 and spans(ax, compute)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "extrapolation error (90% band)" in labels and "largest fitted run" in labels
    # two bands of the law alone, and the extra width below and above the widest
    assert len(bands(ax)) == 4
    extra = bands(ax)[2:]
    beyond = np.concatenate([p.vertices for c in extra for p in c.get_paths()])
    assert beyond[:, 0].max() == pytest.approx(1e24) and beyond[:, 0].min() >= compute.max() * 0.9
    (data_end,) = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert data_end.get_xdata()[0] == pytest.approx(compute.max())
    target = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert target[0].lines[0].get_xdata()[0] == pytest.approx(1e24)
    # without the error, the law alone: no extra band
    ax = plots.extrapolation_plot(chinchilla, {"C": 1e24}, extrapolation="none").axes[0]
    assert len(bands(ax)) == 2


def test_extrapolation_plot_of_a_one_input_law(power):
    ax = plots.extrapolation_plot(power, {"N": 1e11}, ci=0.9).axes[0]
    assert ax.get_xlim()[1] >= 1e11 and ax.get_xlabel() == "N"
    assert len(bands(ax)) == 3 and len(points(ax)) == 12


def test_extrapolation_plot_refuses_bad_targets(chinchilla, grouped):
    with pytest.raises(SpecError, match="to='N'"):
        plots.extrapolation_plot(chinchilla, {"N": 1e12})
    with pytest.raises(SpecError, match="positive number"):
        plots.extrapolation_plot(chinchilla, {"C": -1.0})
    with pytest.raises(SpecError, match="one"):
        plots.extrapolation_plot(chinchilla, 1e24)
    with pytest.raises(SpecError, match="beyond the smallest fitted run"):
        plots.extrapolation_plot(chinchilla, {"C": 1.0})
    with pytest.raises(SpecError, match="pass group="):
        plots.extrapolation_plot(grouped, {"C": 1e24})
    with pytest.raises(SpecError, match="no groups"):
        plots.extrapolation_plot(chinchilla, {"C": 1e24}, group="x")
    ax = plots.extrapolation_plot(grouped, {"C": 1e24}, group="x").axes[0]
    assert len(points(ax)) == len(N_SIZES) * len(D_SIZES)  # that group's runs


def test_group_labels_that_are_numbers(grouped):
    # a fit of a group column holding 0 and 1: group=0 is its label "0", as in predict
    frame = grouped.data.frame.assign(g=grouped.data.frame["g"].map({"x": 0, "y": 1}))
    draws = grouped.draws(grouped.sampled_names)
    fit = fake_fit(frame, "chinchilla", draws, group="g", pooling=dict(grouped.pooling), chains=2)
    ax = plots.extrapolation_plot(fit, {"C": 1e24}, group=0).axes[0]
    assert len(points(ax)) == len(N_SIZES) * len(D_SIZES)  # that group's runs
    fig = plots.comparison_plot({"a": fit, "b": fit}, to={"C": 1e24}, group=1)
    assert fig.axes
    with pytest.raises(SpecError, match="pass group="):
        plots.extrapolation_plot(fit, {"C": 1e24}, group=[0])


def test_isoflop_plot_marks_the_posterior_minima(chinchilla):
    budgets = [1e19, 1e20, 1e21]
    ax = plots.isoflop_plot(chinchilla, budgets).axes[0]
    assert len(bands(ax)) == 2 * len(budgets)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "N"
    optimum = bayescale.compute_optimal(chinchilla, budgets)
    marks = [c.lines[0] for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose([m.get_xdata()[0] for m in marks], optimum["N_opt_median"])
    np.testing.assert_allclose([m.get_ydata()[0] for m in marks], optimum["loss_opt_median"])
    assert len(ax.lines) == 2 * len(budgets)  # a median and a marked minimum per budget
    for mark, line in zip(marks, ax.lines[::2], strict=True):
        assert line.get_xdata().min() < mark.get_xdata()[0] < line.get_xdata().max()


def test_isoflop_and_comparison_plots_take_the_extrapolation_error_asked_for(chinchilla):
    """Both used the calibrated error whatever the report's extrapolation= said, so a
    report's table gave one interval and the figure under it another."""

    def heights(figure):  # each band's height at its right end
        ends = [band.get_paths()[0].vertices for band in bands(figure.axes[0])]
        return [np.ptp(v[np.isclose(v[:, 0], v[:, 0].max()), 1]) for v in ends]

    far = [1e25]  # 1000x beyond the fitted runs
    for plot in (
        lambda **e: plots.isoflop_plot(chinchilla, far, **e),
        lambda **e: plots.comparison_plot({"a": chinchilla}, to={"C": far[0]}, **e),
    ):
        none, calibrated = heights(plot(extrapolation="none")), heights(plot())
        assert all(n < 0.5 * c for n, c in zip(none, calibrated, strict=True))
        plt.close("all")


def test_isoflop_plot_refuses_a_law_without_model_size_and_tokens(power, chinchilla):
    with pytest.raises(SpecError, match="not model size N and tokens D"):
        plots.isoflop_plot(power, [1e20])
    with pytest.raises(SpecError, match="span"):
        plots.isoflop_plot(chinchilla, [1e20], span=1.0)
    with pytest.raises(SpecError, match="C must be positive"):
        plots.isoflop_plot(chinchilla, [0.0])


def test_frontier_plot_draws_n_and_d_with_the_given_budgets(chinchilla, power):
    fig = plots.frontier_plot(chinchilla, [1e22, 1e24])
    assert len(fig.axes) == 2
    optimum = bayescale.compute_optimal(chinchilla, [1e22, 1e24])
    compute = 6.0 * chinchilla.data.frame["N"] * chinchilla.data.frame["D"]
    for ax, name in zip(fig.axes, ("N", "D"), strict=True):
        assert len(bands(ax)) == 2 and ax.get_yscale() == "log" and ax.get_xscale() == "log"
        assert spans(ax, [compute.min(), 1e24])
        assert ax.get_ylabel() == f"compute-optimal {name}"
        (marks,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        np.testing.assert_allclose(marks.lines[0].get_ydata(), optimum[f"{name}_opt_median"])
    with pytest.raises(SpecError, match="not model size N and tokens D"):
        plots.frontier_plot(power, [1e22])


def test_residual_plot_shows_log_residuals_against_compute_and_ratio(chinchilla, power):
    fig = plots.residual_plot(chinchilla)
    assert [ax.get_xlabel() for ax in fig.axes] == [
        "compute C = 6 N D (FLOPs)",
        "tokens per parameter D/N",
    ]
    frame = chinchilla.data.frame
    log_mean = np.median(chinchilla.log_mean_draws(frame), axis=0)
    expected = np.log(frame["loss"].to_numpy()) - log_mean
    for ax in fig.axes:
        np.testing.assert_allclose(points(ax)[:, 1], expected)
        assert ax.get_xscale() == "log" and "trend" in ax.get_legend().get_texts()[-1].get_text()
    np.testing.assert_allclose(points(fig.axes[1])[:, 0], frame["D"] / frame["N"])
    (ax,) = plots.residual_plot(power).axes
    assert ax.get_xlabel() == "N" and len(points(ax)) == 12


def test_comparison_plot_overlays_fits_along_one_axis(power, chinchilla):
    other = power_fit(POWER | {"alpha": 0.25}, 4)
    ax = plots.comparison_plot({"a": power, "b": other}, to={"N": 1e10}).axes[0]
    assert len(ax.lines) == 3  # two medians and where the data end
    assert len(bands(ax)) == 2 and ax.get_xlim()[1] >= 1e10
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["a", "b"]
    assert not np.allclose(ax.lines[0].get_ydata(), ax.lines[1].get_ydata())
    with pytest.raises(SpecError, match="different quantities"):
        plots.comparison_plot({"a": power, "c": chinchilla})
    with pytest.raises(SpecError, match="dict"):
        plots.comparison_plot([power])
    with pytest.raises(SpecError, match="not"):
        plots.comparison_plot({"a": power, "b": "fit"})


def make_backtest(power):
    """A backtest of two methods on the runs beyond the fitted ones, built as backtest does."""
    held = CURVE[12:]
    fits = {"power_law": power, "steeper": power_fit(POWER | {"alpha": 0.4}, 5)}
    rows, points_, predictions = {}, {}, held.copy()
    for name, fit in fits.items():
        _, draws = fit.predictive_draws(held, kind="observed")
        points_[name] = scores.pointwise(np.log(draws), np.log(held["loss"].to_numpy()))
        rows[name] = scores.summarise(points_[name])
        median, lower, upper = quantiles(draws, 0.9)
        predictions[f"{name}: median"] = median
        predictions[f"{name}: lower"] = lower
        predictions[f"{name}: upper"] = upper
    pointwise = pd.concat(points_, names=["method", "row"])
    return Backtest(pd.DataFrame(rows).T, predictions, fits, pointwise)


def test_backtest_plot_shows_predictions_and_coverage(power):
    bt = make_backtest(power)
    fig = plots.backtest_plot(bt)
    left, right = fig.axes
    bars = [c for c in left.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    np.testing.assert_allclose(bars[0].lines[0].get_xdata(), bt.predictions["loss"])
    np.testing.assert_allclose(bars[0].lines[0].get_ydata(), bt.predictions["power_law: median"])
    assert left.get_xscale() == "log" and left.get_xlabel() == "held-out loss"
    coverage = [c for c in right.containers if isinstance(c, ErrorbarContainer)]
    levels = ["coverage_50", "coverage_80", "coverage_90", "coverage_95"]
    for container, method in zip(coverage, bt.table.index, strict=True):
        np.testing.assert_allclose(container.lines[0].get_xdata(), [0.5, 0.8, 0.9, 0.95])
        np.testing.assert_allclose(
            container.lines[0].get_ydata(), bt.table.loc[method, levels].astype(float)
        )
    assert right.get_ylim()[0] == 0 and "nominal" in right.get_xlabel()
    with pytest.raises(SpecError, match="Backtest"):
        plots.backtest_plot(bt.table)


def test_posterior_views_come_from_arviz_plots(chinchilla):
    fig = plots.posterior_plot(chinchilla, var_names=["alpha", "beta"])
    assert len([ax for ax in fig.axes if ax.lines]) == 2
    fig = plots.forest_plot(chinchilla, var_names=["alpha", "beta"])
    assert sum(len(ax.lines) for ax in fig.axes) >= 4  # two intervals per parameter
    fig = plots.rank_plot(chinchilla, var_names="alpha")
    assert sum(len(ax.lines) for ax in fig.axes) >= 2  # one rank ECDF per chain
    fig = plots.trace_plot(chinchilla, var_names="alpha")
    assert sum(len(ax.lines) for ax in fig.axes) >= 4  # each chain's trace and density
    fig = plots.pair_plot(chinchilla, var_names=["alpha", "beta"])
    scatter = [c for ax in fig.axes for c in ax.collections if len(c.get_offsets()) == S]
    assert len(scatter) == 1  # the lower triangle of two parameters
    with pytest.raises(SpecError, match=r"no posterior variable \['gamma'\]"):
        plots.posterior_plot(chinchilla, var_names=["gamma"])
    assert not plt.get_fignums()  # released by pyplot: not kept alive, not shown twice
    fig.savefig(io.BytesIO(), format="png")  # and still drawn and saved as usual


def test_pair_plot_of_seven_parameters(chinchilla):
    # 49 panels: ArviZ's default limit of 40 refused data_constrained's default seven
    names = ["E", "a_ref", "b_ref", "alpha", "beta", "sigma", "A"]
    fig = plots.pair_plot(chinchilla, var_names=names)
    assert sum(bool(ax.collections) for ax in fig.axes) == 21  # the lower triangle


def test_prior_posterior_plot_draws_the_fits_priors(grouped):
    fig = plots.prior_posterior_plot(grouped, var_names=["alpha_mu", "E", "sigma"])
    drawn = [ax for ax in fig.axes if ax.lines]
    assert len(drawn) == 3 and all(len(ax.lines) >= 2 for ax in drawn)  # prior and posterior
    # alpha_mu has alpha's prior: its prior curve spreads over that prior's range
    prior_line = drawn[0].lines[0].get_xdata()
    low, high = grouped.priors["alpha"].scipy().ppf([0.05, 0.95])
    assert prior_line.min() < low and prior_line.max() > high
    with pytest.raises(SpecError, match="no prior of its own"):
        plots.prior_posterior_plot(grouped, var_names=["alpha"])
    assert "prior" not in grouped.posterior.children  # the fit is not changed


def test_prior_posterior_plot_of_separate_values_grouped_by_a_column_named_group():
    """arviz-plots stacks prior and posterior along a dimension it calls "group"."""
    frame = pd.concat([nd_design("x"), nd_design("y")], ignore_index=True)
    draws = jittered(TRUTH, 0.03, 1)
    e = draws.pop("E")
    draws["E"] = np.stack([e * 0.98, e * 1.02], axis=1)
    pooling = dict.fromkeys(TRUTH, "shared") | {"E": "separate"}
    fit = fake_fit(
        frame.rename(columns={"g": "group"}),
        "chinchilla",
        draws,
        group="group",
        pooling=pooling,
        chains=2,
    )
    fig = plots.prior_posterior_plot(fit, var_names=["E", "sigma"])
    drawn = [ax for ax in fig.axes if ax.lines]
    assert len(drawn) == 3 and all(len(ax.lines) >= 2 for ax in drawn)  # E per group, sigma


def test_ppc_plot_overlays_replicated_data(power):
    fig = plots.ppc_plot(power, num_samples=20)
    (ax,) = [ax for ax in fig.axes if ax.lines]
    assert len(ax.lines) == 21  # 20 replicated data sets and the observed one
    observed = np.log(power.data.y_values())
    assert spans(ax, observed)
    with pytest.raises(SpecError, match="num_samples"):
        plots.ppc_plot(power, num_samples=0)


def test_figures_of_an_unconverged_fit_warn_as_answers_do():
    """Each was silent; the rank, trace and pair plots, which show the failure, stay so."""
    from test_report import DRAWS, chinchilla_draws

    good = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 0), chains=2)
    bad = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 1, shift=0.05), chains=2)
    assert good.converged and not bad.converged
    figures = [
        plots.fit_plot,
        lambda f: plots.extrapolation_plot(f, {"C": 1e24}, extrapolation="population"),
        lambda f: plots.isoflop_plot(f, [1e20]),
        lambda f: plots.frontier_plot(f, [1e20, 1e22]),
        plots.residual_plot,
        lambda f: plots.comparison_plot({"a": f}),
        plots.forest_plot,
    ]
    for draw in figures:
        with pytest.warns(bayescale.ConvergenceWarning, match="^figure from a fit that failed"):
            plt.close(draw(bad))
        with warnings.catch_warnings():
            warnings.simplefilter("error", bayescale.ConvergenceWarning)
            plt.close(draw(good))
    with warnings.catch_warnings():
        warnings.simplefilter("error", bayescale.ConvergenceWarning)
        plt.close(plots.rank_plot(bad))


def test_posterior_and_rank_plots_of_many_groups():
    """Fourteen groups with three separate parameters ask 45 panels: ArviZ refused over 40."""
    labels = list("abcdefghijklmn")
    frame = pd.concat([nd_design(g) for g in labels], ignore_index=True)
    draws = jittered(TRUTH, 0.03, 3)
    rng = np.random.default_rng(3)
    separate = ("E", "a_ref", "b_ref")
    for k in separate:
        draws[k] = draws[k][:, None] * np.exp(0.02 * rng.standard_normal((S, len(labels))))
    pooling = dict.fromkeys(TRUTH, "shared") | dict.fromkeys(separate, "separate")
    fit = fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling, chains=2)
    for plot in (plots.posterior_plot, plots.rank_plot):
        figure = plot(fit)
        assert len([ax for ax in figure.axes if ax.has_data()]) >= 3 * len(labels) + 3
        plt.close(figure)


@pytest.mark.parametrize("n", [3, 12, 30])
def test_group_colours_differ(n):
    """Matplotlib's cycle repeats after ten: configurations 0 and 10 shared a colour."""
    from matplotlib.colors import to_rgba

    assert len({to_rgba(c) for c in plots._palette(n)}) == n
