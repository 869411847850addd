"""loss_to_loss: formula, errors-in-variables noise, prediction below E_x, recovery, case study.

The recovery test fits 4 simulated pairs of losses (40 pairs, 1% noise on both); with
calibrated 90% intervals the number of (parameter, data set) cases covering the truth is
about Binomial(16, 0.9), so requiring >= 75% fails a calibrated model with probability ~1%.
Its fits take 2,000 draws per chain: at the default 1,000, 5 of 20 seeds gave r-hat
1.010-1.015, over the 1.01 limit; at 2,000, none of 20 did (every r-hat <= 1.0065, no
divergences).
"""

import numpy as np
import pandas as pd
import pytest
from conftest import case_study, finite_gradient, model_for
from scipy import stats

import bayescale
from bayescale.data import prepare
from bayescale.errors import UndefinedDrawsWarning
from bayescale.likelihoods import get_likelihood
from bayescale.ops import NUMPY, PYTENSOR

# case studies report each fit's convergence in their own tables and checks, and
# answer from the fits that fail them too: those answers' warnings are not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

LAW = bayescale.get_law("loss_to_loss")
LX = np.linspace(2.4, 4.5, 9)
LOG_REF = LAW.log_reference({"Lx": LX})
TRUTH = {"K": 1.3, "kappa": 1.2, "E_x": 1.8, "E_y": 1.5}


def simulate(seed, n=40, noise=0.01):
    """Pairs of losses from the published form, both measured with ``noise``."""
    rng = np.random.default_rng(seed)
    lx = np.geomspace(2.4, 4.5, n)
    ly = TRUTH["K"] * (lx - TRUTH["E_x"]) ** TRUTH["kappa"] + TRUTH["E_y"]
    return pd.DataFrame(
        {"Lx": lx * np.exp(rng.normal(0, noise, n)), "Ly": ly * np.exp(rng.normal(0, noise, n))}
    )


def prior_point(seed):
    return {k: float(v[0]) for k, v in LAW.sample_prior(1, random_seed=seed).items()}


def test_matches_published_formula():
    for seed in range(5):
        p = prior_point(seed)
        p.update({k: float(v) for k, v in LAW.derived(NUMPY, p, LOG_REF).items()})
        expected = p["K"] * (LX - p["E_x"]) ** p["kappa"] + p["E_y"]
        np.testing.assert_allclose(LAW.mean(p, {"Lx": LX}, LOG_REF), expected, rtol=1e-10)


def test_reference_is_the_smallest_input_so_every_fitted_row_is_above_E_x():
    assert np.exp(LOG_REF["Lx"]) == pytest.approx(2.4)
    draws = LAW.sample_prior(2000, random_seed=0)
    e_x = LAW.derived(NUMPY, draws, LOG_REF)["E_x"]
    assert np.all(e_x < LX.min())


def test_numpy_and_pytensor_agree_for_mean_and_input_noise():
    p = prior_point(3)
    z = LAW.z({"Lx": LX}, LOG_REF)
    for method in (LAW.log_mean, LAW.input_log_sd):
        np.testing.assert_allclose(method(PYTENSOR, p, z).eval(), method(NUMPY, p, z), rtol=1e-12)


def test_input_noise_is_slope_times_sigma_x():
    """First-order propagation: |d log Ly / d log Lx| * sigma_x, by finite differences."""
    p = prior_point(4)
    h = 1e-6
    up, down = (LAW.mean(p, {"Lx": LX * np.exp(s)}, LOG_REF) for s in (h, -h))
    slope = (np.log(up) - np.log(down)) / (2 * h)
    got = LAW.input_log_sd(NUMPY, p, LAW.z({"Lx": LX}, LOG_REF))
    np.testing.assert_allclose(got, np.abs(slope) * p["sigma_x"], rtol=1e-6)


def test_finite_logp_gradient_at_initial_point():
    lik = get_likelihood("normal")
    finite_gradient(model_for(LAW, lik, prepare(simulate(0), LAW, "Ly")))


def test_grouped_build_has_group_dimension():
    df = pd.concat([simulate(1).assign(corpus="a"), simulate(2).assign(corpus="b")])
    lik = get_likelihood("normal")
    fd = prepare(df, LAW, "Ly", group="corpus")
    model = model_for(LAW, lik, fd, {**dict.fromkeys(LAW.parameters, "shared"), "kappa": "pooled"})
    assert model.named_vars_to_dims["kappa"] == ("corpus",)
    finite_gradient(model)


def test_prior_predictive_claim():
    draws = LAW.prior_predictive({"Lx": np.linspace(2.5, 4.0, 40)}, n=4000, random_seed=1)
    lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
    assert 0.9 < lo < 1.3 and 2.3 < med < 3.1 and 7.0 < hi < 10.0


def test_bounded_likelihood_is_refused():
    with pytest.raises(bayescale.SpecError, match="input noise of law 'loss_to_loss'"):
        bayescale.fit(simulate(0).assign(Ly=0.5), law="loss_to_loss", y="Ly", likelihood="beta")


@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::bayescale.errors.UndefinedDrawsWarning")
def test_short_fit_log_likelihood_save_load_and_prediction_below_E_x(tmp_path):
    fit = bayescale.fit(simulate(0), law="loss_to_loss", y="Ly", chains=2, draws=200, tune=300)
    draws = fit.draws(["sigma", "sigma_x", *LAW.parameters])
    p = {k: v[:, None] for k, v in draws.items()}
    z = {k: v[None, :] for k, v in LAW.z(fit.data.frame, fit.log_ref).items()}
    scale = np.hypot(p["sigma"], LAW.input_log_sd(NUMPY, p, z))
    expected = stats.norm.logpdf(
        np.log(fit.data.frame["Ly"].to_numpy()), LAW.log_mean(NUMPY, p, z), scale
    )
    got = fit.posterior["log_likelihood"]["y"].to_numpy().reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    fit.save(tmp_path / "l2l.nc")
    new = {"Lx": [2.2, 3.0]}
    pd.testing.assert_frame_equal(
        bayescale.load(tmp_path / "l2l.nc").predict(new), fit.predict(new)
    )
    # An Lx below every draw's E_x: the law is undefined there, and says so.
    with pytest.warns(UndefinedDrawsWarning, match="up to 100% of posterior draws at 1 rows"):
        out = fit.predict({"Lx": [0.01, 3.0]})
    assert np.isnan(out["median"].iloc[0]) and np.isfinite(out["median"].iloc[1])


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,  # the test asserts each fit passed its checks
    reason="10% of the recovery fits' draws hit NUTS's maximum tree depth (411 leapfrog "
    "steps per draw; found by the tree-depth check, issue 19): the law's geometry needs "
    "reparameterising; this test passes again once it does",
)
def test_recovery():
    cases = []
    for seed in range(4):
        fit = bayescale.fit(
            simulate(100 + seed), law="loss_to_loss", y="Ly", random_seed=seed, draws=2000
        )
        assert fit.diagnostics.ok, str(fit.diagnostics)
        table = fit.summary(ci=0.9)
        cases += [table.loc[k, "lower"] <= v <= table.loc[k, "upper"] for k, v in TRUTH.items()]
    assert np.mean(cases) >= 0.75, cases


@pytest.mark.slow
def test_pythia_case_study_acceptance():
    run = case_study("pythia_loss_to_loss", "pythia_evals").run

    with pytest.warns(UndefinedDrawsWarning):
        assert run()[-1]


@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")  # constant fake draws
def test_a_chained_loss_below_a_draws_floor_is_named_as_predict_names_it():
    """predict_chained dropped such draws from its intervals with only numpy's warning."""
    from bayescale.testing import fake_fit

    n, rng = 200, np.random.default_rng(0)
    lx = np.linspace(2.5, 4.0, 20)
    pair = pd.DataFrame({"Lx": lx, "Ly": 1.5 + 0.5 * (lx - 1.5) ** 1.2})
    const = {"E_y": 1.5, "k_ref": 0.5, "kappa": 1.2, "sigma_x": 0.01, "sigma": 0.01}
    draws = {k: np.full(n, v) for k, v in const.items()} | {"f": rng.uniform(0.3, 0.7, n)}
    downstream = fake_fit(pair, "loss_to_loss", draws, y="Ly")
    x = np.geomspace(1e6, 1e9, 12)
    runs = pd.DataFrame({"x": x, "Lx": 1.0 + 30 * x**-0.2})
    a_ref = 30 * np.exp(-0.2 * bayescale.get_law("power_law").log_reference(runs)["x"])
    power = {"E": 1.0, "a_ref": a_ref, "alpha": 0.2, "sigma": 0.01}
    upstream = fake_fit(runs, "power_law", {k: np.full(n, v) for k, v in power.items()}, y="Lx")
    with pytest.warns(UndefinedDrawsWarning, match="undefined for up to"):
        bayescale.predict_chained(upstream, downstream, {"x": [1e14]}, extrapolation="none")
