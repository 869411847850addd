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
