"""Pooled parameters sampled around each group's own estimate: the estimates, the model.

And a law's shared terms sampled as their sum and shares.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, case_study
from scipy import stats

import bayescale
from bayescale import pooling as pooling_mod
from bayescale import sweeps
from bayescale.data import prepare
from bayescale.engine import geometry
from bayescale.ops import NUMPY
from bayescale.simulate import from_law
from bayescale.spec import resolve_priors

LAW = bayescale.get_law("power_law")


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
    pool = pooling_mod.resolve(LAW, "corpus", dict.fromkeys(LAW.parameters, "pooled"))
    priors = resolve_priors(LAW, bayescale.get_likelihood("normal"), None, {})
    labels = ["g0", "g1", "g2"]
    estimates = geometry.group_estimates(LAW, priors, fd, LAW.log_reference(fd.frame), labels)
    values, sds = estimates["E"]
    np.testing.assert_allclose(np.exp(values[:2]), [1.5, 1.8], rtol=0.05)  # log scale
    assert sds[2] > 3 * sds[:2].max()  # six points pin the floor far less than eighty
    pooling, own = geometry.resolve_centring(
        LAW, priors, pool, fd, LAW.log_reference(fd.frame), labels
    )
    assert set(pooling.values()) == {"pooled_partial"}
    np.testing.assert_array_equal(own["E"][1], sds)
    again = geometry.resolve_centring(LAW, priors, pool, fd, LAW.log_reference(fd.frame), labels)
    np.testing.assert_array_equal(again[1]["E"][0], own["E"][0])  # seeded: same data, same form


def test_groups_sampled_around_own_estimates_have_the_population_distribution():
    """Any estimates and sds leave the prior as it was: ``mu`` from its prior, ``tau`` from
    its own, ``T(theta_g) ~ Normal(T(mu), tau)``. Checked exactly, by the change of
    variables: the model's log density at what NUTS samples (``eta``, ``log tau``, ``v``)
    is the prior's density of ``(T(mu), log tau, u)`` plus the log Jacobian, ``log r`` for
    ``eta -> T(mu)`` and ``sum log sd_g`` for ``v -> u`` (a triangular map). A missing or
    wrong Jacobian term shifts it by a function of ``tau``: the test fails."""
    import pymc as pm

    prior = LAW.priors["alpha"]  # log-transformed: T(mu) = log(mu), log |d mu / d T| = T
    assert prior.support == "positive"
    tau_prior = pooling_mod.GROUP_SCALE
    y, s = np.array([0.0, 2.0, -1.0]), np.array([1.0, 0.01, 5.0])
    with pm.Model(coords={"g": ["plain", "rich", "thin"]}) as model:
        own = (pm.Data("y", y), pm.Data("s", s))
        pooling_mod.create("alpha", prior, "pooled_partial", "g", {"alpha_tau": tau_prior}, own)
    logp = model.compile_logp()
    rng = np.random.default_rng(0)
    for _ in range(5):
        eta, log_tau, v = rng.normal(), rng.normal(-2.0, 1.5), rng.normal(size=3)
        tau = np.exp(log_tau)
        r = np.sqrt((tau**2 + np.mean(s**2)) / 3)
        loc = np.sum(y / s**2) / np.sum(1 / s**2) + r * eta
        h = np.sqrt(tau**2 + s**2)
        sd = tau * s / h
        u = y + (loc - y) * (s / h) ** 2 + sd * v
        want = (
            prior.scipy().logpdf(np.exp(loc))
            + loc
            + tau_prior.scipy().logpdf(tau)
            + log_tau
            + stats.norm.logpdf(u, loc, tau).sum()
            + np.log(r)
            + np.log(sd).sum()
        )
        point = {"alpha_eta": eta, "alpha_tau_log__": log_tau, "alpha_v": v}
        assert logp(point) == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_a_grouped_fit_records_its_centring(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        fit = bayescale.fit(
            _curves([30, 30, 6]),
            law="power_law",
            group="corpus",
            pooling=dict.fromkeys(LAW.parameters, "pooled"),
            chains=2,
            draws=100,
            tune=100,
        )
    assert set(fit.pooling.values()) == {"pooled_partial"}
    own = fit.posterior["constant_data"]
    sds = own["group_sd_E"]
    assert list(sds["corpus"].to_numpy()) == ["g0", "g1", "g2"]
    assert sds[2] > sds[:2].max()  # six points pin the floor less than thirty
    assert np.all(np.isfinite(own["group_estimate_E"]))
    fit.save(tmp_path / "fit.nc")
    loaded = bayescale.load(tmp_path / "fit.nc")
    np.testing.assert_array_equal(loaded.posterior["constant_data"]["group_sd_E"], sds)


def test_terms_sampled_as_their_sum_and_shares_keep_their_own_priors():
    """NUTS on the joint form with no data draws each term from its prior (4 x 1000 draws).

    With an ESS near 1,000 per term, the median of ``log t`` is known to about 0.04 prior
    sds and its sd to about 2%: tolerances of 0.15 sds and 10% are 4 standard errors.
    """
    import pymc as pm

    law = bayescale.get_law("chinchilla")
    with pm.Model():
        pooling_mod.create_terms(law.terms, law.priors)
        idata = pm.sample(1000, chains=4, random_seed=0, nuts_sampler="numpyro", progressbar=False)
    assert int(idata.sample_stats["diverging"].sum()) == 0
    for name in law.terms:
        mu, sigma = law.priors[name].params["mu"], law.priors[name].params["sigma"]
        logs = np.log(idata.posterior[name].to_numpy().reshape(-1))
        assert abs(np.median(logs) - mu) < 0.15 * sigma, name
        assert np.std(logs) == pytest.approx(sigma, rel=0.1), name


def test_terms_sampled_per_group_at_their_centres_keep_their_own_priors():
    """As above, per group, with each group's terms shifted along its own exponents.

    The shift's Jacobian (``sum(shift)``) is what keeps the exponents' priors: left out,
    the exponents would be tilted by ``exp(-alpha c)``, which with the centres 2-3 used
    here moves the median of ``alpha`` (prior 0.39) by about 0.1, over 0.5 prior sds;
    the tolerances are those of the test above. The three groups pair the floor with
    ``a_ref``, with ``b_ref`` and with neither (``pairing``), so every form's Jacobian is
    checked.
    """
    import pymc as pm

    law = bayescale.get_law("chinchilla")
    centres = {"N": np.array([-3.0, 2.0, 0.5]), "D": np.array([2.5, -2.0, 1.0])}
    with pm.Model(coords={"g": ["a", "b", "c"]}):
        p = {k: law.priors[k].create(k, dims="g") for k in ("alpha", "beta")}
        shifts = {t: p[e] * centres[x] for t, (e, x) in law.term_exponents.items()}
        pooling_mod.create_terms(law.terms, law.priors, "g", shifts, np.array([1, 2, 0]))
        idata = pm.sample(1000, chains=4, random_seed=0, nuts_sampler="numpyro", progressbar=False)
    assert int(idata.sample_stats["diverging"].sum()) == 0
    for name in law.parameters:
        prior = law.priors[name]
        draws = idata.posterior[name].to_numpy().reshape(-1, 3)
        expected = prior.to_unconstrained(NUMPY, prior.scipy().rvs(200_000, random_state=0))
        for g in range(3):
            u = prior.to_unconstrained(NUMPY, draws[:, g])
            sd = np.std(expected)
            assert abs(np.median(u) - np.median(expected)) < 0.15 * sd, (name, g)
            assert np.std(u) == pytest.approx(sd, rel=0.1), (name, g)


def test_a_group_pairs_the_floor_with_the_term_of_an_input_it_holds_nearly_fixed():
    """One model size (1.1x): ``E`` with ``a_ref``; one token count: with ``b_ref``; else none."""
    import pytensor.tensor as pt

    from bayescale.engine.build import _pairing

    codes = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
    z = {
        "N": pt.as_tensor(np.log([1.0, 1.05, 1.1, 1, 3, 9, 1, 1.2, 1.3, 1, 1.45])),
        "D": pt.as_tensor(np.log([1.0, 10, 100, 2, 2, 2, 1, 1.2, 1.1, 1, 4])),
    }
    law = bayescale.get_law("chinchilla")
    pairing = _pairing(law, z, pt.as_tensor(codes), 4).eval()
    np.testing.assert_array_equal(pairing, [1, 2, 2, 1])  # both fixed: the less varied
    assert _pairing(bayescale.get_law("power_law"), {"x": z["N"]}, codes, 4) is None


def test_terms_are_joint_only_where_all_are_shared_or_separate_with_positive_priors():
    law = bayescale.get_law("chinchilla")
    priors = resolve_priors(law, bayescale.get_likelihood("normal"), None, {})
    shared = dict.fromkeys(law.parameters, "shared")
    assert pooling_mod.joint_terms(law, priors, shared) == ("E", "a_ref", "b_ref")
    assert pooling_mod.joint_terms(law, priors, shared | {"E": "pooled_partial"}) == ()
    separate = dict.fromkeys(law.terms, "separate")
    assert pooling_mod.joint_terms(law, priors, shared | separate) == ("E", "a_ref", "b_ref")
    assert pooling_mod.joint_terms(law, priors, shared | separate | {"E": "shared"}) == ()
    bounded = priors | {"E": bayescale.Prior("Uniform", lower=0.5, upper=3.0)}
    assert pooling_mod.joint_terms(law, bounded, shared) == ()
    assert pooling_mod.joint_terms(bayescale.get_law("kaplan"), priors, shared) == ()
    with warnings.catch_warnings():  # 2 x 100 draws: the fit may not pass its checks
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        fit = bayescale.fit(_curves([40]), law="power_law", chains=2, draws=100, tune=100)
    assert list(fit.posterior["posterior"].data_vars) == ["E", "a_ref", "alpha", "sigma", "A"]


def _gemstones_deep():
    df = sweeps.load("gemstones")
    return df[df["group"] == "deep"]


def _misfitting_backtest():  # the runs case_studies/backtests.py fits: best LR, N <= 6e8
    runs, split = case_study("backtests", "misfitting_li2025").misfitting(SHARED_DATA)
    return runs[runs["N"] <= split["N"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sweep", "rows"), [("gemstones", _gemstones_deep), ("misfitting", _misfitting_backtest)]
)
def test_default_fit_without_groups_converges_where_the_terms_form_a_ridge(sweep, rows):
    """Gemstones' deep family alone (five sizes within 2.4x) and the (Mis)Fitting backtest's
    79 runs, default settings: one by one, the terms took 760 and 277 leapfrog steps per
    draw (59% of the deep family's draws at the maximum tree depth), and the backtest's
    fit froze before the laws' logsumexp lost its maximum. Jointly, seeds 0-3: no divergent
    draw, 78-85 and 41-46 steps. A fresh compilation takes another path, so two stray
    divergent draws are allowed, as in tests/test_groups_slow.py."""
    if not sweeps.SWEEPS[sweep].available():
        pytest.skip(f"real data not available: sweep {sweep!r} is missing from ../shared/data")
    fit = bayescale.fit(rows()[["N", "D", "loss"]], law="chinchilla", random_seed=0)
    d = fit.diagnostics
    assert d.divergences <= 2 and d.max_r_hat <= 1.01 and d.min_ess_bulk >= 400, str(d)
    assert d.max_depth_share == 0 and d.mean_steps <= 127, str(d)
