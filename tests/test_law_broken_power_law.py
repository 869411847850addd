"""``broken_power_law`` (BNSL): formula, numerics, priors, options; slow: recovery, case study.

Slow recovery design: 4 simulated curves of 40 points (x from 1e3 to 1e5, 1% noise) with
one visible break (slope 0.2 -> 1.7 at x ~ 1.3e4, width 0.3 in log x). Six law parameters
per data set give k = 24 (parameter, data set) cases; with calibrated 90% intervals the
number covering the truth is about Binomial(24, 0.9), and requiring >= 75% (18 of 24)
fails a calibrated model with probability about 2%, while a biased or over-confident fit
fails it reliably.

Each fit takes 2,000 draws per chain: the posterior is a curved ridge, and at the default
1,000 draws about 1 fit in 20 fails r-hat <= 1.01 or has a divergence. At 2,000 draws, 1
of 40 seeds failed (a single divergence; every r-hat <= 1.008;
``python benchmarks/convergence_rates.py --seeds 40 --draws 2000``), so the test allows
one of its four fits to fail the checks: two or more fail with probability under 1%.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import case_study, finite_gradient, model_for

import bayescale
from bayescale.data import prepare
from bayescale.likelihoods import get_likelihood
from bayescale.ops import NUMPY, PYTENSOR
from bayescale.testing import ONE_BREAK, one_break_curve

# case studies report each fit's convergence in their own tables and checks, and
# answer from the fits that fail them too: those answers' warnings are not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

NAME = "broken_power_law"
X = np.geomspace(2e3, 2e5, 25)
LOG_REF = {"x": np.log(2e4)}


def hand_written(p, x, n_breaks):
    """The paper's equation, plain numpy, natural parameters (``a, b, c_i, d_i, f_i``)."""
    y = p["b"] * x ** -p["c0"]
    for i in range(1, n_breaks + 1):
        y = y * (1 + (x / p[f"d{i}"]) ** (1 / p[f"f{i}"])) ** (-p[f"c{i}"] * p[f"f{i}"])
    return p["a"] + y


@pytest.mark.parametrize("n_breaks", [1, 2, 3])
def test_log_mean_matches_the_paper_formula(n_breaks):
    law = bayescale.get_law(NAME, n_breaks=n_breaks)
    draws = law.sample_prior(200, random_seed=n_breaks)
    checked = 0
    for j in range(200):
        p = {k: float(v[j]) for k, v in draws.items()}
        p.update({k: float(v) for k, v in law.derived(NUMPY, p, LOG_REF).items()})
        with np.errstate(over="ignore"):
            expected = hand_written(p, X, n_breaks)
        if not np.all(np.isfinite(expected) & (expected < 1e100)):
            continue  # the naive formula overflows; the law's log-space form does not
        got = law.mean(p, {"x": X}, LOG_REF)
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        checked += 1
    assert checked >= 150


@pytest.mark.parametrize("n_breaks", [1, 2, 3])
def test_numpy_and_pytensor_agree(n_breaks):
    law = bayescale.get_law(NAME, n_breaks=n_breaks)
    p = {k: float(v[0]) for k, v in law.sample_prior(1, random_seed=7).items()}
    z = {"x": np.log(X) - LOG_REF["x"]}
    np.testing.assert_allclose(
        law.log_mean(PYTENSOR, p, z).eval(), law.log_mean(NUMPY, p, z), rtol=1e-12
    )


def test_breaks_are_ordered_and_the_scale_is_the_value_at_the_reference():
    law = bayescale.get_law(NAME, n_breaks=3)
    draws = law.sample_prior(500, random_seed=3)
    d = law.derived(NUMPY, draws, LOG_REF)
    assert np.all(d["d1"] < d["d2"]) and np.all(d["d2"] < d["d3"])
    at_ref = law.log_mean(NUMPY, draws, {"x": np.zeros(1)})
    np.testing.assert_allclose(np.exp(at_ref), draws["y_ref"], rtol=1e-12)
    np.testing.assert_allclose(d["a"], draws["y_ref"] * draws["a_frac"], rtol=1e-12)


def test_log_space_survives_sharp_breaks_far_away():
    law = bayescale.get_law(NAME)
    p = {"y_ref": 1.0, "a_frac": 1e-9, "c0": 0.3, "z1": 50.0, "c1": 8.0, "f1": 0.01}
    out = law.log_mean(NUMPY, p, {"x": np.array([-200.0, 0.0, 200.0])})
    assert np.all(np.isfinite(out))
    # far left of the break the curve is the first segment, y_ref * x^-c0
    np.testing.assert_allclose(out[0], 0.3 * 200, rtol=1e-9)


@pytest.mark.parametrize("n_breaks", [1, 2, 3])
def test_finite_logp_gradient_at_initial_point(n_breaks):
    law = bayescale.get_law(NAME, n_breaks=n_breaks)
    lik = get_likelihood("normal")
    df = pd.DataFrame({"x": X, "loss": 2.0 * X**-0.1})
    grad = finite_gradient(model_for(law, lik, prepare(df, law, "loss")))
    assert grad.shape == (len(law.parameters) + 1,)


def test_grouped_build_pools_every_parameter():
    law = bayescale.get_law(NAME, n_breaks=2)
    lik = get_likelihood("normal")
    df = pd.concat(
        [pd.DataFrame({"x": X, "loss": s * X**-0.1, "task": t}) for t, s in (("a", 2), ("b", 3))]
    )
    fd = prepare(df, law, "loss", group="task")
    model = model_for(law, lik, fd, {"c0": "shared", "y_ref": "separate"})
    assert {"gap2_mu", "gap2_tau", "gap2_z", "c2_z"} <= set(model.named_vars)
    assert model.named_vars_to_dims["y_ref"] == ("task",)
    # Not finite_gradient: FAST_COMPILE's Python logp cannot run this many fused operands.
    grad = model.compile_dlogp(mode="FAST_COMPILE")(model.initial_point())
    assert np.all(np.isfinite(grad))


def test_prior_predictive_claims_in_the_docstring():
    """One break, x over two decades: median ~1, 90% in [0.08, 19], spread within a curve."""
    law = bayescale.get_law(NAME)
    draws = law.prior_predictive({"x": np.geomspace(0.1, 10, 30)}, n=4000, random_seed=1)
    lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
    assert 0.05 < lo < 0.12 and 0.8 < med < 1.4 and 12 < hi < 30
    ratio = draws.max(axis=1) / draws.min(axis=1)
    assert 2 < np.median(ratio) < 5 and 25 < np.quantile(ratio, 0.9) < 100


def test_options_round_trip_and_set_the_parameters():
    law = bayescale.get_law(NAME, n_breaks=3)
    assert law.options == {"n_breaks": 3}
    assert law.parameters == (
        "y_ref", "a_frac", "c0", "z1", "gap2", "gap3", "c1", "f1", "c2", "f2", "c3", "f3"
    )  # fmt: skip
    again = bayescale.get_law(law.to_dict())
    assert again.options == law.options and again.parameters == law.parameters
    assert bayescale.get_law(NAME).parameters == ("y_ref", "a_frac", "c0", "z1", "c1", "f1")
    assert "n_breaks=3" in repr(law)


@pytest.mark.parametrize("bad", [0, 4, -1, 1.5, True, "2", None])
def test_bad_n_breaks_is_a_clear_error(bad):
    with pytest.raises(bayescale.SpecError, match=r"n_breaks must be an integer from 1 to 3"):
        bayescale.get_law(NAME, n_breaks=bad)


def test_unknown_option_and_unknown_prior_name():
    with pytest.raises(bayescale.SpecError, match="broken_power_law"):
        bayescale.get_law(NAME, breaks=2)
    df = pd.DataFrame({"x": X, "loss": 2.0 * X**-0.1})
    with pytest.raises(bayescale.SpecError, match="'c2'.*not a parameter"):
        bayescale.fit(df, law=NAME, priors={"c2": bayescale.Prior("Normal", mu=0, sigma=1)})


# ---------------------------------------------------------------- slow lane


@pytest.mark.slow
def test_recovery_one_visible_break():
    law = bayescale.get_law(NAME)
    cases, failed = [], []
    for seed in range(4):
        df = one_break_curve(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # counted below
            fit = bayescale.fit(df, law=NAME, random_seed=seed, draws=2000)
        if not fit.diagnostics.ok:
            failed.append(f"seed {seed}: {fit.diagnostics}")
        log_ref = law.log_reference(df)
        truth = {**ONE_BREAK, **law.derived(NUMPY, ONE_BREAK, log_ref)}
        table = fit.summary(ci=0.9)
        names = ["a", "b", "c0", "c1", "d1", "f1"]
        cases += [table.loc[k, "lower"] <= truth[k] <= table.loc[k, "upper"] for k in names]
    assert len(failed) <= 1, "\n".join(failed)
    assert np.mean(cases) >= 0.75, cases


@pytest.mark.slow
def test_bnsl_case_study_acceptance():
    study = case_study("bnsl_extrapolation", "bnsl", "revisiting_nsl_benchmark")
    _, table, ok = study.run()
    assert ok
    assert table["bnsl_1 rmsle"].mean() < table["power_law rmsle"].mean()
