"""Tests of the isoFLOP law (Approach 2 of Hoffmann et al. as one model).

Fast lane: the law against its formula on natural parameters, numpy vs pytensor, its
closed-form optimum against the numeric optimisation every other law uses, the frontier
exponent, the default pooling of a grouped fit, the docstring's prior-predictive claim,
and recovery from a simulated isoFLOP sweep: 7 budgets x 9 model sizes with 1% noise,
drawn from the law with the budgets' minima scattered around the frontier (as a grouped
fit models them), and from Chinchilla's law with ``alpha = beta``, whose isoFLOP curves
are ``cosh`` in ``log N`` (so a parabola is their expansion and the true ``a`` is 0.5).
Each recovery check asks a 90% interval to hold the truth: a calibrated fit misses each
with probability 0.1, and the seeds are fixed.

Slow lane: the case study's acceptance (``case_studies/isoflop_approaches.py``, skipped
without ``../shared/data``).
"""

import numpy as np
import pandas as pd
import pytest
from conftest import case_study, finite_gradient, model_for

import bayescale
from bayescale.data import prepare
from bayescale.evaluation.decisions import numeric_optimum, optimum
from bayescale.likelihoods import get_likelihood
from bayescale.models.isoflop import near_optimum
from bayescale.ops import NUMPY, PYTENSOR
from bayescale.simulate import chinchilla_loss

LAW = bayescale.get_law("isoflop")
BUDGETS = np.geomspace(1e18, 1e21, 7)
K = 6.0


def isoflop_design(budgets=BUDGETS, sizes=9, centre=0.08, a=0.5, spread=1.6):
    """Model sizes within ``exp(±spread)`` of ``N* = centre (C/k)^a`` at each budget."""
    c = np.repeat(budgets, sizes)
    n = centre * (c / K) ** a * np.exp(np.tile(np.linspace(-spread, spread, sizes), len(budgets)))
    return pd.DataFrame({"N": n, "D": c / (K * n), "C": c, "budget": [f"{x:.0e}" for x in c]})


DESIGN = isoflop_design()
LOG_REF = LAW.log_reference(DESIGN)
TRUTH = {"L_opt": 2.6, "gamma": 0.045, "n_opt": 0.2, "a": 0.46, "kappa": 0.03}


def test_log_mean_is_the_parabola_with_power_law_minima():
    p = TRUTH | LAW.derived(NUMPY, TRUTH, LOG_REF)
    n, d = DESIGN["N"].to_numpy(), DESIGN["D"].to_numpy()
    log_c = np.log(n * d) - LOG_REF["N"] - LOG_REF["D"]
    n_star = p["G"] * (n * d) ** p["a"]  # N* = G (C/k)^a
    expected = np.log(p["L_opt"]) - p["gamma"] * log_c + p["kappa"] * np.log(n / n_star) ** 2
    np.testing.assert_allclose(np.log(LAW.mean(TRUTH, DESIGN, LOG_REF)), expected, rtol=1e-12)
    assert p["b"] == pytest.approx(1 - TRUTH["a"])


def test_numpy_and_pytensor_agree():
    p = {k: float(v[0]) for k, v in LAW.sample_prior(1, random_seed=4).items()}
    z = LAW.z(DESIGN, LOG_REF)
    np.testing.assert_allclose(
        LAW.log_mean(PYTENSOR, p, z).eval(), LAW.log_mean(NUMPY, p, z), rtol=1e-12
    )


def test_closed_form_optimum_equals_numeric_optimisation():
    draws = LAW.sample_prior(200, random_seed=5)
    budgets = np.geomspace(1e17, 1e25, 5)
    closed = optimum(LAW, draws, LOG_REF, budgets, K)
    with pytest.warns(bayescale.UndefinedDrawsWarning):  # prior draws with D*/N* beyond 1e7
        numeric = numeric_optimum(LAW, draws, LOG_REF, budgets, K)
    inside = np.isfinite(numeric[0])
    assert inside.mean() > 0.95
    ratio = closed[1] / closed[0]
    assert np.all(inside | (ratio < 1e-4) | (ratio > 1e6))  # NaN only at the range's edges
    # a minimum is located to about sqrt(machine epsilon) of log N: the loss is flat there
    np.testing.assert_allclose(closed[0][inside], numeric[0][inside], rtol=1e-6)
    np.testing.assert_allclose(closed[1][inside], numeric[1][inside], rtol=1e-6)
    assert LAW.frontier_exponent(draws) is draws["a"]


def test_grouped_fit_shares_the_frontier_and_pools_each_budget():
    assert bayescale.pooling.resolve(LAW, "budget", {"kappa": "pooled"}) == {
        "L_opt": "pooled",
        "gamma": "shared",
        "n_opt": "pooled",
        "a": "shared",
        "kappa": "pooled",
    }
    assert set(bayescale.pooling.resolve(LAW, None, None).values()) == {"shared"}


def test_near_optimum_keeps_each_budgets_runs_around_its_best():
    df = DESIGN.assign(loss=LAW.mean(TRUTH, DESIGN, LOG_REF))
    # the design's sizes are exp(0.4) apart, so a factor 2 keeps the best run and one each side
    kept = near_optimum(df, "budget", factor=2.0)
    assert (kept.groupby("budget").size() == 3).all() and kept.attrs["dropped_budgets"] == {}
    for _, runs in kept.groupby("budget"):
        assert runs["loss"].iloc[1] == runs["loss"].min()  # the middle one is the best
    kept = near_optimum(df, "budget", factor=1.1, fewest=2)  # the best run alone: too few
    assert kept.empty and len(kept.attrs["dropped_budgets"]) == len(BUDGETS)
    assert len(near_optimum(df, "budget", factor=100.0)) == len(df)
    # a budget whose loss still falls at its largest model has no bracketed minimum
    first = df["budget"] == "1e+18"
    falling = df.assign(loss=np.where(first, 3.0 - 1e-10 * df["N"], df["loss"]))
    kept = near_optimum(falling, "budget", factor=100.0)
    assert list(kept.attrs["dropped_budgets"]) == ["1e+18"]
    assert "smallest or largest" in kept.attrs["dropped_budgets"]["1e+18"]
    assert len(kept) == (~first).sum()


@pytest.mark.parametrize(
    ("change", "kwargs", "error"),
    [
        (lambda d: d, {"factor": 1.0}, "factor must be a number above 1"),
        (lambda d: d.drop(columns="budget"), {}, "column 'budget' is missing"),
        (lambda d: d.assign(budget=None), {}, "budget column 'budget' has missing labels"),
        (lambda d: d.assign(loss="x"), {}, "column 'loss'"),
        (lambda d: d.assign(N=-1.0), {}, "column 'N'"),
    ],
)
def test_near_optimum_names_bad_input(change, kwargs, error):
    df = change(DESIGN.assign(loss=2.0))
    with pytest.raises(bayescale.BayescaleError, match=error):
        near_optimum(df, "budget", **kwargs)


def test_finite_gradient_at_initial_point_grouped():
    df = DESIGN.assign(loss=LAW.mean(TRUTH, DESIGN, LOG_REF))
    lik = get_likelihood("normal")
    fitdata = prepare(df, LAW, "loss", group="budget")
    grad = finite_gradient(model_for(LAW, lik, fitdata))
    assert np.all(np.isfinite(grad))


def test_default_priors_imply_plausible_llm_losses():
    """The docstring's prior-predictive claim: median 2.9, 90% in [0.8, 11] nats."""
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), 50))
    d = np.exp(rng.uniform(np.log(5e9), np.log(5e11), 50))
    draws = LAW.prior_predictive({"N": n, "D": d}, n=4000, random_seed=1)
    lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
    assert 2.6 < med < 3.2 and 0.7 < lo < 0.9 and 9.5 < hi < 12.5


def _inside(table, row, truth):
    return table.loc[row, "lower"] <= truth <= table.loc[row, "upper"]


@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")
def test_recovers_the_frontier_of_budgets_scattered_around_it():
    rng = np.random.default_rng(8)
    labels = DESIGN["budget"].unique()
    shift = dict(zip(labels, rng.normal(0, 0.15, len(labels)), strict=True))  # minima off the line
    p = TRUTH | {"n_opt": TRUTH["n_opt"] + DESIGN["budget"].map(shift).to_numpy()}
    loss = LAW.mean(p, DESIGN, LOG_REF) * np.exp(rng.normal(0, 0.01, len(DESIGN)))
    fit = bayescale.fit(DESIGN.assign(loss=loss), law="isoflop", group="budget", random_seed=1)
    # the default geometry leaves a few isolated divergent draws on most seeds (0-2 of 4,000
    # over seeds 0-5 on these data, as non-centred over seeds 0-7; the same seed differs
    # between compilations of the sampler): issue 19. Everything else must pass.
    d = fit.diagnostics
    assert d.divergences <= 20 and d.max_r_hat <= 1.01 and d.min_ess_bulk >= 400, d
    table = bayescale.frontier_exponents(fit, group="a new budget")
    assert _inside(table, "a", TRUTH["a"]), table
    # each budget's optimum: the posterior of its own minimum holds the truth
    at = BUDGETS[[0, 3, 6]]
    for c in at:
        label = f"{c:.0e}"
        true_n = np.exp(LOG_REF["N"] + p["n_opt"][DESIGN["budget"] == label][0]) * np.exp(
            TRUTH["a"] * (np.log(c / K) - LOG_REF["N"] - LOG_REF["D"])
        )
        row = bayescale.compute_optimal(fit, c, group=label, extrapolation="none").iloc[0]
        assert row["N_opt_lower"] <= true_n <= row["N_opt_upper"], (label, true_n, row)


@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")
def test_recovers_a_half_from_chinchilla_curves_with_equal_exponents():
    params = {"E": 1.8, "A": 400.0, "B": 400.0 * 20**0.34, "alpha": 0.34, "beta": 0.34}
    # alpha = beta: N* = (A/B)^(1/(2 alpha)) (C/6)^0.5, here D*/N* = 20 at every budget
    design = isoflop_design(centre=np.sqrt(1 / 20), spread=1.2)
    rng = np.random.default_rng(9)
    loss = chinchilla_loss(params, design["N"], design["D"]) * np.exp(
        rng.normal(0, 0.01, len(design))
    )
    # the floor E bends the optimum's loss off a power law in C: each budget's L_opt sits
    # well off the population line and is pinned by its runs, where the centred form samples
    # best (non-centred: 1-5 divergences of 4,000 on these data; the default, each budget
    # around its own estimate: 0-6 over seeds 0-4, the marginal sd of a budget's L_opt in its
    # own runs being confounded with the shared gamma)
    fit = bayescale.fit(
        design.assign(loss=loss),
        law="isoflop",
        group="budget",
        pooling={"L_opt": "pooled_centred", "n_opt": "pooled_noncentred"},
        random_seed=2,
    )
    # over seeds 0-7: no divergence, bulk ESS 578-904, max r-hat 1.004-1.013 (its own noise
    # at that ESS reaches the 1.01 gate, so the gate here is 1.02)
    d = fit.diagnostics
    assert d.divergences == 0 and d.max_r_hat <= 1.02 and d.min_ess_bulk >= 400, d
    assert _inside(bayescale.frontier_exponents(fit, group="new"), "a", 0.5)
    row = bayescale.compute_optimal(fit, 1e20, group="new", extrapolation="none").iloc[0]
    assert row["tokens_per_param_lower"] <= 20 <= row["tokens_per_param_upper"], row


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")
def test_isoflop_case_study_acceptance():
    """Approach 2 overlaps Porian et al.'s interval on all ten configurations (README table)."""
    study = case_study(
        "isoflop_approaches",
        "open_athena_isoflops",
        "porian_resolving_discrepancies",
        "gemstones",
    )
    table, ok = study.run()
    assert ok
    assert len(table) == 15 and table["approach 3 ok"].all()
