"""Tests of the learning-rate optimum law (issue 21, item 5).

Fast lane: the law against its formula, numpy vs pytensor, the default pooling, and
recovery from a simulated sweep: 6 model sizes x 2 token budgets, 4 rates each placed at a
random offset around the optimum (so most settings do not bracket their own minimum, as in
real sweeps), 0.5% noise; the 90% intervals of the optimum's exponents and of ``lr*`` at a
model 10x larger than any fitted must hold the truth (each misses with probability 0.1 if
calibrated; the seed is fixed). Bad arguments of :func:`optimal_lr`.

Slow lane: the (Mis)Fitting case study's acceptance (skipped without ``../shared/data``).
"""

import numpy as np
import pandas as pd
import pytest
from conftest import case_study

import bayescale
from bayescale.models.lr_optimum import optimal_lr
from bayescale.ops import NUMPY, PYTENSOR
from bayescale.testing import fake_fit

LAW = bayescale.get_law("lr_optimum")
TRUTH = {"lr": 1e-3, "p_N": 0.35, "p_D": 0.1, "kappa": 0.06}
"""``lr* = 1e-3 (N / 1e8)^-0.35 (D / 1e10)^-0.1``, curvature 0.06."""


def true_optimum(n, d):
    return TRUTH["lr"] * (n / 1e8) ** -TRUTH["p_N"] * (d / 1e10) ** -TRUTH["p_D"]


@pytest.fixture(scope="module")
def sweep():
    rng = np.random.default_rng(0)
    rows = []
    for n in np.geomspace(3e7, 1e9, 6):
        for d in (2e9, 2e10):
            l_opt = 2.0 + 300 / n**0.3 + 500 / d**0.3
            star = true_optimum(n, d)
            for lr in star * np.exp(rng.uniform(-1.2, 1.2) + np.array([-1.4, -0.7, 0.0, 0.7])):
                off = np.log(lr / star)
                loss = l_opt * np.exp(TRUTH["kappa"] * off**2 + rng.normal(0, 0.005))
                rows.append({"N": n, "D": d, "lr": lr, "loss": loss, "setting": f"{n:.2g}/{d:.0e}"})
    return pd.DataFrame(rows)


def test_log_mean_is_a_parabola_around_the_power_law_optimum(sweep):
    ref = LAW.log_reference(sweep)
    p = {"L_opt": 3.0, "lr_opt": 0.2, "p_N": 0.35, "p_D": 0.1, "kappa": 0.06}
    n, d, lr = (sweep[k].to_numpy() for k in ("N", "D", "lr"))
    star = np.exp(ref["lr"] + p["lr_opt"]) * (n / np.exp(ref["N"])) ** -p["p_N"]
    star = star * (d / np.exp(ref["D"])) ** -p["p_D"]
    expected = 3.0 * np.exp(0.06 * np.log(lr / star) ** 2)
    np.testing.assert_allclose(LAW.mean(p, sweep, ref), expected, rtol=1e-12)


def test_numpy_and_pytensor_agree(sweep):
    p = {k: float(v[0]) for k, v in LAW.sample_prior(1, random_seed=2).items()}
    z = LAW.z(sweep, LAW.log_reference(sweep))
    np.testing.assert_allclose(
        LAW.log_mean(PYTENSOR, p, z).eval(), LAW.log_mean(NUMPY, p, z), rtol=1e-12
    )


def test_each_setting_has_its_own_loss_and_shares_the_optimum():
    assert bayescale.pooling.resolve(LAW, "setting", None) == {
        "L_opt": "separate",
        "lr_opt": "shared",
        "p_N": "shared",
        "p_D": "shared",
        "kappa": "shared",
    }


def test_recovers_the_optimum_law_and_transfers_it_tenfold(sweep):
    fit = bayescale.fit(sweep, law="lr_optimum", group="setting", random_seed=3)
    assert fit.diagnostics.ok, fit.diagnostics
    summary = fit.summary(ci=0.9)
    for name in ("p_N", "p_D", "kappa"):
        assert summary.loc[name, "lower"] <= TRUTH[name] <= summary.loc[name, "upper"], name
    table = optimal_lr(fit, [1e8, 1e10], [1e10, 1e11])
    assert table.attrs["converged"] is True
    truth = true_optimum(table["N"], table["D"])
    assert ((table["lr_lower"] <= truth) & (truth <= table["lr_upper"])).all(), table
    top = (sweep["N"] * sweep["D"]).max()
    np.testing.assert_allclose(table["reach"], [1.0, 1e21 / top])  # inside, then beyond


def test_optimal_lr_names_bad_arguments(sweep):
    other = fake_fit(
        sweep,
        "chinchilla",
        {k: np.full(20, 0.5) for k in ("E", "a_ref", "b_ref", "alpha", "beta", "sigma")},
    )
    with pytest.raises(bayescale.SpecError, match="needs a fit of law 'lr_optimum'"):
        optimal_lr(other, 1e9, 1e10)
    draws = {
        "L_opt": np.full((20, 12), 3.0),
        "lr_opt": np.zeros(20),
        "p_N_mu": np.full(20, 0.3),
        "p_N_tau": np.full(20, 0.1),
        "p_N": np.full((20, 12), 0.3),
        "p_D": np.zeros(20),
        "kappa": np.full(20, 0.05),
        "sigma": np.full(20, 0.01),
    }
    pooled = fake_fit(sweep, LAW, draws, group="setting", pooling={"p_N": "pooled_noncentred"})
    with pytest.raises(bayescale.SpecError, match=r"varies \['p_N'\] by group"):
        optimal_lr(pooled, 1e9, 1e10)
    draws = {
        k: np.full(20, v)
        for k, v in {"lr_opt": 0.0, "p_N": 0.3, "p_D": 0.0, "kappa": 0.05, "sigma": 0.01}.items()
    }
    good = fake_fit(sweep, LAW, draws | {"L_opt": np.full((20, 12), 3.0)}, group="setting")
    for n, d in ((-1.0, 1e10), (1e9, np.nan)):
        with pytest.raises(bayescale.SpecError, match="N and D must be positive and finite"):
            optimal_lr(good, n, d)
    with pytest.raises(bayescale.SpecError, match="ci"):
        optimal_lr(good, 1e9, 1e10, ci=1.5)
    # constant draws fail the checks: the answer says so, as every decision does
    with pytest.warns(bayescale.ConvergenceWarning, match="optimal learning rate"):
        assert optimal_lr(good, 1e9, 1e10).attrs["converged"] is False


@pytest.mark.slow
def test_lr_case_study_acceptance():
    study = case_study("lr_optimum_transfer", "misfitting_li2025")
    fit, table, ok = study.run()
    assert ok and len(table) == 2
    assert fit.summary().loc["p_N", "median"] > 0  # larger models want smaller rates
