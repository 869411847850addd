import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale.cli import main


def test_laws_command(capsys):
    assert main(["laws"]) == 0
    out = capsys.readouterr().out
    assert "chinchilla" in out and "power_law" in out and "alpha" in out


def test_fit_command_saves_a_loadable_fit(sim_sweep, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    sim_sweep.rename(columns={"N": "params"})[["params", "C", "loss"]].to_csv(csv, index=False)
    path = tmp_path / "fit.nc"
    assert main(["fit", str(csv), "--input", "N=params", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert "r_hat" in out and "converged" in out
    assert bayescale.load(path).law.name == "chinchilla"
    top = sim_sweep["C"].max()
    at = [f"params={sim_sweep['N'].max():g},C={c:g}" for c in (top / 10, top, 100 * top)]
    assert main(["predict", str(path), *[a for c in at for a in ("--at", c)]]) == 0
    out = capsys.readouterr().out
    assert "reach" in out and "extrapolation_share" in out and "rows with reach > 1" in out
    assert main(["predict", str(path), "--at", at[2], "--extrapolation", "none"]) == 0
    assert "rows with reach > 1" not in capsys.readouterr().out
    err = cli_error(capsys, ["predict", str(path), "--at", "params=1e9", "--at", "C=1e21"])
    assert "every --at must name the same columns" in err


def cli_error(capsys, argv):
    """The one-line error ``main`` prints for ``argv``, which must exit with status 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bayescale {argv[0]}: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--input", "N"], "--input expects NAME=COLUMN, got 'N'"),
        (["--input", "=X"], "--input expects NAME=COLUMN"),
        (["--input", "N=a", "--input", "N=b"], "--input gives 'N' twice ('a' and 'b')"),
        (["--ci", "1.5"], "ci must be a probability in (0, 1), got 1.5"),
        (["--save", "no_such_folder/fit.nc"], "folder 'no_such_folder' does not exist"),
    ],
)
def test_fit_command_refuses_bad_options_before_fitting(tmp_path, capsys, option, expected):
    """Each is refused in one line before the CSV is read (it does not exist), so before a fit."""
    assert expected in cli_error(capsys, ["fit", str(tmp_path / "x.csv"), *option])


def test_unreadable_csv_is_one_line_error(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "is not a readable CSV table" in cli_error(capsys, ["fit", str(empty)])
    header_only = tmp_path / "header.csv"
    header_only.write_text("N,D,loss\n")
    assert "the table has no rows" in cli_error(capsys, ["fit", str(header_only)])


@pytest.fixture(scope="module")
def curve_csv(tmp_path_factory):
    """A 30-point simulated power-law curve, as a CSV a user would pass."""
    from bayescale.simulate import from_law

    x = np.geomspace(1e7, 1e10, 30)
    law = bayescale.get_law("power_law")
    df = from_law(law, {"E": 1.8, "a_ref": 0.6, "alpha": 0.3}, {"x": x}, noise=0.01)
    path = tmp_path_factory.mktemp("cli") / "curve.csv"
    df[["x", "loss"]].rename(columns={"x": "examples"}).to_csv(path, index=False)
    return path


def test_backtest_command_scores_laws_and_baseline(curve_csv, tmp_path, capsys):
    out_csv = tmp_path / "held_out.csv"
    args = ["backtest", str(curve_csv), "--law", "power_law", "--law", "exponential"]
    args += ["--input", "x=examples", "--split", "examples=1e9", "--n-bootstrap", "20"]
    assert main([*args, "--save-predictions", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "Held-out rows: 10 (fitted: 20)" in out
    for text in ("stacked average", "baseline exponential", "coverage_90 lower", "minus"):
        assert text in out, text
    held = pd.read_csv(out_csv)
    assert len(held) == 10 and (held["examples"] > 1e9).all()
    assert (held["power_law: lower"] < held["power_law: upper"]).all()


def test_backtest_command_refuses_bad_splits_by_name(curve_csv, capsys):
    args = ["backtest", str(curve_csv), "--law", "power_law", "--input", "x=examples"]
    assert "COLUMN=NUMBER" in cli_error(capsys, [*args, "--split", "examples=big"])
    assert "split column 'held_out' is missing" in cli_error(capsys, [*args, "--split", "held_out"])
    split = ["--split", "examples=1e9"]
    assert "--by 'run': no such column" in cli_error(capsys, [*args, *split, "--by", "run"])
    out = ["--save-predictions", "no_such_folder/p.csv"]
    assert "folder 'no_such_folder' does not exist" in cli_error(capsys, [*args, *split, *out])


def test_backtest_command_reach_split(curve_csv, capsys):
    """``--reach examples=10`` fits up to the largest / 10 = 1e9, as ``--split examples=1e9``."""
    args = ["backtest", str(curve_csv), "--law", "power_law", "--input", "x=examples"]
    assert main([*args, "--no-baseline", "--reach", "examples=10"]) == 0
    out = capsys.readouterr().out
    assert "Reach split: fit examples <= 1e+09" in out and "Held-out rows: 10 (fitted: 20)" in out
    assert "reach must be a factor above 1" in cli_error(capsys, [*args, "--reach", "examples=1"])
    assert "--reach expects COLUMN=FACTOR" in cli_error(capsys, [*args, "--reach", "examples=x"])


def test_compare_command_ranks_saved_fits(curve_csv, tmp_path, capsys):
    paths = []
    for law in ("power_law", "exponential"):
        paths.append(str(tmp_path / f"{law}.nc"))
        args = ["fit", str(curve_csv), "--law", law, "--input", "x=examples"]
        assert main([*args, "--save", paths[-1]]) == 0
    capsys.readouterr()
    assert main(["compare", *paths]) == 0
    out = capsys.readouterr().out
    assert "power_law" in out and "exponential" in out and "weight" in out
    assert "must differ" in cli_error(capsys, ["compare", paths[0], paths[0]])
