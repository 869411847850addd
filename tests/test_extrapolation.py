"""Extrapolation error: reach, the drift added beyond the data, and its calibration."""

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayescale
from bayescale import extrapolation, io
from bayescale.evaluation import calibration
from bayescale.extrapolation import DriftPersistence, Edge, ExtrapolationError
from bayescale.simulate import from_law
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

N_DRAWS = 4000
CURVE = pd.DataFrame({"x": np.geomspace(1e6, 1e9, 8), "loss": np.geomspace(3, 2, 8)})


def point_fit(n=N_DRAWS, sigma=0.01):
    """A power-law fit whose every draw is the same parameter set (only the drift varies)."""
    draws = {
        "E": np.full(n, 1.5),
        "a_ref": np.full(n, 0.8),
        "alpha": np.full(n, 0.3),
        "sigma": np.full(n, sigma),
    }
    return fake_fit(CURVE, "power_law", draws, log_ref={"x": np.log(1e7)})


def fixed(tau=0.0, omega=0.0, n=10):
    """An error model with known tau (sigma = 0) and omega."""
    return ExtrapolationError(
        mu=np.full(n, np.log(tau) if tau > 0 else -50.0), sigma=np.zeros(n), omega=np.full(n, omega)
    )


def test_reach_is_the_scale_over_the_largest_fitted_scale():
    fit = point_fit()
    pred = fit.predict({"x": [1e7, 1e9, 1e10, 1e11]})
    np.testing.assert_allclose(pred["reach"], [1, 1, 10, 100])
    law = bayescale.get_law("chinchilla")
    fitted = pd.DataFrame({"N": [1e8, 1e9], "D": [1e10, 2e10]})
    rows = pd.DataFrame({"N": [1e8, 2e9, 1e10], "D": [1e9, 1e11, 2e10]})
    np.testing.assert_allclose(np.exp(extrapolation.log_reach(law, rows, fitted)), [1, 10, 10])
    downstream = bayescale.get_law("downstream")
    assert np.isnan(extrapolation.log_reach(downstream, pd.DataFrame({"L": [2.0]}), None)).all()


def test_rows_inside_the_data_are_unchanged_and_beyond_they_widen():
    fit = point_fit()
    rows = {"x": [1e7, 1e9, 1e10, 1e11]}
    for kind in ("mean", "observed"):
        calibrated = fit.predict(rows, kind=kind)
        alone = fit.predict(rows, kind=kind, extrapolation="none")
        cols = ["median", "lower", "upper"]
        pd.testing.assert_frame_equal(calibrated[cols].iloc[:2], alone[cols].iloc[:2])
        width = np.log(calibrated["upper"] / calibrated["lower"])
        width_alone = np.log(alone["upper"] / alone["lower"])
        assert (width.iloc[2:] > width_alone.iloc[2:]).all()
        share = calibrated["extrapolation_share"].to_numpy()
        assert (share[:2] == 0).all() and 0 < share[2] <= share[3] <= 1


def test_the_drift_has_the_model_s_spread_and_is_shared_by_a_prediction_s_rows():
    fit = point_fit()
    rows = {"x": [1e10, 1e11]}
    _, draws = fit.predictive_draws(rows, kind="mean", extrapolation=fixed(tau=0.02))
    log_draws = np.log(draws)
    # b ~ Normal(0, 0.02): sd 0.02 log(10) and 0.02 log(100); SE of an sd from 4,000 draws ~1.1%
    np.testing.assert_allclose(log_draws.std(axis=0), 0.02 * np.log([10, 100]), rtol=0.05)
    assert np.corrcoef(log_draws.T)[0, 1] > 0.999  # one slope per draw
    _, draws = fit.predictive_draws(rows, kind="mean", extrapolation=fixed(omega=0.02))
    log_draws = np.log(draws)
    np.testing.assert_allclose(log_draws.std(axis=0), 0.02 * np.log([10, 100]), rtol=0.05)
    assert abs(np.corrcoef(log_draws.T)[0, 1]) < 0.1  # run scatter: independent rows


def test_the_density_beyond_the_data_is_the_drift_convolved_with_the_noise():
    fit = point_fit(sigma=0.01)
    x, tau = 1e11, 0.02
    law_value = 1.5 + 0.8 * (x / 1e7) ** -0.3
    y = law_value * np.exp([-0.05, 0.0, 0.08])
    lpd = fit.log_predictive_density({"x": [x] * 3, "loss": y}, extrapolation=fixed(tau=tau))
    sd = np.hypot(0.01, tau * np.log(100))
    expected = stats.norm.logpdf(np.log(y), np.log(law_value), sd)
    np.testing.assert_allclose(lpd, expected, atol=0.05)  # Monte Carlo over 4,000 slopes


def test_no_drift_for_accuracies_or_laws_without_scale():
    """The error was learnt on log losses at scale: accuracies and loss-to-X laws get none."""
    assert point_fit().evaluator_with("calibrated").extrapolates
    assert not point_fit().evaluator_with("none").extrapolates
    acc = CURVE.assign(acc=np.linspace(0.2, 0.6, 8))
    draws = {"E": np.full(10, 0.0), "a_ref": np.full(10, 0.5), "alpha": np.full(10, 0.2)}
    beta = fake_fit(
        acc, "power_law", draws | {"phi": np.full(10, 50.0)}, y="acc", likelihood="beta"
    )
    assert not beta.evaluator_with("calibrated").extrapolates
    pred = beta.predict({"x": [1e11]}, extrapolation="calibrated")
    assert pred["reach"].iloc[0] == pytest.approx(100) and pred["extrapolation_share"].iloc[0] == 0


def test_bad_extrapolation_arguments_are_named():
    fit = point_fit()
    with pytest.raises(
        bayescale.SpecError, match="extrapolation must be one of 'calibrated', 'population', 'none'"
    ):
        fit.predict({"x": [1e10]}, extrapolation="wide")
    with pytest.raises(bayescale.SpecError, match="equal-length"):
        ExtrapolationError(mu=[0.0, 1.0], sigma=[1.0], omega=[0.0, 0.0])
    with pytest.raises(bayescale.SpecError, match="sigma and omega >= 0"):
        ExtrapolationError(mu=[0.0], sigma=[-1.0], omega=[0.0])


def test_the_shipped_calibration_loads_and_round_trips(tmp_path):
    model = extrapolation.default()
    assert len(model.mu) >= 1000 and model.source
    low, mid, high = model.sd_quantiles(30)
    assert 0 < low < mid < high < 1
    model.save(tmp_path / "e.json")
    again = ExtrapolationError.read(tmp_path / "e.json")
    np.testing.assert_allclose(again.mu, model.mu, atol=1e-6)


def test_the_shipped_persistence_loads_and_round_trips(tmp_path):
    model = extrapolation.persistence()
    assert len(model.k) >= 1000 and model.source
    assert 0.5 < np.median(model.k) < 1.2  # most of a nested slope carries over
    model.save(tmp_path / "p.json")
    again = DriftPersistence.read(tmp_path / "p.json")
    np.testing.assert_allclose(again.k, model.k, atol=1e-6)
    thin = model.thinned(4)
    assert len(thin.k) == len(model.k[::4]) and thin.source == model.source
    # passed where an ExtrapolationError goes, its message printed every draw (61,651 chars)
    with pytest.raises(bayescale.SpecError, match="goes to bayescale.sweep_error") as err:
        extrapolation.resolve(model)
    assert len(str(err.value)) < 300


def test_a_slope_survives_the_round_trip_and_old_files_read_as_zero(tmp_path):
    model = ExtrapolationError(
        [0.0, 1.0],
        [0.0, 0.0],
        [0.0, 0.0],
        "x",
        slope=[0.01, 0.02],
        gamma=[0.4, 0.5],
        psi=[0.3, 0.2],
    )
    model.save(tmp_path / "e.json")
    again = ExtrapolationError.read(tmp_path / "e.json")
    np.testing.assert_allclose(again.slope, [0.01, 0.02])
    np.testing.assert_allclose(again.gamma, [0.4, 0.5])
    np.testing.assert_allclose(again.psi, [0.3, 0.2])
    assert "slope" not in extrapolation.default().to_dict()  # the shipped population has none
    assert not extrapolation.default().slope.any()
    assert not ExtrapolationError([0.0], [0.0], [0.0]).gamma.any()
    assert not ExtrapolationError([0.0], [0.0], [0.0]).psi.any()
    # a fit saved before gamma and psi existed holds its own error without them
    stored = io._error_from(io._error_dataset(model).drop_vars(["gamma", "psi"]))
    assert not stored.gamma.any() and not stored.psi.any()
    np.testing.assert_allclose(io._error_from(io._error_dataset(model)).psi, [0.3, 0.2])


def test_the_drift_scale_grows_with_the_fit_s_edge_spread():
    """tau = exp(mu + gamma log(s_edge / 0.02)): a fit pinned 4x tighter drifts 2x less (gamma 0.5)."""
    n = 10
    model = ExtrapolationError(
        np.full(n, np.log(0.01)), np.zeros(n), np.zeros(n), gamma=np.full(n, 0.5)
    )
    rng = np.random.default_rng(0)
    b, _ = model.draw(20000, rng, Edge(np.log(0.005)))
    assert np.std(b) == pytest.approx(0.005, rel=0.03)  # SE of an sd from 20,000 draws: 0.5%
    b, _ = model.draw(20000, rng)  # no spread given: the reference one
    assert np.std(b) == pytest.approx(0.01, rel=0.03)
    # beyond the spreads it was learnt over, the covariate is not extrapolated
    b, _ = model.draw(20000, rng, Edge(np.log(1e-6)))
    assert np.std(b) == pytest.approx(0.01 * np.sqrt(5e-4 / 0.02), rel=0.03)
    b, _ = model.draw(20000, rng, Edge(np.nan))  # a law undefined at the edge: the reference
    assert np.std(b) == pytest.approx(0.01, rel=0.03)
    # a fit's own edge spread: half the 68% interval of a new run at its largest x,
    # here the noise sigma alone (every draw the same parameters)
    for sigma in (0.005, 0.02):
        evaluator = point_fit(sigma=sigma).evaluator_with(model)
        assert np.exp(evaluator.edge.log_spread) == pytest.approx(sigma, rel=0.05)
        _, draws = point_fit(sigma=sigma).predictive_draws(
            {"x": [1e11]}, kind="mean", extrapolation=model
        )
        expected = 0.01 * np.sqrt(sigma / 0.02) * np.log(100)
        assert np.log(draws).std() == pytest.approx(expected, rel=0.05)
    table = point_fit(sigma=0.005).predict({"x": [1e11]}, extrapolation=model)
    assert re.search(r"at an edge spread of 0\.00(49|5|51)$", table.attrs["extrapolation"])


def test_the_drift_scale_grows_with_a_curve_s_edge_slope(short_fit):
    """tau = exp(mu + psi log(g_edge / 0.15)): a curve falling 4x slower drifts 2x less (psi 0.5)."""
    n = 10
    model = ExtrapolationError(
        np.full(n, np.log(0.01)), np.zeros(n), np.zeros(n), psi=np.full(n, 0.5)
    )
    rng = np.random.default_rng(0)
    for log_slope, sd in [
        (np.log(0.15 / 4), 0.005),
        (None, 0.01),  # a law over N and D: the reference
        (np.log(100.0), 0.01 * np.sqrt(2.0 / 0.15)),  # clipped to EDGE_SLOPES
    ]:
        b, _ = model.draw(20000, rng, Edge(np.log(0.001), log_slope))  # gamma 0: spread ignored
        assert np.std(b) == pytest.approx(sd, rel=0.03)
    # a fit's own: the median law's fall in log y over the e-fold beyond its largest x
    fit = point_fit()
    here, ahead = (0.8 * (x / 1e7) ** -0.3 for x in (1e9, np.e * 1e9))
    assert np.exp(fit.evaluator.edge.log_slope) == pytest.approx(
        np.log((1.5 + here) / (1.5 + ahead)), rel=1e-6
    )
    label = fit.predict({"x": [1e11]}, extrapolation=model).attrs["extrapolation"]
    assert re.search(r"at an edge slope of 0\.031$", label)  # gamma 0: no spread named
    assert short_fit.evaluator.edge.log_slope is None  # over N and D the way on is no one line
    # a label names the values the covariates took, as clipped
    assert Edge(np.log(0.001), np.log(100.0)).describe() == (
        "an edge spread of 0.001 and an edge slope of 2"
    )
    assert Edge().describe() == "" and Edge().covariates() == (0.0, 0.0)


def test_a_record_s_edge_slope_is_the_fall_of_its_first_held_out_medians():
    """Least squares over the held-out rows within one e-fold of the first; NaN with one row."""
    u = np.array([0.0, 0.2, 0.6, 1.1, 1.5, 3.0])
    median = 2.0 - 0.1 * u + 0.02 * (u > 1.25)  # the rows beyond the window do not count
    assert calibration.edge_slope(u, median) == pytest.approx(0.1)
    assert np.isnan(calibration.edge_slope(u[:2], median[:2]))  # one row beyond the data
    table = calibration.record_table("s", "r", u, median + np.zeros((10, 6)), median, slope=True)
    assert table["edge_slope"].iloc[0] == pytest.approx(0.1)


def test_nested_slope_is_the_draws_weighted_least_squares_slope():
    """Every draw's slope through 0; the sd over draws carries the shared parameter error."""
    rng = np.random.default_rng(0)
    u = np.array([0.0, 0.5, 1.0, 1.5])
    shift = rng.normal(0, 0.01, (4000, 1)) * u  # one slope error per draw, shared by rows
    log_draws = rng.normal(0, 0.004, (4000, 4)) + shift
    log_y = 0.03 * u + np.array([5.0, 0, 0, 0])  # the row at reach 1 is ignored
    slope, se = calibration.nested_slope(u, log_draws, log_y)
    assert slope == pytest.approx(0.03, abs=0.001)
    # the rows' own noise adds sd 0.004 / sqrt(sum u^2) = 0.0021 to the shared 0.01
    assert se == pytest.approx(np.hypot(0.01, 0.004 / np.sqrt(3.5)), rel=0.05)
    with pytest.raises(bayescale.SpecError, match="no row beyond"):
        calibration.nested_slope(u * 0, log_draws, log_y)


def test_persistence_centres_the_drift_on_the_shrunk_carried_slope():
    n = 20
    model = DriftPersistence(
        k=np.full(n, 0.8),
        nu=np.full(n, 0.03),
        mu=np.full(n, np.log(0.005)),
        sigma=np.zeros(n),
        omega=np.zeros(n),
    )
    precise = model.given(0.03, 0.0, n=500)
    np.testing.assert_allclose(precise.slope, 0.8 * 0.03)
    np.testing.assert_allclose(np.exp(precise.mu), 0.005)
    assert (precise.sigma == 0).all() and "slope +0.0300" in precise.source
    vague = model.given(0.03, 0.03, n=500)  # se = nu: half the slope is believed
    np.testing.assert_allclose(vague.slope, 0.8 * 0.5 * 0.03)
    np.testing.assert_allclose(np.exp(vague.mu), np.hypot(0.005, 0.8 * np.sqrt(0.5) * 0.03))
    with pytest.raises(bayescale.SpecError, match="finite values and se >= 0"):
        model.given(np.nan, 0.01)
    # a prediction 100x beyond the data: its median moves by k b_n log(100)
    fit = point_fit()
    moved = fit.predict({"x": [1e11]}, extrapolation=precise)["median"].iloc[0]
    alone = fit.predict({"x": [1e11]}, extrapolation="none")["median"].iloc[0]
    assert np.log(moved / alone) == pytest.approx(0.024 * np.log(100), abs=0.01)


def test_weighing_by_a_backtest_measures_errors_about_the_slope():
    """Errors that equal the slope's prediction are evidence of a small drift scale."""
    n = 50
    centred = ExtrapolationError(
        np.full(n, np.log(0.01)), np.ones(n), np.zeros(n), slope=np.full(n, 0.04)
    )
    u = np.log(np.geomspace(1.2, 3, 10))
    spread = np.full(10, 0.002)
    on_slope = np.median(centred.given(u, 0.04 * u, spread, random_seed=1).mu)
    off_slope = np.median(centred.given(u, 0 * u, spread, random_seed=1).mu)
    assert on_slope < np.log(0.005) < np.log(0.02) < off_slope
    assert (centred.given(u, 0.04 * u, spread).slope == 0.04).all()


def simulated_records(
    mu,
    sigma,
    omega,
    gamma=0.0,
    psi=None,
    n_sources=24,
    n_records=6,
    rows=12,
    seed=0,
    k=None,
    nested_se=0.005,
):
    """Records drawn from the calibration model itself, with known parameters.

    Each record's spreads are its own level (log-uniform over 0.002-0.05) times 1-1.5, and
    its drift scale grows with the least of them as ``gamma`` says. With ``psi``: each
    record has an edge slope (log-uniform over 0.02-0.5), and its drift scale grows with it
    as ``psi`` says. With ``k``: each
    record also has a nested backtest's slope ``b_n ~ Normal(0, 0.03)`` (observed with
    standard error ``nested_se``), and its drift slope is ``k b_n`` plus the residual (so
    ``nu = 0.03``).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for source in range(n_sources):
        log_tau = mu + sigma * rng.standard_normal()
        for c in range(n_records):
            u = np.sort(rng.uniform(0.1, np.log(30), rows))
            spread = np.exp(rng.uniform(np.log(0.002), np.log(0.05))) * rng.uniform(1, 1.5, rows)
            edge = np.log(spread.min() / extrapolation.REFERENCE_SPREAD)
            slope = np.exp(rng.uniform(np.log(0.02), np.log(0.5)))
            sloping = 0.0 if psi is None else psi * np.log(slope / extrapolation.REFERENCE_SLOPE)
            tau = np.exp(log_tau + gamma * edge + sloping)
            b_n = 0.0 if k is None else 0.03 * rng.standard_normal()
            b = (k or 0.0) * b_n + tau * rng.standard_normal()
            error = b * u + np.sqrt(spread**2 + (omega * u) ** 2) * rng.standard_normal(rows)
            frame = pd.DataFrame(
                {
                    "source": f"s{source}",
                    "record": c,
                    "log_reach": u,
                    "error": error,
                    "spread": spread,
                }
            )
            if psi is not None:
                frame["edge_slope"] = slope
            if k is not None:
                frame["nested_slope"] = b_n + nested_se * rng.standard_normal()
                frame["nested_se"] = nested_se
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_calibrating_writes_pytensor_s_generated_source_into_the_cache(tmp_path, monkeypatch):
    """Not one file per compiled function left in the system's temporary folder."""
    from pytensor import config

    monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(config, "generated_src_dir", "")
    rows = simulated_records(np.log(0.01), 0.5, 0.002)
    calibration.calibrate(rows, draws=50, chains=1)
    assert config.generated_src_dir == str(tmp_path / "pytensor_source")
    assert list((tmp_path / "pytensor_source").glob("*.py"))


def test_calibration_recovers_how_much_drift_persists():
    """24 sources x 6 records: k, nu, mu and omega within their 95% intervals (seeds 0-3).

    sigma, the spread of 24 sources' log drift scales, is checked to a factor of two: its
    95% interval missed 0.5 at one of those four seeds ([0.53, 1.27]).
    """
    truth = {"k": 0.8, "nu": 0.03, "mu": np.log(0.008), "omega": 0.002}
    rows = simulated_records(truth["mu"], 0.5, truth["omega"], k=truth["k"])
    result = calibration.calibrate(rows, draws=500, chains=4)
    model = result.model
    assert isinstance(model, DriftPersistence) and result.diagnostics.ok, result.diagnostics
    for name, value in truth.items():
        lo, hi = np.quantile(getattr(model, name), [0.025, 0.975])
        assert lo < value < hi, (name, lo, hi)
    assert np.std(model.k) < 0.05
    assert 0.25 < np.median(model.sigma) < 1.0
    with pytest.raises(bayescale.DataError, match="non-finite"):
        calibration.calibrate(rows.assign(nested_se=np.nan))


def test_calibration_recovers_known_drift_parameters():
    """24 sources: mu to about +-0.3, gamma and psi to +-0.15; all five within their 95% intervals."""
    truth = {"mu": np.log(0.01), "sigma": 0.5, "omega": 0.004, "gamma": 0.5, "psi": 0.3}
    result = calibration.calibrate(simulated_records(**truth), draws=500, chains=4)
    model = result.model
    assert result.diagnostics.ok, result.diagnostics
    assert len(result.source_scales) == 24
    for name, value in truth.items():
        lo, hi = np.quantile(getattr(model, name), [0.025, 0.975])
        assert lo < value < hi, (name, lo, hi)
    assert np.std(model.mu) < 0.3 and np.std(model.gamma) < 0.15 and np.std(model.psi) < 0.15


def test_calibration_refuses_records_without_reach():
    rows = simulated_records(np.log(0.01), 0.5, 0.0, n_sources=2).assign(log_reach=0.0)
    with pytest.raises(bayescale.DataError, match="reach > 1"):
        calibration.calibrate(rows)
    with pytest.raises(bayescale.DataError, match="lack columns"):
        calibration.calibrate(rows.drop(columns="spread"))


def test_the_record_likelihood_is_the_marginal_normal_density():
    """The rank-one closed form equals the dense multivariate normal with the slope integrated out."""
    rng = np.random.default_rng(3)
    u, e, s = rng.uniform(0.1, 3, 6), rng.normal(0, 0.05, 6), rng.uniform(0.005, 0.02, 6)
    tau, omega = 0.03, 0.01
    v = s**2 + omega**2 * u**2
    dense = stats.multivariate_normal(np.zeros(6), np.diag(v) + tau**2 * np.outer(u, u))
    sums = [np.sum(x / v) for x in (u * u, u * e, e * e)]
    closed = extrapolation.record_log_likelihood(
        extrapolation.NUMPY, tau**2, *sums, np.log(v).sum()
    )
    np.testing.assert_allclose(closed - 3 * np.log(2 * np.pi), dense.logpdf(e), rtol=1e-10)


def test_a_sweep_s_own_backtest_moves_its_drift_scale_from_the_population():
    """Small nested errors pull tau down, large ones push it up; no evidence leaves it alone."""
    population = ExtrapolationError(np.full(50, np.log(0.01)), np.full(50, 1.0), np.zeros(50))
    u = np.log(np.geomspace(1.2, 3, 10))
    spread = np.full(10, 0.002)

    def median_tau(errors):
        return np.exp(np.median(population.given(u, errors, spread, random_seed=1).mu))

    prior = np.exp(np.median(population.given(u * 0, u * 0, spread).mu))
    assert 0.008 < prior < 0.0125  # reach 1 everywhere: no evidence, the population's median
    assert median_tau(0.001 * u) < prior / 2  # drifted 0.1% per e-fold
    assert median_tau(0.08 * u) > 3 * prior  # drifted 8% per e-fold
    given = population.given(u, 0.08 * u, spread)
    assert (given.sigma == 0).all() and "backtest of 10 rows" in given.source


def test_sweep_error_refits_below_a_cut_and_conditions_on_the_rest():
    df = from_law(
        bayescale.get_law("power_law"),
        {"E": 1.8, "a_ref": 0.6, "alpha": 0.3},
        {"x": np.geomspace(1e7, 1e10, 30)},
        noise=0.01,
    )[["x", "loss"]]
    fit = bayescale.fit(df, law="power_law", random_seed=0)
    error = bayescale.sweep_error(fit, reach=5, n=500)
    assert error.mu.shape == (500,) and (error.sigma == 0).all()
    assert np.isfinite(error.mu).all() and "backtest of" in error.source
    # a law that holds exactly drifts little: tau below the population's median
    assert np.median(error.mu) < np.median(extrapolation.default().mu)
    pred = fit.predict({"x": [1e11]}, extrapolation=error)
    assert pred["extrapolation_share"].iloc[0] > 0


def test_sweep_error_carries_a_nested_slope_over_for_laws_of_n_and_d(short_fit):
    error = bayescale.sweep_error(short_fit, n=300)
    assert "given a backtest of slope" in error.source and (error.sigma == 0).all()
    carried = extrapolation.persistence()
    assert error.slope.std() > 0  # k b_n, one per draw of k
    assert np.abs(error.slope).max() <= 2 * np.abs(carried.k).max() * np.abs(error.slope).mean()
    scaled = bayescale.sweep_error(short_fit, extrapolation="calibrated", n=300)
    np.testing.assert_allclose(scaled.slope, error.slope)  # same seed, same answer
    weighed = bayescale.sweep_error(short_fit, extrapolation=extrapolation.default(), n=300)
    assert not weighed.slope.any() and "rows" in weighed.source


def test_the_default_beyond_n_and_d_data_is_the_fit_s_own_backtest(short_fit, tmp_path):
    """``"calibrated"`` over N and D: the sweep's own backtest, computed once, only when needed."""
    fit = dataclasses.replace(short_fit)  # the same fit with nothing cached yet
    top = fit.data.frame.loc[(fit.data.frame["N"] * fit.data.frame["D"]).idxmax()]
    inside = pd.DataFrame({"N": [top["N"]], "D": [top["D"]]})
    beyond = pd.DataFrame({"N": [10 * top["N"]], "D": [10 * top["D"]]})
    assert "extrapolation" not in fit.predict(inside).attrs
    assert "own_extrapolation" not in fit.__dict__  # no refit for rows inside the data
    pred = fit.predict(beyond)
    assert "own_extrapolation" in fit.__dict__
    own = fit.own_extrapolation
    assert pred.attrs["extrapolation"] == own.source and "given a backtest of slope" in own.source
    population = fit.predict(beyond, extrapolation="population")
    edge = np.exp(fit.evaluator.edge.log_spread)  # the population's drift scale grows with it
    assert population.attrs["extrapolation"] == (
        f"{extrapolation.default().source}, at an edge spread of {edge:.2g}"
    )
    assert population["median"].iloc[0] != pred["median"].iloc[0]  # the carried slope moves it
    fit.save(tmp_path / "fit.nc")
    loaded = bayescale.load(tmp_path / "fit.nc")
    assert "own_extrapolation" in loaded.__dict__  # kept: a loaded fit does not refit
    np.testing.assert_array_equal(loaded.own_extrapolation.slope, own.slope)
    assert loaded.own_extrapolation.source == own.source
    pd.testing.assert_frame_equal(loaded.predict(beyond), pred)
    fresh = dataclasses.replace(short_fit)
    fresh.save(tmp_path / "plain.nc")  # saved before any prediction beyond: nothing kept
    assert "own_extrapolation" not in bayescale.load(tmp_path / "plain.nc").__dict__


def test_a_sweep_too_small_to_backtest_falls_back_to_the_population():
    from test_decisions import chinchilla_draws

    frame = pd.DataFrame({"N": np.geomspace(1e7, 1e9, 20), "D": np.geomspace(1e9, 1e10, 20)})
    frame["loss"] = 2.0 + 1e4 / frame["N"] ** 0.3
    fit = fake_fit(frame, "chinchilla", chinchilla_draws(frame, n=40))
    del fit.__dict__["own_extrapolation"]  # as a real fit of these 20 runs starts
    own = calibration.own_error(fit)  # no refit: 16 runs lie below a third of the top scale
    assert own.source.endswith(
        "(no own backtest: a cut at 1/3 of the largest scale leaves 16 runs to fit (at least "
        "20 needed for law 'chinchilla') and 4 to predict)"
    )
    np.testing.assert_array_equal(own.mu, extrapolation.default().mu)
    assert (
        "(a fake fit)"
        in fake_fit(frame, "chinchilla", chinchilla_draws(frame, n=40)).own_extrapolation.source
    )


@pytest.mark.parametrize("learn", [calibration.own_error, bayescale.sweep_error])
def test_an_unconverged_own_backtest_is_used_and_said(short_fit, monkeypatch, learn):
    """``sweep_error`` by hand said nothing of it (the refit's own warning read as the fit's)."""
    real = calibration.refit

    def unconverged(fitted, data):
        warnings.warn("chinchilla fit: 3 divergent draws", bayescale.ConvergenceWarning, 2)
        return real(fitted, data)

    monkeypatch.setattr(calibration, "refit", unconverged)
    with pytest.warns(bayescale.ConvergenceWarning, match="its own backtest .* failed") as caught:
        own = learn(short_fit)
    assert len(caught) == 1 and "3 divergent draws" in str(caught[0].message)
    assert own.source.endswith("the backtest's fit did not converge")
    assert "given a backtest of slope" in own.source


def test_a_sweep_whose_cut_cannot_be_fitted_alone_falls_back_to_the_population(
    short_fit, monkeypatch
):
    def one_group_left(fitted, data):
        raise bayescale.DataError("group column 'group' has a single label ('a')")

    monkeypatch.setattr(calibration, "refit", one_group_left)
    own = calibration.own_error(short_fit)
    assert own.source.endswith(
        "(no own backtest: the runs below a cut at 1/3 cannot be fitted alone: group column "
        "'group' has a single label ('a'))"
    )
    np.testing.assert_array_equal(own.mu, extrapolation.default().mu)


def test_an_own_backtest_predicts_the_groups_its_refit_has(monkeypatch):
    """Group b has no run below the cut: its rows beyond are left out of the backtest."""
    from test_decisions import chinchilla_draws

    sizes = np.geomspace(1e7, 1e9, 24)
    frame = pd.concat(
        [
            pd.DataFrame({"N": sizes, "D": 20 * sizes, "g": "a"}),
            pd.DataFrame({"N": sizes[-3:], "D": 20 * sizes[-3:], "g": "b"}),
            pd.DataFrame({"N": sizes, "D": 20 * sizes, "g": "c"}),
        ],
        ignore_index=True,
    )
    frame["loss"] = 2.0 + 1e4 / frame["N"] ** 0.3
    terms = ["E", "a_ref", "b_ref"]
    separate = dict.fromkeys(terms, "separate") | {"alpha": "shared", "beta": "shared"}

    def draws(rows, groups):
        d = chinchilla_draws(rows, n=40)
        return d | {k: np.repeat(d[k][:, None], groups, axis=1) for k in terms}

    fit = fake_fit(frame, "chinchilla", draws(frame, 3), group="g", pooling=separate)
    inside, short = calibration.nested_cut(fit, 3.0)
    assert not short and not inside[frame["g"] == "b"].any()
    refits = []

    def refit_without_b(fitted, data):
        assert set(data["g"]) == {"a", "c"}
        refits.append(fake_fit(data, "chinchilla", draws(data, 2), group="g", pooling=separate))
        return refits[-1]

    monkeypatch.setattr(calibration, "refit", refit_without_b)
    log_reach, log_draws, log_y = calibration.nested_backtest(fit, inside)
    beyond = ~inside & (frame["g"] != "b").to_numpy()
    assert len(log_y) == beyond.sum() == log_draws.shape[1] == len(log_reach)
    np.testing.assert_array_equal(log_y, np.log(frame.loc[beyond, "loss"]))
    assert "no own backtest" not in calibration.own_error(fit).source


def test_recalibrate_learns_a_drift_persistence_from_your_n_d_backtests():
    """Two simulated sweeps, each backtested at a tenth of its largest budget; one more
    refit each, inside its runs, gives the nested slopes the persistence relates."""
    from bayescale.simulate import chinchilla_sweep

    backtests = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # 2 x 200 draws
        for seed in (1, 2):
            df = chinchilla_sweep(random_seed=seed)[["N", "D", "C", "loss"]]
            backtests[f"sim{seed}"] = bayescale.backtest(
                df,
                ["chinchilla"],
                split=bayescale.reach_split(df, "C", 10),
                average=False,
                baseline=False,
                fit_options={"chains": 2, "draws": 200, "tune": 300},
                extrapolation="none",
            )
        model = bayescale.recalibrate(backtests, draws=300, chains=2, persistence=True)
        assert isinstance(model, DriftPersistence) and "sim1" in model.source
        fit = backtests["sim1"].fits["chinchilla"]
        own = bayescale.sweep_error(fit, extrapolation=model, n=300)
    assert "given a backtest of slope" in own.source and own.slope.std() > 0


def test_sweep_error_names_bad_arguments():
    fit = point_fit(n=20)
    with pytest.raises(bayescale.SpecError, match="reach must be a factor above 1"):
        bayescale.sweep_error(fit, reach=1)
    with pytest.raises(bayescale.SpecError, match="not extrapolation='none'"):
        bayescale.sweep_error(fit, extrapolation="none")
    with pytest.raises(bayescale.SpecError, match="leaves 2 runs to fit"):
        bayescale.sweep_error(fit, reach=300)
