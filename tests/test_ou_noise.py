"""Noise correlated along a curve (``ou_normal``): density, links, fit and predictions."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayescale
from bayescale import pooling
from bayescale.likelihoods import OUNormal
from bayescale.ops import NUMPY

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


def test_loo_density_is_the_gaussian_conditional_given_the_rest_of_the_curve():
    """``loo_logpdf`` equals ``log p(y_i | y_-i)`` of the joint normal, row by row."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": np.exp(rng.uniform(10, 14, 9))})
    groups = np.array([0, 1, 0, 0, 1, 2, 0, 1, 0])  # curves of 5, 3 and 1 points
    lik = OUNormal()
    links = lik.links(LAW, frame, LAW.log_reference(frame), groups)
    log_mu = rng.normal(0.5, 0.1, (2, 9))
    observed = rng.normal(0.5, 0.1, 9)
    p = {"sigma": np.array([[0.05], [0.08]]), "ell": np.array([[0.7], [2.0]])}
    got = lik.loo_logpdf(observed, log_mu, p, links=links)
    z = np.log(frame["x"].to_numpy())
    for d in range(2):
        for i in range(9):
            curve = np.flatnonzero(groups == groups[i])
            cov = ou_cov(z[curve], p["sigma"][d, 0], p["ell"][d, 0])
            k = int(np.flatnonzero(curve == i)[0])
            rest = np.delete(np.arange(len(curve)), k)
            gain = cov[k, rest] @ np.linalg.inv(cov[np.ix_(rest, rest)])
            resid = observed[curve] - log_mu[d, curve]
            mean = log_mu[d, i] + gain @ resid[rest]
            var = cov[k, k] - gain @ cov[rest, k]
            np.testing.assert_allclose(
                got[d, i], stats.norm.logpdf(observed[i], mean, np.sqrt(var)), rtol=1e-10
            )


def test_simulated_curves_have_the_ou_covariance():
    """``simulate`` draws each curve from the joint normal (SBC's data), rows in any order."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": np.exp(rng.uniform(10, 13, 8))})
    groups = np.array([0, 1, 0, 1, 0, 0, 1, 0])
    lik, p = OUNormal(), {"sigma": 0.05, "ell": 0.8}
    links = lik.links(LAW, frame, LAW.log_reference(frame), groups)
    noise = np.log([lik.simulate(np.zeros(8), p, rng, links=links) for _ in range(4000)])
    z = np.log(frame["x"].to_numpy())
    want = ou_cov(z, 0.05, 0.8) * (groups[:, None] == groups[None, :])
    # each entry's standard error is below 0.023 sigma^2 at 4,000 draws
    np.testing.assert_allclose(np.cov(noise.T), want, atol=0.1 * 0.05**2)


def test_model_graph_and_numpy_give_the_same_density(ou_fit):
    """The PyMC model's pointwise terms equal the numpy conditionals at posterior draws.

    The stored log-likelihood is each point given all the others (for LOO); its
    predecessor conditionals, which the model sums, come from :meth:`OUNormal.logpdf`.
    """
    from bayescale.engine.build import build_model
    from bayescale.predictive import fitted_links

    fit = ou_fit
    model = build_model(
        fit.law, fit.priors, fit.likelihood, fit.data, fit.log_ref, fit.pooling
    )  # fmt: skip
    pointwise = model.compile_fn(model.logp(vars=model.observed_RVs, sum=False)[0])
    draws = fit.draws([*LAW.parameters, "sigma", "ell"])
    observed = np.log(fit.data.y_values())
    links = fitted_links(fit.law, fit.likelihood, fit.data, fit.log_ref)
    stored = fit.posterior["log_likelihood"]["y"].to_numpy().reshape(-1, len(fit.data.frame))
    for i in (0, 1234, 3999):
        p = {k: v[i] for k, v in draws.items()}
        # every free parameter here is log-transformed, but the law's terms, which are
        # sampled as their log sum and log ratio (bayescale.pooling.create_terms)
        point = {f"{k}_log__": np.log(v) for k, v in p.items() if k not in LAW.terms}
        point[pooling.TERMS_SUM] = np.log(p["E"] + p["a_ref"])
        point[pooling.TERMS_RATIOS] = np.log([p["E"] / p["a_ref"]])
        log_mu = LAW.log_mean(NUMPY, p, LAW.z(fit.data.frame, fit.log_ref))
        context = fit.likelihood.context(observed, log_mu, links)
        want = fit.likelihood.logpdf(observed, log_mu, p, context=context)
        np.testing.assert_allclose(pointwise(point), want, rtol=1e-8)
        loo = fit.likelihood.loo_logpdf(observed, log_mu, p, links=links)
        np.testing.assert_allclose(stored[i], loo, rtol=1e-8)


def test_fit_recovers_the_noise_and_loo_prefers_it_to_independent_noise(ou_fit):
    table = ou_fit.summary(ci=0.9)
    for name in ("sigma", "ell", "E", "alpha"):
        assert table.loc[name, "lower"] <= TRUTH[name] <= table.loc[name, "upper"], name
    iid = bayescale.fit(ou_fit.data.frame, law="power_law")
    ranked = bayescale.compare({"ou_normal": ou_fit, "normal": iid})
    assert ranked.index[0] == "ou_normal"
    assert -ranked.loc["normal", "elpd_diff"] > 2 * ranked.loc["normal", "dse"]  # 36.7 +- 5.8


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


def test_new_rows_at_a_fitted_value_are_refused_not_nan(ou_fit):
    """There the noise is the fitted observation: zero spread, so no density to score."""
    at_fitted = ou_fit.data.frame.iloc[[3]]
    with pytest.raises(bayescale.SpecError, match=r"new row 0 \(position 0\) has input x = .*a"):
        ou_fit.log_predictive_density(at_fitted.reset_index(drop=True))
    with pytest.raises(bayescale.SpecError, match="kind='mean' works anywhere"):
        ou_fit.predict(at_fitted[["x"]], kind="observed")
    assert np.isfinite(ou_fit.predict(at_fitted[["x"]])["median"]).all()


def test_bad_specifications_are_refused_clearly():
    x = [1e6, 1e7, 1e7, 2e7, 5e7, 1e8, 2e8, 5e8]
    df = pd.DataFrame({"x": x, "loss": np.linspace(3.0, 2.0, 8)})
    with pytest.raises(bayescale.SpecError, match=r"rows 1 and 2 \(positions 1 and 2 in the"):
        bayescale.fit(df, law="power_law", likelihood="ou_normal")
    # labels as the user reads them (they were numpy reprs, np.int64(11)), positions too
    # (two seeds concatenated repeat their labels)
    labelled = df.set_axis(pd.Index(np.arange(10, 18), dtype=np.int64))
    with pytest.raises(bayescale.SpecError, match=r"rows 11 and 12 \(positions 1 and 2 in the"):
        bayescale.fit(labelled, law="power_law", likelihood="ou_normal")
    with pytest.raises(bayescale.SpecError, match="along='D' must name one of"):
        bayescale.fit(df, law="power_law", likelihood={"name": "ou_normal", "along": "D"})


def test_command_line_fits_a_curve_with_correlated_noise(tmp_path, capsys):
    from bayescale.cli import main

    csv, path = tmp_path / "curve.csv", tmp_path / "fit.nc"
    ou_curve().to_csv(csv, index=False)
    args = ["fit", str(csv), "--law", "power_law", "--likelihood", "ou_normal"]
    assert main([*args, "--target-accept", "0.95", "--save", str(path)]) == 0
    assert "ell" in capsys.readouterr().out
    loaded = bayescale.load(path)
    assert loaded.likelihood.name == "ou_normal" and loaded.spec.target_accept == 0.95


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
