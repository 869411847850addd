"""Slow lane for groups: shrinkage, LOO between poolings, and the grouped case studies.

Simulated design: 6 groups of 10 runs (x from 1e7 to 1e10, 2% noise), the situation
partial pooling is for: each group alone pins its exponent only to about +-0.08.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import case_study

import bayescale
from bayescale import sweeps
from bayescale.simulate import from_law

# case studies report each fit's convergence in their own tables and checks, and
# answer from the fits that fail them too: those answers' warnings are not the subject
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")]


def thin_groups(alphas, runs=10, noise=0.02, seed=0):
    law = bayescale.get_law("power_law")
    rng = np.random.default_rng(seed)
    frames = []
    for i, alpha in enumerate(alphas):
        x = np.exp(rng.uniform(np.log(1e7), np.log(1e10), runs))
        truth = {"E": 1.6 + 0.1 * i, "a_ref": 0.6, "alpha": alpha}
        df = from_law(law, truth, {"x": x}, noise=noise, random_seed=100 * seed + i)
        frames.append(df.assign(corpus=f"g{i}"))
    return pd.concat(frames, ignore_index=True)[["x", "loss", "corpus"]]


def fit_groups(df, pooling):
    """Fit at target_accept 0.95, allowing one divergent draw of the 4,000.

    With every parameter pooled (the default until 2026-12-07), the fit of the
    common-exponent design left stray divergences: 1-3 per 4,000 draws on each of seeds
    0-3 at 0.8 on one host (none on another; of seed 0's two, one lies at ``E_tau`` 0.40,
    past its 99th percentile), 1 on seed 0 and none on seeds 1-5 at 0.95. The default now
    (``E`` and ``a_ref`` separate) gave none at seeds 0-1 at 0.8. One stray draw does not
    move the medians and widths this file tests; r-hat and ESS are still held to the
    package's checks.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        fit = bayescale.fit(
            df, law="power_law", group="corpus", pooling=pooling, random_seed=0, target_accept=0.95
        )
    d = fit.diagnostics
    assert d.divergences <= 1 and d.max_r_hat <= 1.01 and d.min_ess_bulk >= 400, str(d)
    return fit


def group_medians_and_widths(fit, labels):
    table = fit.summary(ci=0.9).loc[[f"alpha[{g}]" for g in labels]]
    return table["median"].to_numpy(), (table["upper"] - table["lower"]).to_numpy()


def test_pooling_recovers_a_common_exponent_and_shrinks_toward_it():
    df = thin_groups([0.3] * 6)
    labels = sorted(df["corpus"].unique())
    pooled = fit_groups(df, None)
    separate = fit_groups(df, dict.fromkeys(["E", "a_ref", "alpha"], "separate"))
    table = pooled.summary(ci=0.9)
    assert table.loc["alpha_mu", "lower"] <= 0.3 <= table.loc["alpha_mu", "upper"]
    med_p, width_p = group_medians_and_widths(pooled, labels)
    med_s, width_s = group_medians_and_widths(separate, labels)
    # Shrinkage: group estimates cluster around the common value and are sharper.
    assert np.std(med_p) < 0.5 * np.std(med_s)
    assert np.mean(np.abs(med_p - 0.3)) < np.mean(np.abs(med_s - 0.3))
    assert np.all(width_p < width_s)


def test_loo_prefers_group_exponents_when_they_differ():
    """N*(C)-like lines with exponents 0.4-0.6 (as across Porian et al.'s setups)."""
    law = bayescale.get_law("pure_power_law")
    frames = []
    for i, a in enumerate([0.4, 0.5, 0.6, 0.4, 0.5, 0.6]):
        c = np.geomspace(1e16, 1e19, 10)
        df = from_law(law, {"y_ref": 5e7, "a": a}, {"x": c}, noise=0.05, random_seed=i)
        frames.append(df.assign(corpus=f"g{i}"))
    df = pd.concat(frames, ignore_index=True)[["x", "loss", "corpus"]]
    fits = {
        mode: bayescale.fit(
            df,
            law="pure_power_law",
            group="corpus",
            pooling={"y_ref": "separate", "a": mode},
            random_seed=0,
        )
        for mode in ("shared", "pooled_centred")
    }
    assert all(f.diagnostics.ok for f in fits.values())
    table = bayescale.compare(fits)
    assert table.index[0] == "pooled_centred"
    assert -table.loc["shared", "elpd_diff"] > 4 * table.loc["shared", "dse"]


def test_porian_case_study_acceptance():
    study = case_study("porian_optimal_size", "porian_resolving_discrepancies")
    fits, table, ok = study.run()
    assert ok and table["inside"].all()
    compare = bayescale.compare(fits)
    assert compare.index[-1] == "shared"  # exponents differ across configurations


def test_pooled_exponents_case_study_acceptance():
    study = case_study("pooled_exponents", "open_athena_isoflops")
    fits, ok = study.run()
    assert ok
    assert bayescale.compare(fits).index[-1] == "shared"


CONVERGING_SWEEPS = (
    "porian_owt2",
    "porian_rw",
    "gemstones",
    "gemstones_350b",
    "misfitting",
    "open_athena_epochai_chinchilla",
    "pythia_lambada",
)
"""Real multi-group sweeps on which the default grouped Chinchilla fit passes every check.

The default since 2026-12-07: each group's terms separate, sampled at its own centre (the
floor paired with the term of an input a group holds nearly fixed), the exponents pooled
(:func:`bayescale.pooling.resolve`). ``python benchmarks/grouped_fits.py --no-warm --seed
S`` at seeds 0-2: none of these has a divergent draw, r-hat <= 1.0072, bulk ESS >= 849.
(Mis)Fitting by learning rate had one divergent draw at each seed before its one-size
group paired its floor and N term. Not yet: Open-Athena's ML-ScaleFit by budget (2/0/0
divergent draws) and its Llama 3 by budget (1/3/2, 246-254 steps per draw; it was at the
maximum tree depth on every draw with every parameter pooled). Open-Athena's (Mis)Fitting
by budget: 0/0/1, with bulk ESS 443-671.
"""


@pytest.mark.parametrize("name", CONVERGING_SWEEPS)
def test_default_grouped_fit_converges_on_real_sweeps(name):
    if not sweeps.SWEEPS[name].available():
        pytest.skip(f"real data not available: sweep {name!r} is missing from ../shared/data")
    df = sweeps.load(name)[["N", "D", "loss", "group"]]
    fit = bayescale.fit(df, law="chinchilla", group="group", random_seed=0)
    d = fit.diagnostics
    # a fresh compilation of the sampler takes another path (seeds 0-3 gave 0 or 1 divergent
    # draws on each sweep), so one or two stray draws are allowed
    assert d.divergences <= 2, f"{name}: {d}"
    assert d.max_r_hat <= 1.01 and d.min_ess_bulk >= 400 and d.max_depth_share == 0, str(d)
