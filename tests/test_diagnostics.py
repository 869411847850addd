"""Tree depth in the convergence checks: each sampler's statistics, and the failed check.

The fast tests read the shared numpyro fit and posteriors built by hand; one tiny fit
each with nutpie and with PyMC's NUTS (2 chains x 100 draws) checks that their own
statistic names are read.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayescale
from bayescale import arviz_adapter
from bayescale.diagnostics import MAX_DEPTH_FLAGS, check, warn_if_bad
from bayescale.engine.jax_nuts import MAX_TREE_DEPTH, tree_depth_stats
from bayescale.errors import ConvergenceWarning
from bayescale.evaluation.sbc import SBCResult, sbc


def hand_posterior(seed=0, chains=4, draws=500, attrs=None, **stats):
    """Independent normal draws of one parameter, with the given sample statistics.

    Independent draws pass every other check (r-hat ~1, ESS ~ chains x draws; no energy,
    so no E-BFMI), so any failure comes from the statistics given.
    """
    rng = np.random.default_rng(seed)
    posterior = xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(chains, draws)))})
    sample_stats = xr.Dataset(
        {k: (("chain", "draw"), np.asarray(v)) for k, v in stats.items()}, attrs=attrs or {}
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})


def check_hand(tree):
    return check(tree, arviz_adapter.summary(tree, ["mu"], 0.9))


def test_numpyro_tree_depth_follows_numpyro_doubling():
    """Depth d took 2**(d-1)..2**d - 1 steps; only a full, non-divergent tree hit the maximum."""
    n_steps = np.array([1, 2, 3, 4, 511, 512, 1022, 1023, 1023])
    diverging = np.array([False] * 8 + [True])
    out = tree_depth_stats(n_steps, diverging, 10)
    assert out["tree_depth"].tolist() == [1, 2, 2, 3, 9, 10, 10, 10, 10]
    assert out["reached_max_treedepth"].tolist() == [False] * 7 + [True, False]
    assert tree_depth_stats([7, 8], [False, False], 3)["reached_max_treedepth"].tolist() == [
        True,
        False,
    ]


def test_numpyro_takes_2_to_the_depth_minus_1_steps_only_on_a_full_tree():
    """The assumption behind ``tree_depth_stats``, checked on numpyro's own NUTS.

    A Gaussian 1000 times wider in one direction than the step size: most trajectories
    reach the maximum depth (3 here) without turning. Those take exactly 7 steps; a
    trajectory that turned inside its third doubling took 4-6 and did not hit the maximum.
    """
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    scales = jnp.array([1.0, 1000.0])
    kernel = NUTS(
        potential_fn=lambda z: 0.5 * jnp.sum((z / scales) ** 2),
        max_tree_depth=3,
        adapt_step_size=False,
        adapt_mass_matrix=False,
        step_size=0.5,
    )
    mcmc = MCMC(kernel, num_warmup=0, num_samples=300, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), init_params=jnp.zeros(2), extra_fields=("num_steps",))
    n_steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    assert n_steps.max() == 7 and (n_steps == 7).mean() > 0.5
    out = tree_depth_stats(n_steps, np.zeros(n_steps.shape, bool), 3)
    assert out["tree_depth"].max() == 3
    partial = (out["tree_depth"] == 3) & (n_steps < 7)
    assert partial.any() and not out["reached_max_treedepth"][partial].any()
    assert (out["reached_max_treedepth"] == (n_steps == 7)).all()


def test_short_fit_never_hits_the_tree_depth(short_fit):
    d = short_fit.diagnostics
    assert d.max_depth_share == 0.0
    assert np.isfinite(d.mean_steps) and 1 < d.mean_steps < 2**MAX_TREE_DEPTH - 1
    stats = short_fit.posterior["sample_stats"]
    assert stats.attrs["max_tree_depth"] == MAX_TREE_DEPTH == 10
    n_steps = np.asarray(stats["n_steps"])
    assert np.asarray(stats["tree_depth"]).max() < MAX_TREE_DEPTH
    assert not np.asarray(stats["reached_max_treedepth"]).any()
    assert d.mean_steps == pytest.approx(n_steps.mean())
    assert "0 of 4000 draws at max tree depth" in str(d).splitlines()[0]
    assert f"{d.mean_steps:.0f} leapfrog steps per draw" in str(d).splitlines()[0]


def test_the_saved_fit_keeps_the_tree_depth(short_fit, tmp_path):
    short_fit.save(tmp_path / "fit.nc")
    loaded = bayescale.load(tmp_path / "fit.nc")
    assert loaded.posterior["sample_stats"].attrs["max_tree_depth"] == MAX_TREE_DEPTH
    assert loaded.diagnostics.max_depth_share == 0.0
    assert loaded.diagnostics.mean_steps == pytest.approx(short_fit.diagnostics.mean_steps)


@pytest.mark.parametrize("flag", MAX_DEPTH_FLAGS)
def test_draws_at_the_maximum_tree_depth_fail_the_check(flag):
    hit = np.zeros((4, 500), bool)
    hit[1, :30] = hit[3, 100:110] = True
    n_steps = np.where(hit, 1023, 15)
    tree = hand_posterior(
        diverging=np.zeros_like(hit), n_steps=n_steps, attrs={"max_tree_depth": 10}, **{flag: hit}
    )
    d = check_hand(tree)
    assert not d.ok
    assert d.max_depth_share == pytest.approx(40 / 2000)
    assert d.mean_steps == pytest.approx(n_steps.mean())
    assert d.max_r_hat < 1.01 and d.divergences == 0  # the tree depth alone fails it
    [message] = d.messages
    assert message.startswith("40 of 2000 draws (2.0%) hit the maximum tree depth (10), 35 ")
    assert "more than 1%" in message
    assert "reparameterise" in message and "only hides it" in message
    assert "40 of 2000 draws at max tree depth" in str(d).splitlines()[0]
    with pytest.warns(ConvergenceWarning, match="maximum tree depth"):
        warn_if_bad(d, "test fit")


def test_a_few_draws_at_the_maximum_are_counted_and_over_one_percent_fail():
    hit = np.zeros((4, 500), bool)
    assert check_hand(hand_posterior(diverging=hit, reached_max_treedepth=hit)).ok
    hit[2, :20] = True  # exactly 1%: shown on the first line, not a failed check
    d = check_hand(hand_posterior(diverging=np.zeros_like(hit), reached_max_treedepth=hit))
    assert d.ok and d.max_depth_share == pytest.approx(20 / 2000)
    assert "20 of 2000 draws at max tree depth" in str(d).splitlines()[0]
    hit[2, 20] = True
    d = check_hand(hand_posterior(diverging=np.zeros_like(hit), reached_max_treedepth=hit))
    assert not d.ok
    # neither the maximum nor the steps recorded: the message says only what is known
    assert d.messages[0].startswith("21 of 2000 draws (1.1%) hit the maximum tree depth, more")


def test_a_posterior_without_tree_statistics_passes_with_nan():
    """Fake posteriors (bayescale.testing, older saved fits) record only ``diverging``."""
    d = check_hand(hand_posterior(diverging=np.zeros((4, 500), bool)))
    assert d.ok and np.isnan(d.max_depth_share) and np.isnan(d.mean_steps)
    assert "max tree depth not recorded (? leapfrog steps per draw)" in str(d)
    steps_only = check_hand(
        hand_posterior(diverging=np.zeros((4, 500), bool), n_steps=np.full((4, 500), 7))
    )
    assert steps_only.ok and np.isnan(steps_only.max_depth_share)
    assert steps_only.mean_steps == 7.0


def test_sbc_records_the_tree_depth_share():
    result = sbc(
        "pure_power_law",
        {"x": np.geomspace(1e18, 1e22, 12)},
        n_sims=1,
        n_ranks=19,
        chains=2,
        draws=100,
        tune=100,
    )
    assert not result.errors
    assert list(result.diagnostics.columns) == [
        "divergences",
        "max_r_hat",
        "min_ess_bulk",
        "max_depth_share",
        "converged",
        "seconds",
    ]
    share = result.diagnostics["max_depth_share"].iloc[0]
    assert 0.0 <= share <= 1.0  # recorded (a missing key would leave NaN)
    diagnostics = pd.DataFrame(
        {
            "divergences": [0, 0, 3],
            "max_r_hat": [1.0, 1.0, 1.02],
            "min_ess_bulk": [500.0, 400.0, 90.0],
            "max_depth_share": [0.0, 0.25, 1.0],
            "converged": [True, False, False],
            "seconds": [1.0, 1.0, 1.0],
        }
    )
    ranks = pd.DataFrame({"a": [3, 10, 17]})
    report = SBCResult("toy", 19, ranks, diagnostics).report()
    assert "2 sims hitting the maximum tree depth, on up to 100.0% of draws" in report


def _tiny_fit(sim_sweep, sampler):
    with warnings.catch_warnings():  # 2 x 100 draws: ESS checks may fail; not tested here
        warnings.simplefilter("ignore", ConvergenceWarning)
        return bayescale.fit(
            sim_sweep[["N", "D", "loss"]],
            law="chinchilla",
            y="loss",
            sampler=sampler,
            chains=2,
            draws=100,
            tune=100,
            random_seed=1,
        )


@pytest.mark.parametrize(
    ("sampler", "flag", "depth"),
    [("nutpie", "maxdepth_reached", "depth"), ("pymc", "reached_max_treedepth", "tree_depth")],
)
def test_nutpie_and_pymc_tree_statistics_are_read(sim_sweep, sampler, flag, depth, tmp_path):
    """Measured names: nutpie 0.16 ``depth, maxdepth_reached``; PyMC 6.4 ``tree_depth,
    reached_max_treedepth``; both ``n_steps``. The maximum (10) is read from each sampler.
    The fit comes back from its file with them (nutpie's fits failed their checksum)."""
    fit = _tiny_fit(sim_sweep, sampler)
    fit.save(tmp_path / "fit.nc")
    assert str(bayescale.load(tmp_path / "fit.nc").diagnostics) == str(fit.diagnostics)
    stats = fit.posterior["sample_stats"]
    assert {flag, depth, "n_steps"} <= set(stats.data_vars)
    assert stats.attrs["max_tree_depth"] == 10
    if sampler == "nutpie":
        settings = json.loads(stats.attrs["inference_library_settings"])
        assert settings["settings"]["maxdepth"] == 10
    d = fit.diagnostics
    assert d.max_depth_share == pytest.approx(np.asarray(stats[flag]).mean())
    assert d.mean_steps == pytest.approx(np.asarray(stats["n_steps"], float).mean())
    assert d.mean_steps > 1
    assert np.asarray(stats[depth]).max() <= 10
