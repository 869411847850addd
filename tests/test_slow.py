"""Slow lane: parameter recovery, the case study's acceptance checks, the demo.

Run with ``pytest -m slow``. Each recovery test fits 4 simulated data sets; with calibrated
90% intervals, the count of (parameter, data set) cases covering the truth is roughly
Binomial(k, 0.9) (k = 16-20), so requiring >= 75% fails a calibrated model with probability
about 1-2%, while a biased or over-confident one fails it reliably.
"""

import numpy as np
import pytest
from conftest import case_study

import bayescale
from bayescale.ops import NUMPY
from bayescale.simulate import CHINCHILLA_TRUTH, chinchilla_sweep, from_law

# case studies report each fit's convergence in their own tables and checks, and
# answer from the fits that fail them too: those answers' warnings are not the subject
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")]
DATASETS = 4


def coverage(cases):
    """Fraction of (parameter, data set) cases whose 90% interval holds the truth."""
    return np.mean([lo <= truth <= hi for truth, lo, hi in cases])


def interval_cases(fit, truth):
    table = fit.summary(ci=0.9)
    assert fit.diagnostics.ok, str(fit.diagnostics)
    return [(v, table.loc[k, "lower"], table.loc[k, "upper"]) for k, v in truth.items()]


def test_recovery_chinchilla():
    cases = []
    for seed in range(DATASETS):
        df = chinchilla_sweep(random_seed=100 + seed)
        fit = bayescale.fit(df[["N", "D", "loss"]], law="chinchilla", random_seed=seed)
        cases += interval_cases(fit, CHINCHILLA_TRUTH)
    assert coverage(cases) >= 0.75, cases


def _natural_truth(law, free, inputs):
    log_ref = law.log_reference(inputs)
    return {**free, **{k: float(v) for k, v in law.derived(NUMPY, free, log_ref).items()}}


@pytest.mark.parametrize(
    ("name", "free"),
    [
        ("power_law", {"E": 1.8, "a_ref": 0.6, "alpha": 0.3}),
        ("kaplan", {"LN_ref": 2.2, "LD_ref": 1.6, "alpha_N": 0.076, "alpha_D": 0.095}),
        ("exponential", {"E": 1.8, "a_ref": 0.6, "kappa": 0.8, "gamma": 0.5}),
    ],
)
def test_recovery_other_laws(name, free):
    law = bayescale.get_law(name)
    cases = []
    for seed in range(DATASETS):
        rng = np.random.default_rng(200 + seed)
        if law.inputs == ("x",):
            inputs = {"x": np.exp(rng.uniform(np.log(1e7), np.log(1e10), 60))}
        else:
            inputs = {
                "N": np.exp(rng.uniform(np.log(1e7), np.log(1e10), 80)),
                "D": np.exp(rng.uniform(np.log(1e9), np.log(1e12), 80)),
            }
        df = from_law(law, free, inputs, noise=0.01, random_seed=seed)
        # 2,000 draws: at 1,000 kaplan's alpha_D (bulk ESS ~1,300, 28 steps per draw) gave
        # r-hat 1.0104 on one CI host and passes here; r-hat's own noise at that ESS reaches
        # the 1.01 gate, which this test of recovery should not sit on
        fit = bayescale.fit(df[[*law.inputs, "loss"]], law=name, random_seed=seed, draws=2000)
        truth = {
            k: v for k, v in _natural_truth(law, free, inputs).items() if not k.endswith("_ref")
        }
        cases += interval_cases(fit, truth)
    assert coverage(cases) >= 0.75, cases


def test_chinchilla_case_study_acceptance():
    study = case_study("chinchilla_replication", "epoch_analyzing_chinchilla")
    fits, base, ok = study.run()
    for fit in fits.values():
        failed = [text for text, passed in study.acceptance(fit) if not passed]
        assert not failed, failed
    assert ok
    for p, value in study.BESIROGLU_EXACT.items():  # ~3 significant figures
        assert base.point[p] == pytest.approx(value, rel=2e-3), p


def test_demo_extrapolates_with_truth_inside(capsys):
    from bayescale.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "converged" in out and "inside the interval" in out
