import numpy as np
import pytest

import bayescale
from bayescale.evaluation.baselines import huber_fit, start_grid
from bayescale.simulate import CHINCHILLA_TRUTH, chinchilla_sweep


@pytest.fixture(scope="module")
def noise_free():
    return chinchilla_sweep(random_seed=0, noise=0.0)


def test_grid_covers_prior_quantiles():
    law = bayescale.get_law("chinchilla")
    grid = start_grid(law, law.priors, quantiles=(0.25, 0.75))
    assert grid.shape == (2**5, 5)
    np.testing.assert_allclose(np.exp(grid[0, 0]), law.priors["E"].scipy().ppf(0.25))


def test_huber_fit_recovers_noise_free_truth_and_bootstraps(noise_free):
    law = bayescale.get_law("chinchilla")
    base = huber_fit(
        noise_free[["N", "D", "loss"]],
        law="chinchilla",
        grid=start_grid(law, law.priors, quantiles=(0.3, 0.7)),
        n_bootstrap=20,
    )
    for k, v in CHINCHILLA_TRUTH.items():
        assert base.point[k] == pytest.approx(v, rel=1e-3), k
    assert base.objective < 1e-8
    table = base.summary(ci=0.9)
    assert {"estimate", "lower", "upper", "se"} <= set(table.columns)
    pred = base.predict({"N": [1e11], "D": [2e12]})
    assert list(pred.columns) == ["N", "D", "median", "lower", "upper"]
    truth = CHINCHILLA_TRUTH
    expected = truth["E"] + truth["A"] / 1e11 ** truth["alpha"] + truth["B"] / 2e12 ** truth["beta"]
    assert pred["median"].iloc[0] == pytest.approx(expected, rel=1e-4)


def test_held_out_density_of_rows_whose_labels_repeat(noise_free):
    # pd.concat of two sweeps without a new index: each held-out row is scored once
    law = bayescale.get_law("chinchilla")
    runs = noise_free[["N", "D", "loss"]]
    grid = start_grid(law, law.priors, quantiles=(0.5,))
    base = huber_fit(runs, law="chinchilla", grid=grid, n_bootstrap=2)
    held = runs.iloc[:6]
    repeated = held.set_axis([0, 1, 2, 0, 1, 2])  # it broadcast 10 rows against 6
    np.testing.assert_array_equal(
        base.log_predictive_density(repeated), base.log_predictive_density(held)
    )
