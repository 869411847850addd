import numpy as np
import pandas as pd
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


def test_a_grouped_baseline_fits_each_group_on_its_own(noise_free):
    """The field fits each corpus alone; one curve through every group is nobody's baseline.

    Groups ``a`` and ``b`` differ by 0.5 in their floors; ``c`` has too few runs for a fit
    of its own, so its rows, and a label never fitted, get the fit of every run.
    """
    law = bayescale.get_law("chinchilla")
    runs = noise_free[["N", "D", "loss"]]
    table = pd.concat(
        [
            runs.assign(corpus="a"),
            runs.assign(corpus="b", loss=runs["loss"] + 0.5),
            runs.iloc[:4].assign(corpus="c", loss=runs["loss"].iloc[:4] + 0.2),
        ],
        ignore_index=True,
    )
    grid = start_grid(law, law.priors, quantiles=(0.5,))
    base = huber_fit(table, law="chinchilla", group="corpus", grid=grid, n_bootstrap=4)
    assert set(base.fits) == {"a", "b"}
    assert base.fits["b"].point["E"] == pytest.approx(CHINCHILLA_TRUTH["E"] + 0.5, rel=1e-3)
    # rows of every kind, interleaved, under an index that is not 0..n-1
    held = table.iloc[[0, 95, 181, 1, 96]].assign(corpus=["a", "b", "c", "a", "new"])
    held.index = [7, 3, 9, 1, 5]
    frame, draws = base.predictive_draws(held)
    assert list(frame.index) == [7, 3, 9, 1, 5]
    np.testing.assert_allclose(frame["N"], held["N"])
    own = [base.fits["a"], base.fits["b"], base.pooled, base.fits["a"], base.pooled]
    for i, fit in enumerate(own):
        np.testing.assert_array_equal(draws[:, i], fit.predictive_draws(held.iloc[[i]])[1][:, 0])
    np.testing.assert_allclose(draws[:, [0, 1]].mean(axis=0), held["loss"].iloc[:2], rtol=1e-3)
    lpd = base.log_predictive_density(held)
    assert lpd[1] == pytest.approx(base.fits["b"].log_predictive_density(held.iloc[[1]])[0])
    with pytest.raises(bayescale.DataError, match="group column 'corpus' is missing"):
        base.predictive_draws(held.drop(columns="corpus"))
