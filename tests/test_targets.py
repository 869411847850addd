"""Targets and comparisons as posteriors (issue 21, items 3 and 4): fast, on fits without sampling.

Chinchilla's compute-optimal loss has a closed form, ``L*(C) = E + K (C/k)^-gamma``, so the
budget that reaches a target, the budget where two laws cross and the order of two recipes
are known exactly for given draws; each numeric answer is checked against it.
"""

import numpy as np
import pandas as pd
import pytest
from test_decisions import BESIROGLU, S, chinchilla_draws, design

import bayescale
from bayescale import SpecError
from bayescale.evaluation import decisions, targets, two_stage, versus
from bayescale.ops import NUMPY
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")


def frontier(p, k=6.0):
    """``(K, gamma)`` of ``L*(C) = E + K (C/k)^-gamma`` for natural-scale ``A, B, alpha, beta``."""
    a, b = p["alpha"], p["beta"]
    g = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    return p["A"] * g**-a + p["B"] * g**b, a * b / (a + b)


def budget_for(p, loss, k=6.0):
    """The closed-form inverse of ``L*``: ``C = k (K / (loss - E))^(1/gamma)``; NaN if E >= loss."""
    big_k, gamma = frontier(p, k)
    with np.errstate(invalid="ignore"):
        return np.where(p["E"] < loss, k * (big_k / (loss - p["E"])) ** (1 / gamma), np.nan)


def posterior(fit, group=None):
    """Natural-scale draws ``E, A, B, alpha, beta`` of a Chinchilla fit (or of one group)."""
    params = decisions.law_parameters(fit, group)
    return params | fit.law.derived(decisions.NUMPY, params, fit.log_ref)


@pytest.fixture(scope="module")
def chinchilla_fit():
    frame = design()
    return fake_fit(frame, "chinchilla", chinchilla_draws(frame, spread=1.0))


def test_target_budget_is_the_closed_form_inverse(chinchilla_fit):
    """E is 1.817 +- 1%: a target of 1.82 is out of reach for about half of the draws."""
    loss = np.array([2.2, 2.0, 1.82])
    draws = targets.target_draws(chinchilla_fit, loss, extrapolation="none")
    p = posterior(chinchilla_fit)
    truth = budget_for({key: v[:, None] for key, v in p.items()}, loss)
    unreachable = p["E"][:, None] >= loss
    np.testing.assert_array_equal(draws["unreachable"], unreachable)
    assert 0.3 < unreachable[:, 2].mean() < 0.7
    # draws that reach it beyond 1e9 times the largest fitted budget are out of the range
    top = decisions.fitted_compute(chinchilla_fit).max() * targets.TARGET_SEARCH[1]
    np.testing.assert_array_equal(draws["out_of_range"], ~unreachable & (truth > top))
    assert draws["out_of_range"][:, 2].any()
    found = np.isfinite(draws["C"])
    np.testing.assert_array_equal(found, ~unreachable & (truth <= top))
    np.testing.assert_allclose(draws["C"][found], truth[found], rtol=1e-9)
    # N*, D* there are the compute-optimal allocation of that budget
    n_opt, d_opt = bayescale.models.chinchilla.Chinchilla.compute_optimal(
        {key: p[key][:, None] for key in ("A", "B", "alpha", "beta")}, draws["C"]
    )
    np.testing.assert_allclose(draws["N"][found], n_opt[found], rtol=1e-9)
    np.testing.assert_allclose(draws["D"][found], d_opt[found], rtol=1e-9)

    table = bayescale.compute_for_target(chinchilla_fit, loss, ci=0.8, extrapolation="none")
    np.testing.assert_allclose(table["p_unreachable"], unreachable.mean(axis=0))
    np.testing.assert_allclose(table["p_out_of_range"], draws["out_of_range"].mean(axis=0))
    fitted = decisions.fitted_compute(chinchilla_fit).max()
    for row, target in enumerate(loss):
        # a draw that never gets there needs more than any budget: infinite, not left out
        needed = np.where(found[:, row], truth[:, row], np.inf)
        med, lo, hi = np.quantile(np.minimum(needed, 1e308), [0.5, 0.1, 0.9])
        expected = [np.inf if v == 1e308 else v for v in (med, lo, hi)]
        np.testing.assert_allclose(
            table[["C_median", "C_lower", "C_upper"]].iloc[row], expected, rtol=1e-9
        )
        np.testing.assert_allclose(table["reach_median"][row], expected[0] / fitted)
        assert table["loss"][row] == target
    # half the draws cannot reach 1.82: its median budget is infinite, its lower end is not
    assert np.isinf(table["C_median"][2]) and np.isfinite(table["C_lower"][2])


def test_isoflop_targets_are_reached_along_its_path_which_has_no_floor():
    """``log L* = log L_opt - gamma z_C``: every target is reached, at a closed-form budget.

    With ``a = 0.6`` the law at ``N = D`` far off that path explodes, which marked draws
    unreachable; at a fixed ``N`` its loss falls, then rises, so no limit says either.
    """
    frame = design()
    rng = np.random.default_rng(0)
    draws = {
        "L_opt": 2.5 * np.exp(0.01 * rng.standard_normal(S)),
        "gamma": np.full(S, 0.05),
        "n_opt": np.zeros(S),
        "a": 0.6 + 0.02 * rng.standard_normal(S),
        "kappa": np.full(S, 0.02),
        "sigma": np.full(S, 0.01),
    }
    fit = fake_fit(frame, "isoflop", draws)
    top = decisions.fitted_compute(fit).max()
    loss = np.exp(np.log(2.5) - 0.05 * np.log(10 * top / (6 * np.exp(sum(fit.log_ref.values())))))
    table = bayescale.compute_for_target(fit, [loss], extrapolation="none")
    assert table["p_unreachable"].iloc[0] == 0
    np.testing.assert_allclose(table["C_median"].iloc[0], 10 * top, rtol=0.05)
    fixed = bayescale.compute_for_target(fit, [2.4], fixed_N=1e9, extrapolation="none")
    assert fixed["p_unreachable"].iloc[0] == 0 and np.isfinite(fixed["C_upper"].iloc[0])


def test_a_target_met_below_the_searched_budgets_needs_less_not_infinite(chinchilla_fit):
    """A loss reached at 1e-3 of the smallest fitted budget already is below the range."""
    smallest = decisions.fitted_compute(chinchilla_fit).min() * targets.TARGET_SEARCH[0]
    p = {key: v[:, None] for key, v in posterior(chinchilla_fit).items()}
    big_k, gamma = frontier(p)
    at_smallest = (p["E"] + big_k * (smallest / 6.0) ** -gamma)[:, 0]
    loss = np.quantile(at_smallest, 0.75)  # a quarter of the draws do not reach it there
    draws = targets.target_draws(chinchilla_fit, [loss], extrapolation="none")
    np.testing.assert_array_equal(draws["below_range"][:, 0], at_smallest <= loss)
    assert not (draws["out_of_range"] | draws["unreachable"]).any()
    table = bayescale.compute_for_target(chinchilla_fit, loss, ci=0.8, extrapolation="none")
    assert table["p_below_range"][0] == pytest.approx(0.75, abs=0.01)
    assert table["C_median"][0] == 0.0 and table["C_lower"][0] == 0.0
    assert smallest < table["C_upper"][0] < np.inf  # the others need more, and get there


def test_fixed_model_size_needs_tokens_from_the_closed_form(chinchilla_fit):
    """With N fixed: ``D = (B / (loss - E - A N^-alpha))^(1/beta)``; out of reach below that floor."""
    n = 7e10
    loss = np.array([2.0, 1.9])
    draws = targets.target_draws(chinchilla_fit, loss, fixed_N=n, extrapolation="none")
    p = {key: v[:, None] for key, v in posterior(chinchilla_fit).items()}
    floor = p["E"] + p["A"] * n ** -p["alpha"]
    with np.errstate(invalid="ignore"):
        tokens = (p["B"] / (loss - floor)) ** (1 / p["beta"])
    np.testing.assert_array_equal(draws["unreachable"], floor >= loss)
    assert 0 < draws["unreachable"][:, 1].mean() < 1  # 1.9 is out of reach at 7e10 for some
    top = decisions.fitted_compute(chinchilla_fit).max() * targets.TARGET_SEARCH[1]
    found = np.isfinite(draws["D"])
    np.testing.assert_array_equal(found, (floor < loss) & (6.0 * n * tokens <= top))
    np.testing.assert_array_equal(draws["out_of_range"], (floor < loss) & ~found)
    np.testing.assert_allclose(draws["D"][found], tokens[found], rtol=1e-9)
    np.testing.assert_allclose(draws["C"], 6.0 * n * draws["D"], rtol=1e-12)
    assert np.all(draws["N"][found] == n)
    # more compute than the optimal allocation needs for the same loss (or equal at N = N*)
    optimal = targets.target_draws(chinchilla_fit, loss, extrapolation="none")["C"]
    assert np.all(draws["C"][found] >= optimal[found] * (1 - 1e-9))
    # the table's N is the one fixed, even for a target no draw reaches (it was NaN)
    table = bayescale.compute_for_target(chinchilla_fit, [2.0, 1.5], fixed_N=n)
    assert table["p_unreachable"][1] == 1.0
    assert (table[["N_median", "N_lower", "N_upper"]] == n).all(axis=None)


def test_extrapolation_drift_enters_per_draw_as_a_line_in_log_reach(chinchilla_fit):
    loss = np.array([2.2, 1.95])
    drifted = targets.target_draws(chinchilla_fit, loss)
    plain = targets.target_draws(chinchilla_fit, loss, extrapolation="none")
    # 2.2 is reached inside the fitted budgets (reach < 1), where there is no drift
    assert np.nanmax(plain["reach"][:, 0]) < 1
    np.testing.assert_array_equal(drifted["C"][:, 0], plain["C"][:, 0])
    # beyond them each draw's loss carries s log r (s = b + omega z of that draw) and the
    # answer is the first budget where the drifted loss reaches the target
    slope = decisions.drift_per_efold(chinchilla_fit, "calibrated", S)
    assert (slope > 0).any() and (slope < 0).any()
    p = {key: v[:, None] for key, v in posterior(chinchilla_fit).items()}
    big_k, gamma = frontier(p)
    fitted = (chinchilla_fit.data.frame["N"] * chinchilla_fit.data.frame["D"]).max()

    def drifted_loss(c):  # c: shape (draws, budgets)
        reach = np.maximum(c / 6.0 / fitted, 1.0)
        return (p["E"] + big_k * (c / 6.0) ** -gamma) * reach ** slope[:, None]

    c = drifted["C"][:, 1:]
    found = np.isfinite(c[:, 0])
    assert found.mean() > 0.3 and not np.array_equal(c[found], plain["C"][found, 1:])
    np.testing.assert_allclose(drifted_loss(c)[found], 1.95, rtol=1e-10)
    below = c * np.exp(-np.linspace(0.05, 5.0, 50))
    assert np.all(drifted_loss(below)[found] > 1.95)  # no smaller budget reaches it
    # a positive drift can outpace the law's decline: those draws never reach the target
    lost = drifted["out_of_range"][:, 1]
    assert lost.any() and np.all(slope[lost] > 0)
    budgets = np.broadcast_to(np.geomspace(1e17, 1e32, 3000), (S, 3000))
    assert np.all(drifted_loss(budgets)[lost] > 1.95)
    table = bayescale.compute_for_target(chinchilla_fit, 1.95)
    np.testing.assert_allclose(table["p_out_of_range"], lost.mean())


def test_numeric_law_matches_the_closed_form():
    """data_constrained with ample unique tokens is Chinchilla: the numeric path agrees."""
    frame = design()
    frame["U"] = frame["D"] / np.tile([1.0, 2.0, 4.0, 8.0, 16.0], 4)
    n = 40
    draws = {key: v[:n] for key, v in chinchilla_draws(frame, spread=1.0).items()}
    draws |= {"r_d_star": np.full(n, 15.4), "r_n_star": np.full(n, 5.3)}
    fit = fake_fit(frame, "data_constrained", draws)
    out = targets.target_draws(fit, [2.0], unique_tokens=1e20, extrapolation="none")
    truth = budget_for(posterior(fit), 2.0)
    np.testing.assert_allclose(out["C"][:, 0], truth, rtol=1e-4)
    # scarce unique tokens: repeated data is worth less, so the same loss costs more
    scarce = targets.target_draws(fit, [2.0], unique_tokens=3e10, extrapolation="none")
    assert np.all((scarce["C"] > out["C"] * 1.01) | scarce["unreachable"])
    assert scarce["unreachable"].any()  # the asymptote with 3e10 unique tokens is above E


def test_targets_per_group():
    frame = pd.concat([design({"g": "x"}), design({"g": "y"})], ignore_index=True)
    draws = chinchilla_draws(frame, spread=0.5)
    e = draws.pop("E")
    draws["E"] = np.stack([e, e * 1.02], axis=1)
    pooling = dict.fromkeys(("a_ref", "b_ref", "alpha", "beta"), "shared") | {"E": "separate"}
    fit = fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling)
    for group in ("x", "y"):
        out = targets.target_draws(fit, [1.9], group=group, extrapolation="none")
        truth = budget_for(posterior(fit, group), 1.9)
        np.testing.assert_allclose(out["C"][:, 0], truth, rtol=1e-9)
    y = bayescale.compute_for_target(fit, 1.9, group="y")
    x = bayescale.compute_for_target(fit, 1.9, group="x")
    assert y["C_median"][0] > x["C_median"][0]
    with pytest.raises(SpecError, match="pass group="):
        bayescale.compute_for_target(fit, 1.9)


@pytest.mark.parametrize("loss", [0.0, -2.0, np.nan, np.inf, [2.0, -1.0], "low", []])
def test_bad_target_losses(chinchilla_fit, loss):
    with pytest.raises(SpecError, match="loss must be positive and finite target losses"):
        bayescale.compute_for_target(chinchilla_fit, loss)


def test_other_bad_target_arguments(chinchilla_fit):
    for fixed in (0.0, -7e10, np.nan, "big", True):
        with pytest.raises(SpecError, match="fixed_N must be a positive number"):
            bayescale.compute_for_target(chinchilla_fit, 2.0, fixed_N=fixed)
    with pytest.raises(SpecError, match="ci must be"):
        bayescale.compute_for_target(chinchilla_fit, 2.0, ci=1.0)
    with pytest.raises(SpecError, match="no unique-token input"):
        bayescale.compute_for_target(chinchilla_fit, 2.0, unique_tokens=1e12)
    with pytest.raises(SpecError, match="extrapolation must be"):
        bayescale.compute_for_target(chinchilla_fit, 2.0, extrapolation="maybe")
    x = np.geomspace(1e3, 1e6, 12)
    frame = pd.DataFrame({"x": x, "loss": 2.0 + x**-0.3})
    law = bayescale.get_law("power_law")
    draws = {name: np.full(S, 0.5) for name in law.parameters} | {"sigma": np.full(S, 0.01)}
    curve = fake_fit(frame, "power_law", draws)
    with pytest.raises(SpecError, match="'power_law'.*not model size N and tokens D"):
        bayescale.compute_for_target(curve, 2.0)
    with pytest.raises(SpecError, match="'power_law'.*not model size N and tokens D"):
        bayescale.prob_beats(curve, chinchilla_fit, at={"N": [1e9], "D": [1e10]})


# --- comparisons -------------------------------------------------------------------------


def only_e_varies(e, seed, values=BESIROGLU):
    """A Chinchilla fit whose draws differ only in E: loss_A - loss_B = E_A - E_B exactly."""
    frame = design()
    draws = chinchilla_draws(frame, spread=0.0, values=values)
    draws["E"] = np.asarray(e, float)
    return fake_fit(frame, "chinchilla", draws, random_seed=seed)


def test_prob_beats_with_disjoint_posteriors_is_certain():
    rng = np.random.default_rng(0)
    low = only_e_varies(1.70 + 0.01 * rng.standard_normal(S), seed=1)
    high = only_e_varies(1.90 + 0.01 * rng.standard_normal(S), seed=2)
    budgets = [1e19, 5.76e23, 1e26]
    out = bayescale.prob_beats(low, high, budgets, extrapolation="none")
    assert list(out["p_a_better"]) == [1.0, 1.0, 1.0]
    assert (out["difference_upper"] < 0).all()
    np.testing.assert_allclose(out["difference_median"], -0.2, atol=0.01)
    back = bayescale.prob_beats(high, low, budgets, extrapolation="none")
    assert list(back["p_a_better"]) == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(back["reach_a"], np.array(budgets) / (6.0 * 1.6e10 * 5e11))


def test_prob_beats_with_overlapping_posteriors_is_the_paired_share():
    rng = np.random.default_rng(1)
    e_a, e_b = 1.80 + 0.02 * rng.standard_normal(S), 1.81 + 0.02 * rng.standard_normal(S)
    fit_a, fit_b = only_e_varies(e_a, seed=3), only_e_varies(e_b, seed=4)
    out = bayescale.prob_beats(fit_a, fit_b, [1e21, 1e24], ci=0.5, extrapolation="none")
    ia, ib = versus.pair_draws(fit_a, fit_b, S, S)
    assert sorted(ia) == list(range(S)) and sorted(ib) == list(range(S))
    assert not np.array_equal(ia, ib)  # a seeded shuffle, not pairing by index
    diff = e_a[ia] - e_b[ib]
    np.testing.assert_allclose(out["p_a_better"], np.mean(diff < 0))
    np.testing.assert_allclose(out["difference_median"], np.median(diff), atol=1e-12)
    np.testing.assert_allclose(out["difference_lower"], np.quantile(diff, 0.25), atol=1e-12)
    # and it estimates P(E_A < E_B) of the independent posteriors (all pairs)
    every_pair = np.mean(e_a[:, None] < e_b[None, :])
    assert abs(out["p_a_better"][0] - every_pair) < 4 * np.sqrt(0.25 / S)
    # the same call pairs the same draws
    pd.testing.assert_frame_equal(
        out, bayescale.prob_beats(fit_a, fit_b, [1e21, 1e24], ci=0.5, extrapolation="none")
    )


def test_pairing_cuts_the_longer_posterior():
    fit_a, fit_b = only_e_varies(np.full(S, 1.8), seed=0), only_e_varies(np.full(S, 1.8), seed=0)
    ia, ib = versus.pair_draws(fit_a, fit_b, S, S // 2)
    assert len(ia) == len(ib) == S // 2 and len(set(ia)) == S // 2
    same, _ = versus.pair_draws(fit_a, fit_a, S, S)
    np.testing.assert_array_equal(same, np.arange(S))


@pytest.fixture(scope="module")
def grouped_fit():
    """Groups x, y differ by their own alpha; they swap order where N* passes N_ref."""
    frame = pd.concat([design({"g": "x"}), design({"g": "y"})], ignore_index=True)
    draws = chinchilla_draws(frame, spread=0.5)
    rng = np.random.default_rng(2)
    alpha = draws.pop("alpha")
    draws |= {
        "alpha": alpha[:, None] * np.exp(0.03 * rng.standard_normal((S, 2))),
        "alpha_mu": alpha,
        "alpha_tau": np.full(S, 0.3) + 0.01 * rng.random(S),
    }
    pooling = {"alpha": "pooled"} | dict.fromkeys(("E", "a_ref", "b_ref", "beta"), "shared")
    return fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling, random_seed=5)


def test_two_groups_of_one_fit_pair_the_same_draw(grouped_fit):
    rows = pd.DataFrame({"N": [1e8, 3e10, 1e11], "D": [2e9, 2e11, 2e12]})
    p_lower = grouped_fit.prob_lower(rows, "x", "y")["p_lower"].to_numpy()
    assert np.all((p_lower > 0.2) & (p_lower < 0.8))  # a shuffled pairing would change these
    for extrapolation in ("none", "calibrated"):  # one fit: the same drift for both groups
        out = bayescale.prob_beats(
            grouped_fit, grouped_fit, at=rows, group_a="x", group_b="y", extrapolation=extrapolation
        )
        np.testing.assert_allclose(out["p_a_better"], p_lower)
        assert list(out.columns[:2]) == ["N", "D"]
    np.testing.assert_allclose(out["reach_a"], 6.0 * rows["N"] * rows["D"] / (6.0 * 1.6e10 * 5e11))
    # at their optimal allocations, the same draw gives both answers
    a = decisions.optimal_draws(grouped_fit, [1e19, 1e23], group="x")["loss_opt"]
    b = decisions.optimal_draws(grouped_fit, [1e19, 1e23], group="y")["loss_opt"]
    out = bayescale.prob_beats(grouped_fit, grouped_fit, [1e19, 1e23], group_a="x", group_b="y")
    np.testing.assert_allclose(out["p_a_better"], np.mean(a < b, axis=0))
    with pytest.raises(SpecError, match="same fit with the same group"):
        bayescale.prob_beats(grouped_fit, grouped_fit, 1e21, group_a="x", group_b="x")


def test_two_new_groups_of_one_fit_are_drawn_apart(grouped_fit):
    """Each new label its own draws from the population (they were one set, compared with itself)."""
    a, b = (decisions.law_parameters(grouped_fit, g) for g in ("new1", "new2"))
    assert not np.allclose(a["alpha"], b["alpha"])
    np.testing.assert_array_equal(
        a["alpha"], decisions.law_parameters(grouped_fit, "new1")["alpha"]
    )
    out = bayescale.prob_beats(
        grouped_fit, grouped_fit, [1e23], group_a="new1", group_b="new2", extrapolation="none"
    )
    assert 0.2 < out["p_a_better"].iloc[0] < 0.8  # exchangeable groups; it was 0
    assert out["difference_lower"].iloc[0] < 0 < out["difference_upper"].iloc[0]


def test_reach_counts_the_fitted_budgets_with_the_budgets_flops_per_token(grouped_fit):
    """With ``flops_per_token=3`` a budget is set against ``3 N D`` of the runs, as the drift is."""
    top = 1.6e10 * 5e11  # the design's largest N D
    kwargs = {"group": "x", "flops_per_token": 3.0}
    assert bayescale.compute_optimal(grouped_fit, [3 * top], **kwargs)["reach"].iloc[0] == 1.0
    out = bayescale.prob_beats(
        grouped_fit, grouped_fit, [6 * top], group_a="x", group_b="y", flops_per_token=3.0
    )
    np.testing.assert_allclose(out[["reach_a", "reach_b"]].iloc[0], [2.0, 2.0])


def test_a_number_label_and_its_text_are_one_group():
    frame = pd.concat([design({"g": 1}), design({"g": 2})], ignore_index=True)
    draws = chinchilla_draws(frame, spread=0.5)
    pooling = dict.fromkeys(bayescale.get_law("chinchilla").parameters, "shared")
    fit = fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling)
    for same in ((1, "1"), ("1", 1)):
        with pytest.raises(SpecError, match="same fit with the same group"):
            bayescale.prob_beats(fit, fit, 1e21, group_a=same[0], group_b=same[1])
        with pytest.raises(SpecError, match="same fit with the same group"):
            bayescale.crossover(fit, fit, (1e18, 1e24), group_a=same[0], group_b=same[1])


def test_prob_beats_at_given_allocations_uses_each_fits_prediction():
    rng = np.random.default_rng(3)
    frame = design()
    fit_a = fake_fit(frame, "chinchilla", chinchilla_draws(frame, spread=1.0, seed=1))
    fit_b = fake_fit(frame, "chinchilla", chinchilla_draws(frame, spread=1.0, seed=2))
    rows = pd.DataFrame({"N": 10 ** rng.uniform(8, 11, 4), "D": 10 ** rng.uniform(10, 13, 4)})
    out = bayescale.prob_beats(fit_a, fit_b, at=rows, extrapolation="none")
    la = fit_a.predictive_draws(rows, kind="mean", extrapolation="none")[1]
    lb = fit_b.predictive_draws(rows, kind="mean", extrapolation="none")[1]
    ia, ib = versus.pair_draws(fit_a, fit_b, S, S)
    np.testing.assert_allclose(out["p_a_better"], np.mean(la[ia] < lb[ib], axis=0))
    np.testing.assert_allclose(out["difference_median"], np.median(la[ia] - lb[ib], axis=0))


def test_bad_comparison_arguments(chinchilla_fit, grouped_fit):
    other = only_e_varies(np.full(S, 1.8), seed=1)
    with pytest.raises(SpecError, match="exactly one of C= .* and at="):
        bayescale.prob_beats(chinchilla_fit, other)
    with pytest.raises(SpecError, match="exactly one of C="):
        bayescale.prob_beats(chinchilla_fit, other, 1e21, at={"N": [1e9], "D": [1e10]})
    with pytest.raises(SpecError, match="C must be"):
        bayescale.prob_beats(chinchilla_fit, other, -1e21)
    with pytest.raises(SpecError, match="flops_per_token= and unique_tokens= are for budgets"):
        bayescale.prob_beats(chinchilla_fit, other, at={"N": [1e9], "D": [1e10]}, flops_per_token=8)
    with pytest.raises(SpecError, match="neither law has a unique-token input"):
        bayescale.prob_beats(chinchilla_fit, other, 1e21, unique_tokens=1e12)
    with pytest.raises(SpecError, match=r"groups \('g'"):
        bayescale.prob_beats(grouped_fit, other, 1e21)
    with pytest.raises(SpecError, match="no groups"):
        bayescale.prob_beats(chinchilla_fit, grouped_fit, 1e21, group_a="x", group_b="y")
    with pytest.raises(SpecError, match="ci must be"):
        bayescale.prob_beats(chinchilla_fit, other, 1e21, ci=0)
    for bad in ((1e24, 1e20), (1e20, 1e20), (0, 1e20), (1e20,), (1e20, 1e21, 1e22), "wide"):
        with pytest.raises(SpecError, match="C_range must be"):
            bayescale.crossover(chinchilla_fit, other, bad)


# --- crossover ---------------------------------------------------------------------------

SLOW = {"E": 1.90, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
"""Ahead at small budgets, but with the higher floor: overtaken by FAST."""
FAST = {"E": 1.70, "A": 800.0, "B": 800.0, "alpha": 0.3, "beta": 0.3}


def crossing(a, b, k=6.0):
    """Where ``E_a + K_a x = E_b + K_b x`` with ``x = (C/k)^-gamma`` (equal exponents)."""
    (ka, gamma), (kb, _) = frontier(a, k), frontier(b, k)
    return k * ((a["E"] - b["E"]) / (kb - ka)) ** (-1 / gamma)


def test_crossover_of_laws_designed_to_cross():
    frame = design()
    slow = fake_fit(frame, "chinchilla", chinchilla_draws(frame, values=SLOW), random_seed=1)
    fast = fake_fit(frame, "chinchilla", chinchilla_draws(frame, values=FAST), random_seed=2)
    truth = crossing(SLOW, FAST)
    assert 1e24 < truth < 1e25
    out = bayescale.crossover(slow, fast, (1e18, 1e28), extrapolation="none")
    np.testing.assert_allclose(out[["median", "lower", "upper"]], truth, rtol=1e-9)
    assert out["p_no_crossing"] == 0 and out["p_a_better_after"] == 0
    np.testing.assert_allclose(out["reach_a"], truth / (6.0 * 1.6e10 * 5e11))
    flipped = bayescale.crossover(fast, slow, (1e18, 1e28), extrapolation="none")
    assert flipped["p_a_better_after"] == 1 and flipped["median"] == pytest.approx(truth)
    # P(A beats B) flips there
    near = bayescale.prob_beats(slow, fast, [truth / 1.1, truth * 1.1], extrapolation="none")
    assert list(near["p_a_better"]) == [1.0, 0.0]
    # no crossing inside a range below it
    below = bayescale.crossover(slow, fast, (1e18, truth / 2), extrapolation="none")
    assert below["p_no_crossing"] == 1 and np.isnan(below["median"])


def test_crossover_posterior_over_draws():
    frame = design()
    slow = fake_fit(frame, "chinchilla", chinchilla_draws(frame, 0.3, 1, SLOW), random_seed=1)
    fast = fake_fit(frame, "chinchilla", chinchilla_draws(frame, 0.3, 2, FAST), random_seed=2)
    draws = versus.crossover_draws(slow, fast, (1e18, 1e28), extrapolation="none")
    ia, ib = versus.pair_draws(slow, fast, S, S)
    big_a, gamma_a = frontier(posterior(slow))
    big_b, gamma_b = frontier(posterior(fast))
    e_a, e_b = posterior(slow)["E"], posterior(fast)["E"]

    def gap(c):  # log L*_A - log L*_B, paired
        x = c / 6.0
        return np.log(e_a[ia] + big_a[ia] * x ** -gamma_a[ia]) - np.log(
            e_b[ib] + big_b[ib] * x ** -gamma_b[ib]
        )

    c = draws["C"]
    assert np.isfinite(c).all()
    np.testing.assert_allclose(gap(c), 0.0, atol=1e-10)
    assert np.all(gap(c / 1.5) < 0) and np.all(gap(c * 1.5) > 0)
    out = bayescale.crossover(slow, fast, (1e18, 1e28), ci=0.8, extrapolation="none")
    np.testing.assert_allclose(out[["lower", "upper"]], np.quantile(c, [0.1, 0.9]), rtol=1e-12)
    # beyond the data, the two fits' independent drifts widen the answer
    drifted = bayescale.crossover(slow, fast, (1e18, 1e28), ci=0.8)
    assert drifted["upper"] / drifted["lower"] > out["upper"] / out["lower"]


def test_two_groups_cross_where_their_exponents_swap_order(grouped_fit):
    out = bayescale.crossover(grouped_fit, grouped_fit, (1e17, 1e27), group_a="x", group_b="y")
    assert out["p_no_crossing"] == 0
    # one fit shares its drift between groups: the crossover does not depend on it
    plain = bayescale.crossover(
        grouped_fit, grouped_fit, (1e17, 1e27), group_a="x", group_b="y", extrapolation="none"
    )
    pd.testing.assert_series_equal(out, plain)
    # after the crossing, the group with the larger alpha is ahead
    draws = versus.crossover_draws(grouped_fit, grouped_fit, (1e17, 1e27), group_a="x", group_b="y")
    alpha = grouped_fit.draws(["alpha"])["alpha"]
    np.testing.assert_array_equal(draws["a_better_after"], alpha[:, 0] > alpha[:, 1])


def test_first_crossing_refines_the_first_bracketing_cell():
    """``cos(x) = a`` crosses many times on [0, 20]: the first cell is the one refined."""
    grid = np.linspace(0.0, 20.0, 41)
    a = np.array([0.3, -0.5, 2.0])
    values = np.cos(grid)[None, :] - a[:, None]
    down = (values[:, :-1] > 0) & (values[:, 1:] <= 0)
    x = targets.first_crossing(down, grid, lambda x, a: np.cos(x) - a, [a])
    np.testing.assert_allclose(x[:2], np.arccos(a[:2]), rtol=1e-12)
    assert np.isnan(x[2])  # cos never reaches 2
    up = (values[:, :-1] <= 0) & (values[:, 1:] > 0)
    x = targets.first_crossing(up, grid, lambda x, a: np.cos(x) - a, [a])
    np.testing.assert_allclose(x[:2], 2 * np.pi - np.arccos(a[:2]), rtol=1e-12)


# ------------------------------------------------------------- accuracy targets (two stages)


@pytest.fixture(scope="module")
def accuracy_fit():
    """A ``downstream`` fit (4-way task, chance 0.25) of accuracy on loss: 300 draws."""
    law = bayescale.get_law("downstream", floor=0.25)
    frame = pd.DataFrame({"L": np.linspace(2.0, 3.2, 9), "acc": np.linspace(0.7, 0.4, 9)})
    rng = np.random.default_rng(4)
    draws = {
        "r_ref": 0.5 + 0.03 * rng.standard_normal(300),
        "slope_ref": 0.6 * np.exp(0.1 * rng.standard_normal(300)),
        "headroom": 0.8 + 0.02 * rng.standard_normal(300),
        "phi": np.full(300, 200.0),
    }
    return fake_fit(frame, law, draws, y="acc", likelihood="beta")


def test_downstream_loss_for_inverts_the_law(accuracy_fit):
    law, ref = accuracy_fit.law, accuracy_fit.log_ref
    p = decisions.law_parameters(accuracy_fit)
    ceiling = law.derived(NUMPY, p, ref)["ceiling"]
    acc = np.array([0.3, 0.5, 0.7])
    loss = law.loss_for({k: v[:, None] for k, v in p.items()}, ref, acc[None, :])
    back = np.exp(
        law.log_mean(NUMPY, {k: v[:, None] for k, v in p.items()}, {"L": loss / np.exp(ref["L"])})
    )
    np.testing.assert_allclose(back, np.broadcast_to(acc, back.shape), rtol=1e-10)
    assert np.all(np.diff(loss, axis=1) < 0)  # more accuracy needs less loss
    column = {k: v[:, None] for k, v in p.items()}
    assert np.isinf(law.loss_for(column, ref, np.array([[0.2]]))).all()  # below chance
    assert np.isnan(law.loss_for(column, ref, (ceiling + 1e-6)[:, None])).all()


def test_accuracy_target_is_the_loss_target_of_each_paired_draw(chinchilla_fit, accuracy_fit):
    acc = np.array([0.5, 0.6, 0.7])
    table = bayescale.compute_for_accuracy(
        chinchilla_fit, accuracy_fit, acc, ci=0.8, extrapolation="none"
    )
    # the same pairing of draws, then each draw's closed-form budget for its own loss
    rng = np.random.default_rng(chinchilla_fit.spec.random_seed)
    i_loss, i_acc = two_stage.pair_draws(S, 300, rng)
    p_acc = {k: v[i_acc, None] for k, v in decisions.law_parameters(accuracy_fit).items()}
    needed = accuracy_fit.law.loss_for(p_acc, accuracy_fit.log_ref, acc[None, :])
    p = {k: v[i_loss, None] for k, v in posterior(chinchilla_fit).items()}
    budget = np.where(np.isnan(budget_for(p, needed)), np.inf, budget_for(p, needed))
    for row in range(len(acc)):
        for column, q in (("C_median", 0.5), ("C_lower", 0.1), ("C_upper", 0.9)):
            expected = np.quantile(np.minimum(budget[:, row], 1e308), q)
            expected = np.inf if expected == 1e308 else expected
            np.testing.assert_allclose(table[column].iloc[row], expected, rtol=1e-6)
        np.testing.assert_allclose(table["loss_median"].iloc[row], np.median(needed[:, row]))
    np.testing.assert_allclose(table["p_unreachable"], np.mean(p["E"] >= needed, axis=0))
    assert (table["p_chance"] == 0).all()
    assert table["C_median"].is_monotonic_increasing  # a higher accuracy costs more


def test_accuracy_at_chance_is_free_and_beyond_the_ceiling_unreachable(
    chinchilla_fit, accuracy_fit
):
    table = bayescale.compute_for_accuracy(chinchilla_fit, accuracy_fit, [0.2, 0.999])
    free, never = table.iloc[0], table.iloc[1]
    assert free["p_chance"] == 1 and free["C_upper"] == 0 and free["p_unreachable"] == 0
    assert never["p_unreachable"] == 1 and np.isinf(never["C_lower"])
    # no loss reaches a target above the ceiling, any loss one at chance: the hard end and
    # the easy end of the loss needed (it was +inf for both)
    assert never["loss_upper"] == -np.inf and free["loss_lower"] == np.inf


@pytest.mark.parametrize("accuracy", [0.0, 1.0, 1.5, "x", [], [[0.5]]])
def test_bad_target_accuracies(chinchilla_fit, accuracy_fit, accuracy):
    with pytest.raises(SpecError, match="accuracy must be target accuracies in"):
        bayescale.compute_for_accuracy(chinchilla_fit, accuracy_fit, accuracy)


def test_a_grouped_accuracy_fit_is_named_by_accuracy_group(chinchilla_fit, accuracy_fit):
    """The message said ``group=``, which is the loss fit's: following it changed nothing."""
    frame = accuracy_fit.data.frame
    both = pd.concat([frame.assign(task="a"), frame.assign(task="b")], ignore_index=True)
    draws = {k: np.stack([v, v], axis=1) for k, v in decisions.law_parameters(accuracy_fit).items()}
    pooling = dict.fromkeys(accuracy_fit.law.parameters, "separate")
    grouped = fake_fit(
        both,
        accuracy_fit.law,
        draws | {"phi": np.full(300, 200.0)},
        y="acc",
        likelihood="beta",
        group="task",
        pooling=pooling,
    )
    with pytest.raises(SpecError, match="pass accuracy_group= one of them"):
        bayescale.compute_for_accuracy(chinchilla_fit, grouped, 0.5)
    one = bayescale.compute_for_accuracy(chinchilla_fit, grouped, 0.5, accuracy_group="a")
    alone = bayescale.compute_for_accuracy(chinchilla_fit, accuracy_fit, 0.5)
    np.testing.assert_allclose(one["C_median"], alone["C_median"], rtol=1e-6)


def test_accuracy_targets_need_a_loss_fit_and_an_accuracy_law(chinchilla_fit, accuracy_fit):
    with pytest.raises(SpecError, match="chaining needs a law of the loss alone"):
        bayescale.compute_for_accuracy(accuracy_fit, chinchilla_fit, 0.5)
    with pytest.raises(SpecError, match="must be a bayescale.ScalingFit"):
        bayescale.compute_for_accuracy(chinchilla_fit, "fit.nc", 0.5)
