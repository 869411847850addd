"""Partial centring of pooled parameters: the weights, the estimates behind them, the model."""

import numpy as np
import pandas as pd
from scipy import stats

import bayescale
from bayescale import pooling as pooling_mod
from bayescale.data import prepare
from bayescale.engine import geometry
from bayescale.simulate import from_law
from bayescale.spec import resolve_priors

LAW = bayescale.get_law("power_law")


def test_weights_are_the_share_of_precision_from_the_group_data():
    values = np.array([0.0, 1.0, 2.0, 3.0])
    sds = np.array([0.1, 0.5, 1.0, 2.0])
    tau2 = np.var(values, ddof=1) - np.mean(sds**2)
    expected = tau2 / (tau2 + sds**2)
    np.testing.assert_allclose(geometry.centring_weights(values, sds), expected)
    assert np.all(np.diff(geometry.centring_weights(values, sds)) < 0)  # noisier: less centred
    # groups that differ no more than their own noise: no spread to centre on
    assert np.all(geometry.centring_weights(np.array([0.0, 0.01, 0.02]), np.ones(3)) == 0)
    assert np.all(geometry.centring_weights(np.array([1.0]), np.array([0.1])) == 0)


def _curves(points):
    """Power-law curves with their own floors, ``points[g]`` rows each, 1% noise."""
    rng = np.random.default_rng(0)
    frames = []
    for g, n in enumerate(points):
        x = np.exp(rng.uniform(np.log(1e6), np.log(1e10), n))
        truth = {"E": 1.5 + 0.3 * g, "a_ref": 0.6, "alpha": 0.3}
        frames.append(from_law(LAW, truth, {"x": x}, random_seed=g).assign(corpus=f"g{g}"))
    return pd.concat(frames, ignore_index=True)[["x", "loss", "corpus"]]


def test_group_estimates_know_rich_groups_from_thin_ones():
    fd = prepare(_curves([80, 80, 6]), LAW, "loss", group="corpus")
    pool = pooling_mod.resolve(LAW, "corpus", None)
    priors = resolve_priors(LAW, bayescale.get_likelihood("normal"), None, {})
    labels = ["g0", "g1", "g2"]
    estimates = geometry.group_estimates(LAW, priors, fd, LAW.log_reference(fd.frame), labels)
    values, sds = estimates["E"]
    np.testing.assert_allclose(np.exp(values[:2]), [1.5, 1.8], rtol=0.05)  # log scale
    assert sds[2] > 3 * sds[:2].max()  # six points pin the floor far less than eighty
    _, weights = geometry.resolve_centring(
        LAW, priors, pool, fd, LAW.log_reference(fd.frame), labels
    )
    assert weights["E"][2] < weights["E"][:2].min()
    again = geometry.resolve_centring(LAW, priors, pool, fd, LAW.log_reference(fd.frame), labels)
    np.testing.assert_array_equal(again[1]["E"], weights["E"])  # seeded: same data, same form


def test_partially_centred_groups_have_the_population_distribution():
    """Any weight gives T(theta_g) ~ Normal(T(mu), tau): compare prior draws across weights."""
    import pymc as pm

    prior = LAW.priors["alpha"]
    priors = {"alpha_tau": pooling_mod.GROUP_SCALE}
    with pm.Model(coords={"g": ["w0", "w_half", "w1"]}):
        weight = pm.Data("weight", np.array([0.0, 0.5, 1.0]))
        pooling_mod.create("alpha", prior, "pooled_partial", "g", priors, weight)
        draws = pm.sample_prior_predictive(draws=4000, random_seed=1).prior["alpha"]
    values = draws.to_numpy().reshape(-1, 3)
    for j in (1, 2):
        assert stats.ks_2samp(values[:, 0], values[:, j]).pvalue > 0.001


def test_a_grouped_fit_records_its_centring(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        fit = bayescale.fit(
            _curves([30, 30, 6]), law="power_law", group="corpus", chains=2, draws=100, tune=100
        )
    assert set(fit.pooling.values()) == {"pooled_partial"}
    weights = fit.posterior["constant_data"]["centring_E"]
    assert list(weights["corpus"].to_numpy()) == ["g0", "g1", "g2"]
    assert np.all((weights >= 0) & (weights <= 1))
    fit.save(tmp_path / "fit.nc")
    loaded = bayescale.load(tmp_path / "fit.nc")
    np.testing.assert_array_equal(loaded.posterior["constant_data"]["centring_E"], weights)
