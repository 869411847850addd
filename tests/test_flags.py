"""Nothing hidden (issue 23, item 6): every answer from a failed fit says so.

Predictions, averages, comparisons and decisions drawn from a fit that failed its
convergence checks carry ``attrs["converged"] = False`` (and a ``converged`` column in
the comparison) and give one :class:`ConvergenceWarning` naming the fit and the checks it
failed; answers from good fits carry ``True`` and warn about nothing. Fake fits (no
sampling): ``bad``'s two chains disagree on alpha, so r-hat fails.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import test_report
from test_plots import nd_design

import bayescale
from bayescale import ConvergenceWarning
from bayescale.cli import main
from bayescale.testing import fake_fit

ROWS = {"N": [1e9, 7e10], "D": [2e10, 1.4e12]}
good, bad = test_report.good, test_report.bad  # fixtures: a fit that passes, one that fails


@pytest.fixture(scope="module")
def other():
    fit = fake_fit(
        nd_design(), "chinchilla", test_report.chinchilla_draws(test_report.DRAWS, 2), chains=2
    )
    assert fit.converged
    return fit


def one_warning(call):
    """The answer of ``call()`` and the text of the one ConvergenceWarning it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = call()
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1, messages
    return answer, messages[0]


def silent(call):
    """The answer of ``call()``, which must give no ConvergenceWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return call()


ANSWERS = {
    "prediction": lambda fit: fit.predict(ROWS),
    "compute-optimal allocation": lambda fit: bayescale.compute_optimal(fit, [1e21, 1e23]),
    "frontier exponents": lambda fit: bayescale.frontier_exponents(fit),
    "compute for a target": lambda fit: bayescale.compute_for_target(fit, [2.5, 2.2]),
}


@pytest.mark.parametrize("what", list(ANSWERS))
def test_answers_from_a_failed_fit_carry_it_and_warn_once(what, good, bad):
    table, message = one_warning(lambda: ANSWERS[what](bad))
    assert message.startswith(f"{what} from a fit that failed its convergence checks")
    assert "chinchilla fit: max r-hat" in message
    flags = ("converged", "unconverged")
    assert {k: table.attrs[k] for k in flags} == {
        "converged": False,
        "unconverged": ["chinchilla fit"],
    }
    table = silent(lambda: ANSWERS[what](good))
    assert {k: table.attrs[k] for k in flags} == {"converged": True, "unconverged": []}


def test_two_recipe_answers_name_the_recipe_that_failed(good, other, bad):
    table, message = one_warning(lambda: bayescale.prob_beats(good, bad, C=[1e21]))
    assert "B (chinchilla fit): max r-hat" in message and "A (" not in message
    assert table.attrs["unconverged"] == ["B (chinchilla fit)"]
    result, message = one_warning(lambda: bayescale.crossover(bad, good, (1e19, 1e25)))
    assert message.startswith("crossover from a fit") and "A (chinchilla fit)" in message
    assert result.attrs["converged"] is False
    assert silent(lambda: bayescale.prob_beats(good, other, C=[1e21])).attrs["converged"]


def test_comparison_and_average_mark_the_fit_that_failed(good, bad):
    fits = {"good": good, "bad": bad}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ParetoKWarning)
        table, message = one_warning(lambda: bayescale.compare(fits))
    assert table["converged"].to_dict() == {"good": True, "bad": False}
    assert message.startswith("comparison from a fit") and "bad: max r-hat" in message
    averaged = bayescale.average(fits, weights={"good": 0.5, "bad": 0.5})
    table, message = one_warning(lambda: averaged.predict(ROWS))
    assert message.startswith("averaged prediction from a fit") and "bad: max r-hat" in message
    assert table.attrs["unconverged"] == ["bad"]
    # and, like predict, which extrapolation error each component carries beyond the data
    table, _ = one_warning(lambda: averaged.predict(ROWS, extrapolation="population"))
    notes = table.attrs["extrapolation"].split("; ")
    assert [n.split(": ")[0] for n in notes] == ["good", "bad"] and "population" in notes[0]


def test_cli_says_it_once_and_exits_1(good, bad, tmp_path, capsys):
    for label, fit in (("good", good), ("bad", bad)):
        fit.save(tmp_path / f"{label}.nc")
    at = ["--at", "N=1e9,D=2e10"]
    assert main(["predict", str(tmp_path / "good.nc"), *at]) == 0
    assert "WARNING" not in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "bad.nc"), *at]) == 1
    err = capsys.readouterr().err
    assert err.count(f"WARNING: fit {tmp_path / 'bad.nc'} did not converge") == 1
    assert "ConvergenceWarning" not in err  # the library's warning is not repeated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ParetoKWarning)
        status = main(["compare", str(tmp_path / "good.nc"), str(tmp_path / "bad.nc")])
    assert status == 1  # it used to exit 0 whatever the fits
    out, err = capsys.readouterr()
    assert "converged" in out
    # of several fits, the warning names the one that failed (it used to say "the fit")
    assert f"WARNING: fit {tmp_path / 'bad.nc'} did not" in err and "good.nc" not in err


@pytest.mark.parametrize("shift", [0.0, 0.05])
def test_a_contrast_of_groups_carries_the_fit_verdict(shift):
    # E by group: x and y; ``shift`` moves the second chain's alpha, so r-hat fails at 0.05
    draws = test_report.chinchilla_draws(test_report.DRAWS, 3, shift=shift)
    draws["E"] = np.stack([draws["E"], draws["E"] * 1.001], axis=1)  # both fit the data
    pooling = dict.fromkeys(["alpha", "a_ref", "b_ref", "beta"], "shared") | {"E": "separate"}
    design = pd.concat([nd_design("x"), nd_design("y")], ignore_index=True)
    fit = fake_fit(design, "chinchilla", draws, group="g", pooling=pooling, chains=2)
    if fit.converged:
        diff = silent(lambda: fit.contrast("E", "y", "x"))
    else:
        diff, message = one_warning(lambda: fit.contrast("E", "y", "x"))
        assert message.startswith("contrast from a fit that failed") and "r-hat" in message
    assert diff["p_greater"] == 1.0
    assert diff.attrs["converged"] is (shift == 0.0)
