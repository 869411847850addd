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


def test_fit_command_rejects_bad_mapping(tmp_path):
    with pytest.raises(SystemExit, match="NAME=COLUMN"):
        main(["fit", str(tmp_path / "x.csv"), "--input", "N"])


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
    with pytest.raises(SystemExit, match="COLUMN=NUMBER"):
        main([*args, "--split", "examples=big"])
    assert main([*args, "--split", "held_out"]) == 2
    assert "split column 'held_out' is missing" in capsys.readouterr().err


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
    with pytest.raises(SystemExit, match="must differ"):
        main(["compare", paths[0], paths[0]])
