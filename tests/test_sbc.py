"""Simulation-based calibration (SBC) of every law, and fast tests of the SBC machinery.

SBC (Talts et al. 2018, arXiv:1804.06788) checks the whole pipeline at once: for each law,
``N_SIMS`` parameter sets are drawn from the default priors, data are simulated from the
law and the likelihood on a fixed, realistic design (the one the law's own tests use), and
each data set is fitted with ``bayescale.fit`` under the same priors. If the numpy law that
simulates agrees with the PyTensor law that is fitted, the PyMC priors and likelihood with
their scipy/numpy twins, the reference scales and the constraining transforms are right,
and NUTS explores the posterior, then the rank of each true value among ``L = 59`` thinned
posterior draws is uniform on ``0..59`` (see :mod:`bayescale.evaluation.sbc`; the rank of the data's
log-likelihood is checked as well).

Test. Ranks are pooled into 5 equal bins and tested with Pearson's chi-square, its p-value
computed exactly (20 ranks in 5 bins is too few for the chi-square approximation). Each
law passes if every quantity has p > 0.001 / k (Bonferroni over its k quantities), so a
correct law fails with probability <= 0.001 and the thirteen designs together <= 1.3%. Everything is
seeded, so a run is reproducible.

Power (exact, :func:`bayescale.evaluation.sbc.rank_test_power`, checked in
``test_docstring_power_claims``). With 20 simulations and k = 9, a posterior systematically
off by 1.5 posterior sds is caught with probability 0.92 and by 2 sds with 0.999; one off
by 1 sd only with 0.33, and a posterior 5x too narrow with 0.31. So this lane catches gross
errors (a prior or likelihood parameterised differently in PyMC and numpy, a wrong
transform, a sign error, a sampler stuck in one mode), not subtle miscalibration: that
would take hundreds of simulations (minutes per law).

Settings and cost: 2 chains x 300 draws after 400 tuning steps, thinned to 59 draws (every
~10th). Most fits have a bulk ESS of a few hundred of the 600 draws, so the thinned draws
are nearly independent; the worst (ESS 3-100: broken_power_law and power_law fits stuck
on a ridge) are correlated, which is kept, like any failed fit, and can only make ranks
less uniform. Most fits fail the engine's own ESS check (100 per chain) at these short
settings; that is expected and counted, not acted on. Measured on the shared 2-core
development machine (load 2-4, warm JAX compilation cache): 17-49 s per law, 5.8 min for
the file; each test prints its report (``pytest -m slow -s tests/test_sbc.py``).

Failures are never dropped: simulations whose fits diverged or failed the convergence
checks are ranked like the others and counted in the report. A simulated data set that the
engine rejects is an error of the test (it means the default priors generate data the
engine cannot fit), reported rather than filtered.

Scope. For ``loss_to_loss`` the data are simulated from the model as fitted (input noise
entering as the effective variance), so SBC checks the implementation, not the accuracy
of the errors-in-variables approximation. ``downstream`` is checked as used on 4-way
benchmarks: ``floor=0.25`` with the beta likelihood. The ``ou_normal`` likelihood (noise
correlated along a curve) is checked with ``power_law`` on one 30-point curve: its data
are simulated checkpoint by checkpoint, and its ``log_lik`` rank is that of the summed
leave-one-out conditionals the fit stores. Run with 100 simulations instead of 20 (outside
the lane, seed 2024), every p-value of this design was above 0.16; the plain power law
with normal noise, on the same design, had p = 0.009 for ``E`` and 0.004 for ``a_ref``
(ranks tilted by the fits stuck on the ridge noted above, 26 of 100 with divergences).
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayescale
from bayescale.evaluation.sbc import (
    LOG_LIK,
    binned,
    rank_pvalue,
    rank_test_power,
    ranks_of,
    sbc,
    simulate,
)
from bayescale.likelihoods import get_likelihood

N_SIMS = 20
N_RANKS = 59  # 60 possible ranks: 5 bins of 12
BINS = 5
FAMILY_LEVEL = 0.001
SETTINGS = {"chains": 2, "draws": 300, "tune": 400}


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _chinchilla_design():
    """40 runs, N and D log-uniform over Chinchilla's range (as ``tests/test_laws.py``)."""
    rng = np.random.default_rng(11)
    return {"N": _log_uniform(rng, 7e7, 1.6e10, 40), "D": _log_uniform(rng, 5e9, 5e11, 40)}


def _data_constrained_design():
    """As ``tests/test_law_data_constrained.py``: U log-uniform from 1e8 to D (1-9000 epochs)."""
    rng = np.random.default_rng(12)
    n, d = _log_uniform(rng, 7e6, 9e9, 40), _log_uniform(rng, 1e8, 9e11, 40)
    return {"N": n, "D": d, "U": np.exp(rng.uniform(np.log(1e8), np.log(d)))}


def _isoflop_design():
    """6 isoFLOP budgets, 1e18 to 1e21, 7 model sizes each across two decades."""
    c = np.repeat(np.geomspace(1e18, 1e21, 6), 7)
    n = 0.08 * np.sqrt(c / 6) * np.exp(np.tile(np.linspace(-2.3, 2.3, 7), 6))
    return {"N": n, "D": c / (6 * n)}


def _lr_optimum_design():
    """6 settings (3 model sizes x 2 token budgets), 5 learning rates each across 3 e-folds."""
    n, d = np.meshgrid(np.geomspace(5e7, 1e9, 3), (2e9, 2e10))
    lr = np.geomspace(2.5e-4, 5e-3, 5)
    return {
        "lr": np.tile(lr, 6),
        "N": np.repeat(n.ravel(), 5),
        "D": np.repeat(d.ravel(), 5),
    }


def _lr_annealing_design():
    """20 evaluations each of a constant and a cosine-to-10% run (the law's docstring design)."""
    from bayescale.models.lr_annealing import annealing_areas, lr_schedule

    steps = np.linspace(1000, 20000, 20).astype(int)
    runs = [lr_schedule(kind, 20_000, 500, 3e-4) for kind in ("constant", "cosine")]
    areas = pd.concat([annealing_areas(lr, steps, warmup=500) for lr in runs])
    return {"S1": areas["S1"].to_numpy(), "S2": areas["S2"].to_numpy()}


# law name -> (options, likelihood, inputs builder). Designs follow each law's own tests.
DESIGNS = {
    "broken_power_law": ({}, "normal", lambda: {"x": np.geomspace(1e3, 1e5, 40)}),
    "chinchilla": ({}, "normal", _chinchilla_design),
    "data_constrained": ({}, "normal", _data_constrained_design),
    "downstream": ({"floor": 0.25}, "beta", lambda: {"L": np.geomspace(1.3, 5.0, 30)}),
    "exponential": ({}, "normal", lambda: {"x": np.geomspace(1e7, 1e10, 30)}),
    "isoflop": ({}, "normal", _isoflop_design),
    "kaplan": ({}, "normal", _chinchilla_design),
    "loss_to_loss": ({}, "normal", lambda: {"Lx": np.geomspace(2.4, 4.5, 30)}),
    "lr_annealing": ({}, "normal", _lr_annealing_design),
    "lr_optimum": ({}, "normal", _lr_optimum_design),
    "power_law": ({}, "normal", lambda: {"x": np.geomspace(1e7, 1e10, 30)}),
    "pure_power_law": ({}, "normal", lambda: {"x": np.geomspace(1e18, 1e22, 12)}),
    # noise correlated along the curve: 30 checkpoints 0.24 apart in log x, so neighbours'
    # noise correlates by 0.3 at the prior median ell (0.2) and by 0.76 at its 97.5% (0.87);
    # fitted at target_accept 0.95, as the likelihood's docstring advises
    "power_law, ou_normal": ({}, "ou_normal", lambda: {"x": np.geomspace(1e7, 1e10, 30)}),
}
TARGET_ACCEPT = {"power_law, ou_normal": 0.95}


def design(name):
    """Law, inputs and likelihood of a design (keyed by law name, then any likelihood)."""
    law = name.split(",")[0]
    if law not in bayescale.laws():
        pytest.skip(f"law {law!r} is not registered (its module in models/ is missing)")
    options, likelihood, inputs = DESIGNS[name]
    return bayescale.get_law(law, **options), inputs(), likelihood


# ---------------------------------------------------------------- fast: the machinery


def test_every_registered_law_has_an_sbc_design():
    missing = set(bayescale.laws()) - {name.split(",")[0] for name in DESIGNS}
    assert not missing, f"add an SBC design to tests/test_sbc.py for {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_prior_simulations_are_data_the_engine_accepts(name):
    """100 prior simulations per law pass the engine's validation (finite, in support)."""
    from bayescale.data import prepare
    from bayescale.spec import resolve_priors

    law, inputs, likelihood = design(name)
    lik = get_likelihood(likelihood)
    priors = resolve_priors(law, lik, None, {})  # no groups, so no group scales
    rng = np.random.default_rng(0)
    for _ in range(100):
        _, frame, log_lik = simulate(law, lik, inputs, priors, rng)
        prepare(frame, law, "y", y_support=lik.support)  # raises DataError naming the rows
        assert np.isfinite(log_lik)


def _conjugate_ranks(n_sims, shift, rng):
    """Ranks from the exact posterior of theta ~ N(0, 1), y_i ~ N(theta, 1), i = 1..4.

    The posterior is N(sum(y) / 5, 1 / 5); ``shift`` moves the "fitted" posterior by that
    many posterior sds, the way a bug would.
    """
    theta = rng.normal(0, 1, n_sims)
    y = rng.normal(theta[:, None], 1, (n_sims, 4))
    mean, sd = y.sum(axis=1) / 5, np.sqrt(1 / 5)
    draws = rng.normal(mean[:, None, None] + shift * sd, sd, (n_sims, 2, 300))
    return np.array([ranks_of(t, d, N_RANKS) for t, d in zip(theta, draws, strict=True)])


def test_ranks_of_an_exact_posterior_are_uniform_and_of_a_biased_one_are_not():
    rng = np.random.default_rng(1)
    good = _conjugate_ranks(400, 0.0, rng)
    assert good.min() >= 0 and good.max() <= N_RANKS
    assert rank_pvalue(good, N_RANKS, BINS) > 0.01
    # the lane's size: a 2-sd bias is caught at the per-quantity level of the slow tests
    bad = _conjugate_ranks(N_SIMS, 2.0, rng)
    assert rank_pvalue(bad, N_RANKS, BINS) < FAMILY_LEVEL / 9


def test_exact_pvalue_matches_the_binomial_test_and_the_asymptotic_one():
    ranks = np.array([0] * 3 + [N_RANKS] * 7)  # 2 bins: the exact test is a binomial test
    assert rank_pvalue(ranks, N_RANKS, bins=2) == pytest.approx(stats.binomtest(3, 10).pvalue)
    many = np.random.default_rng(2).integers(0, N_RANKS + 1, 400)  # too many to enumerate
    counts = np.bincount(binned(many, N_RANKS, BINS), minlength=BINS)
    assert rank_pvalue(many, N_RANKS, BINS) == stats.chisquare(counts).pvalue
    # near the boundary the enumeration and the approximation roughly agree
    mid = np.random.default_rng(3).integers(0, N_RANKS + 1, 60)
    counts = np.bincount(binned(mid, N_RANKS, BINS), minlength=BINS)
    assert rank_pvalue(mid, N_RANKS, BINS) == pytest.approx(
        stats.chisquare(counts).pvalue, abs=0.03
    )


def test_docstring_power_claims():
    edges = np.linspace(0, 1, BINS + 1)

    def power(shift=0.0, narrow=1.0):
        # fitted posterior off by `shift` sds and `narrow` times too narrow: u = Phi(narrow (Z - shift))
        probs = np.diff(stats.norm.cdf(stats.norm.ppf(edges) / narrow + shift))
        return rank_test_power(N_SIMS, BINS, FAMILY_LEVEL / 9, probs)

    assert power() <= FAMILY_LEVEL / 9  # the exact test keeps its level
    assert power(shift=1.5) == pytest.approx(0.92, abs=0.005)
    assert power(shift=2.0) == pytest.approx(0.999, abs=0.0005)
    assert power(shift=1.0) == pytest.approx(0.33, abs=0.005)
    assert power(narrow=5.0) == pytest.approx(0.31, abs=0.005)


def test_simulated_log_likelihood_includes_input_noise():
    law = bayescale.get_law("loss_to_loss")
    lik = get_likelihood("normal")
    lx = np.geomspace(2.4, 4.5, 30)
    truth, frame, log_lik = simulate(
        law, lik, {"Lx": lx}, {**law.priors, **lik.priors}, np.random.default_rng(0)
    )
    z = law.z(frame, law.log_reference(frame))
    from bayescale.ops import NUMPY

    sd = np.hypot(truth["sigma"], law.input_log_sd(NUMPY, truth, z))
    mu = law.log_mean(NUMPY, truth, z)
    assert log_lik == pytest.approx(stats.norm.logpdf(np.log(frame["y"]), mu, sd).sum())


def test_simulations_that_all_fail_are_an_error_not_a_pass():
    """3 rows are too few for a 4-parameter model: the engine rejects before any sampling.

    With no rank at all, the rank tests' p-values would be 1: a pass that tested nothing.
    """
    with pytest.raises(bayescale.DataError, match="all 2 simulations failed.*too few"):
        sbc("power_law", {"x": [1e7, 1e8, 1e9]}, n_sims=2)
    for name in ("n_sims", "n_ranks"):
        with pytest.raises(bayescale.SpecError, match=f"{name} must be an integer >= 1, got 0"):
            sbc("power_law", {"x": [1e7, 1e8, 1e9]}, **{name: 0})
    # a design without one of the law's inputs, or with a bad value, is named (KeyError before)
    with pytest.raises(bayescale.DataError, match=r"missing column\(s\) \['D'\]"):
        sbc("chinchilla", {"N": [1e7, 1e8, 1e9]}, n_sims=2)
    with pytest.raises(bayescale.DataError, match=r"input x.*1 row \(1\)"):
        sbc("power_law", {"x": [1e7, -1.0, 1e9]}, n_sims=2)


def test_bad_settings_are_clear_errors():
    with pytest.raises(bayescale.SpecError, match="bins=7 must divide the 60 possible ranks"):
        rank_pvalue([0, 1], N_RANKS, bins=7)
    with pytest.raises(bayescale.SpecError, match="n_ranks=99 exceeds the 40"):
        ranks_of(0.0, np.zeros((2, 20)), 99)


# ---------------------------------------------------------------- slow: SBC of every law


@pytest.fixture
def fresh_jax_caches():
    """Drop JAX's traces after each law's 20 fits.

    Every ``bayescale.fit`` with numpyro re-traces numpyro's pmapped sampler, and JAX keeps
    each trace: the process grew by ~33 MB per fit (3.2 GB after 80 fits), and stayed at
    ~790 MB with ``jax.clear_caches()`` after every 10 fits. Without clearing, the file took 23 min instead of 5.8 (that
    run also shared the machine with heavier load, so not all of the difference is this).
    """
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_jax_caches")
@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_sbc_ranks_are_uniform(name):
    law, inputs, likelihood = design(name)
    result = sbc(
        law,
        inputs,
        likelihood=likelihood,
        n_sims=N_SIMS,
        n_ranks=N_RANKS,
        random_seed=2024,
        target_accept=TARGET_ACCEPT.get(name, 0.8),
        **SETTINGS,
    )
    report = result.report(BINS)
    print(report)
    assert not result.errors, f"simulations the engine could not fit:\n{report}"
    assert LOG_LIK in result.ranks
    level = FAMILY_LEVEL / result.ranks.shape[1]
    failed = result.pvalues(BINS).loc[lambda p: p <= level]
    assert failed.empty, f"ranks not uniform (level {level:.1e}): {dict(failed)}\n{report}"
