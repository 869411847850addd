"""Compute-optimal allocation as a posterior (issue 21, item 1): fast, on fits without sampling."""

import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale import SpecError
from bayescale.evaluation import decisions
from bayescale.models.chinchilla import Chinchilla
from bayescale.ops import NUMPY
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

BESIROGLU = {"E": 1.8172, "A": 477.84, "B": 2143.86, "alpha": 0.3473, "beta": 0.3672}
CHINCHILLA_C = 5.76e23
S = 200


def design(extra=None):
    """A small N x D design (the losses only need to be valid; draws are given)."""
    n, d = np.meshgrid(np.geomspace(7e7, 1.6e10, 5), np.geomspace(5e9, 5e11, 4))
    frame = pd.DataFrame({"N": n.ravel(), "D": d.ravel(), "loss": 2.0 + 1e4 / n.ravel() ** 0.3})
    return frame.assign(**(extra or {}))


def chinchilla_draws(frame, spread=0.0, seed=0, values=BESIROGLU, n=S):
    """``n`` free-parameter draws around ``values`` (natural-scale A, B mapped to a_ref, b_ref)."""
    ref = bayescale.get_law("chinchilla").log_reference(frame)
    rng = np.random.default_rng(seed)

    def jitter(scale):
        return np.exp(spread * scale * rng.standard_normal(n))

    return {
        "E": values["E"] * jitter(0.01),
        "a_ref": values["A"] * np.exp(-values["alpha"] * ref["N"]) * jitter(0.2),
        "b_ref": values["B"] * np.exp(-values["beta"] * ref["D"]) * jitter(0.2),
        "alpha": values["alpha"] * jitter(0.03),
        "beta": values["beta"] * jitter(0.03),
        "sigma": np.full(n, 0.01),
    }


@pytest.fixture(scope="module")
def chinchilla_fit():
    frame = design()
    return fake_fit(frame, "chinchilla", chinchilla_draws(frame, spread=1.0))


def by_hand(C, k=6.0, p=BESIROGLU):
    """Chinchilla's closed form written out: N* = G (C/k)^(b/(a+b)), D* = C/(k N*)."""
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    n = g * (C / k) ** (b / (a + b))
    return n, C / (k * n)


def test_closed_form_equals_numeric_optimisation(chinchilla_fit):
    budgets = np.array([1e20, CHINCHILLA_C, 1e26])
    closed = decisions.optimal_draws(chinchilla_fit, budgets)
    params = decisions.law_parameters(chinchilla_fit)
    n_num, d_num = decisions.numeric_optimum(
        chinchilla_fit.law, params, chinchilla_fit.log_ref, budgets, 6.0
    )
    np.testing.assert_allclose(n_num, closed["N_opt"], rtol=1e-4)
    np.testing.assert_allclose(d_num, closed["D_opt"], rtol=1e-4)
    # the closed form over the posterior's derived A, B gives the same draws
    post = {k: v[:, None] for k, v in chinchilla_fit.draws(["A", "B", "alpha", "beta"]).items()}
    n_post, _ = Chinchilla.compute_optimal(post, budgets)
    np.testing.assert_allclose(n_post, closed["N_opt"], rtol=1e-10)


def test_known_truth_has_zero_width():
    frame = design()
    fit = fake_fit(frame, "chinchilla", chinchilla_draws(frame, spread=0.0))
    out = bayescale.compute_optimal(fit, [CHINCHILLA_C, 1e25], extrapolation="none")
    n, d = by_hand(np.array([CHINCHILLA_C, 1e25]))
    np.testing.assert_allclose(out["N_opt_median"], n, rtol=1e-6)
    np.testing.assert_allclose(out["D_opt_median"], d, rtol=1e-6)
    np.testing.assert_allclose(out["tokens_per_param_median"], d / n, rtol=1e-6)
    # Besiroglu et al.'s fit gives about 20 tokens per parameter at Chinchilla's budget
    assert 17 < out["tokens_per_param_median"].iloc[0] < 21
    law = fit.law
    ref = fit.log_ref
    p = {k: v[:1] for k, v in decisions.law_parameters(fit).items()}
    loss = law.mean(p, {"N": n[:1], "D": d[:1]}, ref)
    np.testing.assert_allclose(out["loss_opt_median"].iloc[0], np.ravel(loss)[0], rtol=1e-10)
    for name in decisions.SUMMARIES:
        np.testing.assert_allclose(out[f"{name}_upper"], out[f"{name}_lower"], rtol=1e-12)
    fitted = (6.0 * frame["N"] * frame["D"]).max()
    np.testing.assert_allclose(out["reach"], np.array([CHINCHILLA_C, 1e25]) / fitted)
    # by default the loss there carries the extrapolation error; the allocation does not
    calibrated = bayescale.compute_optimal(fit, [CHINCHILLA_C, 1e25])
    pd.testing.assert_series_equal(calibrated["N_opt_median"], out["N_opt_median"])
    width = np.log(calibrated["loss_opt_upper"] / calibrated["loss_opt_lower"])
    assert (width > 0).all() and width.iloc[1] > width.iloc[0]


def test_flops_per_token_overrides_the_fits():
    frame = design()
    fit = fake_fit(frame, "chinchilla", chinchilla_draws(frame))
    out = bayescale.compute_optimal(fit, CHINCHILLA_C, flops_per_token=8.0)
    n, _ = by_hand(CHINCHILLA_C, k=8.0)
    np.testing.assert_allclose(out["N_opt_median"], n, rtol=1e-6)
    assert (
        out["N_opt_median"].iloc[0]
        < bayescale.compute_optimal(fit, CHINCHILLA_C)["N_opt_median"].iloc[0]
    )


def test_frontier_exponents_per_draw(chinchilla_fit):
    params = decisions.law_parameters(chinchilla_fit)
    a = decisions.exponent_draws(chinchilla_fit)
    alpha, beta = params["alpha"], params["beta"]
    np.testing.assert_allclose(a, beta / (alpha + beta))
    table = bayescale.frontier_exponents(chinchilla_fit, ci=0.9)
    assert list(table.index) == ["a", "b"]
    np.testing.assert_allclose(table.loc["b", "median"], np.median(alpha / (alpha + beta)))
    assert table.loc["a", "lower"] < table.loc["a", "median"] < table.loc["a", "upper"]
    # N* grows as C^a, draw by draw: the log-log slope between two budgets is a
    draws = decisions.optimal_draws(chinchilla_fit, [1e21, 1e24])
    slope = np.log(draws["N_opt"][:, 1] / draws["N_opt"][:, 0]) / np.log(1e3)
    np.testing.assert_allclose(slope, a, rtol=1e-10)
    slope_d = np.log(draws["D_opt"][:, 1] / draws["D_opt"][:, 0]) / np.log(1e3)
    np.testing.assert_allclose(slope_d, 1 - a, rtol=1e-10)


def test_kaplan_numeric_frontier_matches_its_exponents():
    frame = design()
    rng = np.random.default_rng(1)
    draws = {
        "LN_ref": np.exp(1.0 + 0.1 * rng.standard_normal(S)),
        "LD_ref": np.exp(1.0 + 0.1 * rng.standard_normal(S)),
        "alpha_N": 0.076 * np.exp(0.1 * rng.standard_normal(S)),
        "alpha_D": 0.095 * np.exp(0.1 * rng.standard_normal(S)),
        "sigma": np.full(S, 0.01),
    }
    fit = fake_fit(frame, "kaplan", draws)
    out = decisions.optimal_draws(fit, [1e21, 1e23])
    slope = np.log(out["N_opt"][:, 1] / out["N_opt"][:, 0]) / np.log(100.0)
    np.testing.assert_allclose(slope, decisions.exponent_draws(fit), rtol=1e-6)
    np.testing.assert_allclose(6.0 * out["N_opt"] * out["D_opt"], [[1e21, 1e23]] * S, rtol=1e-12)


def test_data_constrained_reduces_to_chinchilla_with_ample_unique_tokens():
    frame = design()
    frame["U"] = frame["D"] / np.tile([1.0, 2.0, 4.0, 8.0, 16.0], 4)
    draws = chinchilla_draws(frame) | {"r_d_star": np.full(S, 15.4), "r_n_star": np.full(S, 5.3)}
    fit = fake_fit(frame, "data_constrained", draws)
    n, d = by_hand(np.array([1e21]))
    ample = bayescale.compute_optimal(fit, 1e21, unique_tokens=1e20)
    np.testing.assert_allclose(ample["N_opt_median"], n, rtol=1e-4)
    # with few unique tokens, excess parameters lose value faster (R_N* < R_D*) than
    # repeated epochs: Muennighoff et al.'s advice to spend extra compute mostly on epochs
    u = d[0] / 20
    scarce = bayescale.compute_optimal(fit, 1e21, unique_tokens=u)
    assert scarce["tokens_per_param_median"].iloc[0] > ample["tokens_per_param_median"].iloc[0]
    # the grid + golden-section answer is the minimum of a brute-force fine grid
    params = {key: v[:3] for key, v in decisions.law_parameters(fit).items()}
    n_num, _ = decisions.numeric_optimum(fit.law, params, fit.log_ref, [1e21], 6.0, {"U": u})
    log_n = np.linspace(np.log(n[0]) - 3, np.log(n[0]) + 3, 60001)
    inputs = {"N": np.exp(log_n), "D": 1e21 / (6.0 * np.exp(log_n)), "U": np.full_like(log_n, u)}
    col = {key: v[:, None] for key, v in params.items()}
    brute = log_n[np.argmin(fit.law.log_mean(NUMPY, col, fit.law.z(inputs, fit.log_ref)), 1)]
    np.testing.assert_allclose(np.log(n_num[:, 0]), brute, atol=2e-4)
    with pytest.raises(SpecError, match="unique_tokens"):
        bayescale.compute_optimal(fit, 1e21)
    with pytest.raises(SpecError, match="C="):
        bayescale.frontier_exponents(fit, unique_tokens=1e12)
    local = bayescale.frontier_exponents(fit, C=1e21, unique_tokens=1e20)
    np.testing.assert_allclose(
        local.loc["a", "median"],
        BESIROGLU["beta"] / (BESIROGLU["alpha"] + BESIROGLU["beta"]),
        rtol=1e-3,
    )


@pytest.fixture(scope="module")
def grouped_fit():
    frame = pd.concat([design({"g": "x"}), design({"g": "y"})], ignore_index=True)
    draws = chinchilla_draws(frame, spread=0.1)
    rng = np.random.default_rng(2)
    alpha = draws.pop("alpha")
    draws |= {
        "alpha": np.stack([alpha * 0.9, alpha * 1.1], axis=1),
        "alpha_mu": alpha,
        "alpha_tau": np.full(S, 0.3) + 0.01 * rng.random(S),
    }
    pooling = {"alpha": "pooled", "E": "shared", "a_ref": "shared", "b_ref": "shared"}
    pooling["beta"] = "shared"
    return fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling, random_seed=5)


def test_a_group_the_fit_has_not_seen_is_listed(grouped_fit):
    """As predict lists one: a typo (``2.0`` for ``2``) was drawn from the population silently."""
    assert "new_groups" not in bayescale.compute_optimal(grouped_fit, [1e21], group="x").attrs
    table = bayescale.compute_optimal(grouped_fit, [1e21], group="z")
    assert table.attrs["new_groups"] == ["z"]
    table = bayescale.compute_for_target(grouped_fit, [2.5], group="z")
    assert table.attrs["new_groups"] == ["z"]
    beats = bayescale.prob_beats(grouped_fit, grouped_fit, [1e21], group_a="x", group_b="z")
    assert beats.attrs["new_groups"] == ["z"]


def test_grouped_answers_per_group_and_for_a_new_group(grouped_fit):
    x = bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group="x")
    y = bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group="y")
    new = bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group="new")
    assert not np.isclose(x["N_opt_median"].iloc[0], y["N_opt_median"].iloc[0], rtol=0.05)

    def width(t):
        return np.log(t["tokens_per_param_upper"] / t["tokens_per_param_lower"]).iloc[0]

    assert width(new) > 1.5 * max(width(x), width(y))
    # the same call gives the same new-group draws (seeded by the fit)
    pd.testing.assert_frame_equal(
        new, bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group="new")
    )
    ex_x = bayescale.frontier_exponents(grouped_fit, group="x")
    ex_y = bayescale.frontier_exponents(grouped_fit, group="y")
    assert ex_x.loc["a", "median"] > ex_y.loc["a", "median"]  # smaller alpha: larger a


def test_grouped_fit_needs_a_group(grouped_fit):
    with pytest.raises(SpecError, match=r"groups \('g': \['x', 'y'\]\)"):
        bayescale.compute_optimal(grouped_fit, CHINCHILLA_C)
    with pytest.raises(SpecError, match="text or number label"):
        bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group=["x"])
    # a number is its text, as the fit and predict read a group column of numbers
    pd.testing.assert_frame_equal(
        bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group=3),
        bayescale.compute_optimal(grouped_fit, CHINCHILLA_C, group="3"),
    )


def test_separate_terms_refuse_an_unknown_group_by_name():
    frame = pd.concat([design({"g": "x"}), design({"g": "y"})], ignore_index=True)
    draws = chinchilla_draws(frame)
    draws["E"] = np.stack([draws["E"], draws["E"] * 1.1], axis=1)
    pooling = dict.fromkeys(["alpha", "a_ref", "b_ref", "beta"], "shared") | {"E": "separate"}
    fit = fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling)
    assert len(bayescale.compute_optimal(fit, CHINCHILLA_C, group="y")) == 1
    with pytest.raises(
        SpecError,
        match=r"group\(s\) \['Y'\] \(group='Y'\) are not among the fitted groups "
        r"\['x', 'y'\]; parameter\(s\) \['E'\] are 'separate' per group",
    ):
        bayescale.compute_optimal(fit, CHINCHILLA_C, group="Y")


@pytest.mark.parametrize(
    "C",
    # True answered for a 1-FLOP budget; 10**400 raised a raw OverflowError
    [0.0, -1e21, np.nan, np.inf, [1e21, -1.0], "big", [], None, True, [1e21, True], 10**400],
)
def test_bad_budgets(chinchilla_fit, C):
    with pytest.raises(SpecError, match="C must be"):
        bayescale.compute_optimal(chinchilla_fit, C)


def test_a_local_frontier_slope_is_taken_at_one_budget(chinchilla_fit):
    """Two budgets raised a raw unpacking error; a closed-form law ignored a bad C."""
    with pytest.raises(SpecError, match="the one budget where the local slope is taken"):
        bayescale.frontier_exponents(chinchilla_fit, C=[1e21, 1e22])
    with pytest.raises(SpecError, match="C must be"):
        bayescale.frontier_exponents(chinchilla_fit, C="abc")


@pytest.mark.parametrize("ci", [0.0, 1.0, 1.5, np.nan])
def test_bad_ci(chinchilla_fit, ci):
    with pytest.raises(SpecError, match="ci must be"):
        bayescale.compute_optimal(chinchilla_fit, 1e21, ci=ci)
    with pytest.raises(SpecError, match="ci must be"):
        bayescale.frontier_exponents(chinchilla_fit, ci=ci)


def test_other_bad_arguments(chinchilla_fit):
    with pytest.raises(SpecError, match="no groups"):
        bayescale.compute_optimal(chinchilla_fit, 1e21, group="x")
    with pytest.raises(SpecError, match="flops_per_token"):
        bayescale.compute_optimal(chinchilla_fit, 1e21, flops_per_token=0)
    with pytest.raises(SpecError, match="no unique-token input"):
        bayescale.compute_optimal(chinchilla_fit, 1e21, unique_tokens=1e12)


def test_law_without_n_and_d_is_refused():
    x = np.geomspace(1e3, 1e6, 12)
    frame = pd.DataFrame({"x": x, "loss": 2.0 + x**-0.3})
    law = bayescale.get_law("power_law")
    draws = {name: np.full(S, 0.5) for name in law.parameters} | {"sigma": np.full(S, 0.01)}
    fit = fake_fit(frame, "power_law", draws)
    with pytest.raises(
        SpecError,
        match=r"'power_law'.*not model size N and tokens D.*\(chinchilla, data_constrained, "
        r"isoflop, kaplan\)",
    ):
        bayescale.compute_optimal(fit, 1e21)
    with pytest.raises(SpecError, match="'power_law'"):
        bayescale.frontier_exponents(fit)


def test_case_study_quotes_hoffmanns_rounded_ratio():
    from conftest import case_study

    study = case_study("chinchilla_optimal", "epoch_analyzing_chinchilla")
    assert round(study.hoffmann_rounded_ratio()) == 93
