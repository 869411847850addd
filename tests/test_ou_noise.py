"""Noise correlated along a curve (``ou_normal``): density, links, fit and predictions."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayescale
from bayescale.likelihoods import OUNormal
from bayescale.ops import NUMPY
from bayescale.sbc import sbc

LAW = bayescale.get_law("power_law")
TRUTH = {"E": 1.5, "a_ref": 0.3, "alpha": 0.3, "sigma": 0.02, "ell": 0.3}


def ou_cov(z, sigma, ell):
    return sigma**2 * np.exp(-np.abs(z[:, None] - z[None, :]) / ell)


def ou_curve(n=80, seed=1):
    """One learning curve: the power law times exp(OU noise along log x), rows shuffled."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e9, n)
    log_mu = LAW.log_mean(NUMPY, TRUTH, LAW.z({"x": x}, LAW.log_reference({"x": x})))
    noise = rng.multivariate_normal(np.zeros(n), ou_cov(np.log(x), TRUTH["sigma"], TRUTH["ell"]))
    return pd.DataFrame({"x": x, "loss": np.exp(log_mu + noise)}).sample(frac=1, random_state=0)


@pytest.fixture(scope="module")
def ou_fit():
    # At the default target_accept 0.8 this posterior gave 40 divergences of 4,000 (the
    # law's level and a slow drift of the noise trade off); at 0.95, none (r-hat 1.006).
    return bayescale.fit(ou_curve(), law="power_law", likelihood="ou_normal", target_accept=0.95)


def test_density_is_each_curves_joint_gaussian_in_any_row_order():
    """The conditionals along each curve multiply to the OU process's joint density."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": np.exp(rng.uniform(10, 20, 12))})
    groups = np.array([0, 1] * 6)
    lik = OUNormal()
    links = lik.links(LAW, frame, LAW.log_reference(frame), groups)
    log_mu = rng.normal(0.5, 0.1, (1, 12))
    observed = rng.normal(0.5, 0.1, 12)
    p = {"sigma": np.array([[0.05]]), "ell": np.array([[0.7]])}
    context = lik.context(observed, log_mu, links)
    got = lik.logpdf(observed, log_mu, p, context=context).sum()
    z = np.log(frame["x"].to_numpy())
    want = sum(
        stats.multivariate_normal(log_mu[0, g], ou_cov(z[g], 0.05, 0.7)).logpdf(observed[g])
        for g in (groups == 0, groups == 1)
    )
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_model_graph_and_numpy_give_the_same_pointwise_density(ou_fit):
    """The PyMC model's log-likelihood equals the stored (numpy) one at posterior draws."""
    from bayescale.build import build_model

    model = build_model(
        ou_fit.law, ou_fit.priors, ou_fit.likelihood, ou_fit.data, ou_fit.log_ref,
        ou_fit.pooling,
    )  # fmt: skip
    pointwise = model.compile_fn(model.logp(vars=model.observed_RVs, sum=False)[0])
    draws = ou_fit.draws([*LAW.parameters, "sigma", "ell"])
    stored = ou_fit.posterior["log_likelihood"]["y"].to_numpy().reshape(-1, len(ou_fit.data.frame))
    for i in (0, 1234, 3999):  # every free parameter here is log-transformed
        point = {f"{k}_log__": np.log(v[i]) for k, v in draws.items()}
        np.testing.assert_allclose(pointwise(point), stored[i], rtol=1e-8)


def test_fit_recovers_the_noise_and_loo_prefers_it_to_independent_noise(ou_fit):
    table = ou_fit.summary(ci=0.9)
    for name in ("sigma", "ell", "E", "alpha"):
        assert table.loc[name, "lower"] <= TRUTH[name] <= table.loc[name, "upper"], name
    iid = bayescale.fit(ou_fit.data.frame, law="power_law")
    ranked = bayescale.compare({"ou_normal": ou_fit, "normal": iid})
    assert ranked.index[0] == "ou_normal"
    assert -ranked.loc["normal", "elpd_diff"] > 2 * ranked.loc["normal", "dse"]  # 14.7 +- 5.2


def test_observed_predictions_continue_the_fitted_curve(ou_fit, tmp_path):
    """Just past the data the next checkpoint follows the last one; far out, it forgets."""
    df = ou_fit.data.frame.sort_values("x")
    last_x, last_loss = df["x"].iloc[-1], df["loss"].iloc[-1]
    new = pd.DataFrame({"x": [1.01 * last_x, 1e3 * last_x]})
    near, far = (row for _, row in ou_fit.predict(new, kind="observed").iterrows())
    assert abs(np.log(near["median"] / last_loss)) < 0.25 * TRUTH["sigma"]
    assert near["upper"] - near["lower"] < 0.5 * (far["upper"] - far["lower"])
    ou_fit.save(tmp_path / "ou.nc")
    loaded = bayescale.load(tmp_path / "ou.nc")
    pd.testing.assert_frame_equal(
        loaded.predict(new, kind="observed"), ou_fit.predict(new, kind="observed")
    )


def test_bad_specifications_are_refused_clearly():
    x = [1e6, 1e7, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8]
    df = pd.DataFrame({"x": x, "loss": np.linspace(3.0, 2.0, 8)})
    with pytest.raises(bayescale.SpecError, match=r"rows 1 and 2 share x = 1e\+07"):
        bayescale.fit(df, law="power_law", likelihood="ou_normal")
    with pytest.raises(bayescale.SpecError, match="along='D' must name one of"):
        bayescale.fit(df, law="power_law", likelihood={"name": "ou_normal", "along": "D"})
    with pytest.raises(bayescale.SpecError, match="not supported"):
        sbc("power_law", {"x": [1e6, 1e7]}, likelihood="ou_normal")


def test_command_line_fits_a_curve_with_correlated_noise(tmp_path, capsys):
    from bayescale.cli import main

    csv, path = tmp_path / "curve.csv", tmp_path / "fit.nc"
    ou_curve().to_csv(csv, index=False)
    args = ["fit", str(csv), "--law", "power_law", "--likelihood", "ou_normal"]
    assert main([*args, "--target-accept", "0.95", "--save", str(path)]) == 0
    assert "ell" in capsys.readouterr().out
    loaded = bayescale.load(path)
    assert loaded.likelihood.name == "ou_normal" and loaded.settings["target_accept"] == 0.95


def test_new_rows_link_to_the_last_fitted_point_below_them_on_their_own_curve():
    fitted = pd.DataFrame({"x": [1e6, 1e7, 1e8, 3e6, 3e7]})
    groups = np.array([0, 0, 0, 1, 1])
    new = pd.DataFrame({"x": [2e8, 2e7, 5e7, 1e5, 1e9]})
    new_groups = np.array([0, 0, 1, 1, -1])  # -1: a curve never fitted
    log_ref = LAW.log_reference(fitted)
    links = OUNormal().links(LAW, fitted, log_ref, groups, new=(new, new_groups))
    np.testing.assert_array_equal(links["has_prev"], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(links["prev"][:3], [2, 1, 4])
    np.testing.assert_allclose(links["gap"][:3], np.log([2.0, 2.0, 5 / 3]))
