"""Sensitivity of a decision (issue 21, item 6): one row per law x likelihood x subset.

The fits are fake (no sampling): ``fit_many`` is replaced by one that returns a fit of
each task's rows whose draws are the same jittered truth, so every row's answer is the
compute-optimal answer of a known posterior, and the table's assembly is what is tested.
"""

import warnings

import numpy as np
import pytest
import test_report
from test_plots import nd_design

import bayescale
from bayescale.evaluation import sensitivity as sensitivity_mod
from bayescale.testing import fake_fit

# fake fits whose chains may disagree on a subset: the answers' warnings are checked once
# below, and ignored where they are not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")
C = 5.76e23


def fake(runs, law):
    """A fake fit of ``runs``: the report tests' converged draws (its chains may disagree here)."""
    return fake_fit(runs, law, test_report.chinchilla_draws(test_report.DRAWS, 0), chains=2)


@pytest.fixture
def fake_batch(monkeypatch):
    """``fit_many`` fitting nothing: task -> a fake fit of its rows (or an error)."""
    seen = []

    def fit_many(tasks, client=None, progress=True, errors="raise"):
        seen.append(client)
        out = []
        for task in tasks:
            if len(task["data"]) < 10:
                out.append(bayescale.DataError("too few rows for this law"))
                continue
            out.append(fake(task["data"], task["law"]))
        return out

    monkeypatch.setattr(sensitivity_mod, "fit_many", fit_many)
    return seen


def test_every_combination_answers_as_compute_optimal_on_its_fit(fake_batch):
    runs = nd_design()
    compute = 6 * runs["N"] * runs["D"]
    low, high = np.quantile(compute, [0.25, 0.75])
    masks = {
        "all runs": compute > 0,
        f"budgets <= {low:.3g} dropped": compute > low,
        f"budgets >= {high:.3g} dropped": compute < high,
    }
    fits = {name: fake(runs[mask.to_numpy()], "chinchilla") for name, mask in masks.items()}
    failed = [name for name, fit in fits.items() if not fit.converged]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = bayescale.sensitivity(runs, C, laws=["chinchilla"], likelihoods=["normal"])
    said = [str(w.message) for w in caught if w.category is bayescale.ConvergenceWarning]
    assert len(said) == (1 if failed else 0)  # once for the table, whatever the rows
    assert fake_batch == [False]  # client=None: fitted here, one after another
    assert list(table.index.get_level_values("subset")) == list(masks)
    assert list(table["runs"]) == [int(mask.sum()) for mask in masks.values()]
    for name, fit in fits.items():
        expected = bayescale.compute_optimal(fit, C).iloc[0]
        row = table.loc[("chinchilla", "normal", name)]
        assert row["median"] == expected["tokens_per_param_median"]
        assert row["lower"] < row["median"] < row["upper"]
        assert row["reach"] == pytest.approx(C / (6 * fit.data.frame.eval("N * D")).max())
        assert row["converged"] == fit.converged
    assert table.attrs["unconverged"] == [f"chinchilla, normal, {name}" for name in failed]
    assert table.attrs["answer"] == "tokens_per_param" and table.attrs["C"] == C


def test_a_failed_own_backtest_is_named(monkeypatch, tmp_path, capsys):
    """Its warning was silenced with the fits', so neither the table nor the CLI said it."""
    import dataclasses

    from bayescale import extrapolation
    from bayescale.cli import main

    own = extrapolation.default()
    failed = dataclasses.replace(own, source=f"{own.source}; {extrapolation.UNCONVERGED_BACKTEST}")

    def fit_many(tasks, client=None, progress=True, errors="raise"):
        draws = test_report.chinchilla_draws(test_report.DRAWS, 0)
        return [
            fake_fit(task["data"], task["law"], draws, chains=2, own_extrapolation=failed)
            for task in tasks
        ]

    monkeypatch.setattr(sensitivity_mod, "fit_many", fit_many)
    options = {"laws": ["chinchilla"], "likelihoods": ["normal"]}
    with pytest.warns(bayescale.ConvergenceWarning, match="the own backtests of"):
        table = bayescale.sensitivity(nd_design(), C, subsets={"all": np.full(20, True)}, **options)
    assert table.attrs["own_backtest_failed"] == ["chinchilla, normal, all"]
    nd_design().to_csv(tmp_path / "runs.csv", index=False)
    args = ["sensitivity", str(tmp_path / "runs.csv"), "--compute", "5.76e23", "--quiet"]
    assert main([*args, "--law", "chinchilla", "--likelihood", "normal"]) == 1
    assert "(its own backtest)" in capsys.readouterr().err


def test_a_refused_fit_is_a_row_with_its_error(fake_batch):
    runs = nd_design()
    few = np.zeros(len(runs), bool)
    few[:5] = True
    table = bayescale.sensitivity(
        runs,
        C,
        laws=["chinchilla"],
        likelihoods=["normal"],
        subsets={"all": np.ones(len(runs), bool), "five runs": few},
        answer="N_opt",
    )
    assert table.loc[("chinchilla", "normal", "five runs"), "error"] == "too few rows for this law"
    assert np.isnan(table.loc[("chinchilla", "normal", "five runs"), "median"])
    assert table.loc[("chinchilla", "normal", "all"), "error"] == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"answer": "loss"}, "answer must be one of N_opt, D_opt"),
        ({"group": "g"}, "ungrouped"),
        ({"laws": ["power_law"]}, r"laws \['power_law'\] have no inputs N and D"),
        ({"subsets": {"half": [True, False]}}, "must be 20 booleans"),
        ({"subsets": {"none": np.zeros(20, bool)}}, "keeps no row"),
        ({"laws": "chinchilla"}, "non-empty lists of names"),
        ({"likelihoods": []}, "non-empty lists of names"),
    ],
)
def test_bad_questions_are_named_before_any_fit(fake_batch, options, message):
    with pytest.raises(bayescale.BayescaleError, match=message):
        bayescale.sensitivity(nd_design(), C, **options)
    assert fake_batch == []
    for budget in ([1e21, 1e22], "1e23", -1.0, np.inf):
        with pytest.raises(bayescale.SpecError, match="one positive FLOP budget"):
            bayescale.sensitivity(nd_design(), budget)


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        (lambda runs: runs.assign(loss=runs["loss"].where(runs.index != 3)), {}, r"1 row \(3\)"),
        (lambda runs: runs.assign(loss=-runs["loss"]), {}, "response"),
        (lambda runs: runs, {"y": "Loss"}, r"missing column\(s\) \['Loss'\]"),
    ],
)
def test_a_bad_response_is_named_before_any_fit(fake_batch, change, options, message):
    # it used to be fitted subset by subset, each row of the table an error (the CLI: exit 1)
    with pytest.raises(bayescale.DataError, match=message):
        bayescale.sensitivity(change(nd_design()), C, **options)
    assert fake_batch == []


def test_cli_prints_the_table_and_exits_1_when_a_fit_failed(fake_batch, tmp_path, capsys):
    from bayescale.cli import main

    nd_design().to_csv(tmp_path / "runs.csv", index=False)
    args = ["sensitivity", str(tmp_path / "runs.csv"), "--compute", "5.76e23", "--quiet"]
    status = main([*args, "--law", "chinchilla", "--likelihood", "normal"])
    out, err = capsys.readouterr()
    assert "tokens_per_param at C = 5.76e+23 FLOPs, 90% intervals:" in out
    assert out.count("chinchilla") >= 1 and "budgets <=" in out and "budgets >=" in out
    table = bayescale.sensitivity(nd_design(), C, laws=["chinchilla"], likelihoods=["normal"])
    assert status == (0 if table["converged"].all() else 1)
    assert ("WARNING: fits that did not converge" in err) == (status == 1)
    assert main([*args, "--answer", "N_opt", "--law", "power_law"]) == 2
    assert "no inputs N and D" in capsys.readouterr().err
