import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale.cli import main


def test_laws_command(capsys):
    assert main(["laws"]) == 0
    out = capsys.readouterr().out
    assert "chinchilla" in out and "power_law" in out and "alpha" in out


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    # `bayescale laws | head -1`: the reader is gone before the table is printed (`true`
    # reads nothing), and the command says nothing more (it printed a BrokenPipeError)
    done = subprocess.run(
        f"{sys.executable} -m bayescale.cli laws | true",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stderr == ""


def test_library_warnings_are_one_line(monkeypatch, capsys):
    import warnings

    def command(args):
        warnings.warn("3 of 40 rows have Pareto k > 0.7", bayescale.ParetoKWarning, stacklevel=1)
        return 0

    monkeypatch.setattr("bayescale.cli.laws_command", command)
    assert main(["laws"]) == 0
    err = capsys.readouterr().err
    assert err == "bayescale laws: warning: 3 of 40 rows have Pareto k > 0.7\n"


def test_fit_command_saves_a_loadable_fit(sim_sweep, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    sim_sweep.rename(columns={"N": "params"})[["params", "C", "loss"]].to_csv(csv, index=False)
    path = tmp_path / "fit.nc"
    assert main(["fit", str(csv), "--input", "N=params", "--save", str(path)]) == 0
    out = capsys.readouterr().out
    assert "r_hat" in out and "converged" in out
    assert "Extrapolation error: persistence learnt from" in out  # its own backtest, saved
    loaded = bayescale.load(path)
    assert loaded.law.name == "chinchilla" and "own_extrapolation" in loaded.__dict__
    top = sim_sweep["C"].max()
    at = [f"params={sim_sweep['N'].max():g},C={c:g}" for c in (top / 10, top, 100 * top)]
    assert main(["predict", str(path), *[a for c in at for a in ("--at", c)]]) == 0
    out = capsys.readouterr().out
    assert "reach" in out and "extrapolation_share" in out and "rows with reach > 1" in out
    assert "given a backtest of slope" in out
    assert main(["predict", str(path), "--at", at[2], "--extrapolation", "population"]) == 0
    out = capsys.readouterr().out
    assert "population learnt from" in out and "given a backtest" not in out
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
        (["--law", "broken_power_law(2)"], "expected NAME or NAME(option=value, ...)"),
        (["--law", "broken_power_law(n_breaks=9)"], "n_breaks must be an integer from 1 to 3"),
        (["--law", "chinchila"], "unknown scaling law 'chinchila'"),
        (["--law", "broken_power_law(n_breaks=2, n_breaks=3)"], "n_breaks given more than once"),
    ],
)
def test_fit_command_refuses_bad_options_before_fitting(tmp_path, capsys, option, expected):
    """Each is refused in one line before the CSV is read (it does not exist), so before a fit."""
    assert expected in cli_error(capsys, ["fit", str(tmp_path / "x.csv"), *option])


def test_a_law_takes_its_options_on_the_command_line():
    from bayescale.cli import _law

    assert _law("broken_power_law(n_breaks=2)").n_breaks == 2  # was 'unknown scaling law'
    assert _law("downstream(floor=0.25)").options == {"floor": 0.25}
    assert _law(" chinchilla ").name == "chinchilla"


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


def test_backtest_command_names_the_checks_a_fit_failed(curve_csv, capsys):
    args = ["backtest", str(curve_csv), "--law", "power_law", "--input", "x=examples"]
    args += ["--split", "examples=1e9", "--no-baseline", "--chains", "1", "--draws", "100"]
    assert main([*args, "--tune", "100"]) == 1
    err = capsys.readouterr().err
    assert "WARNING: fits that did not converge: power_law (" in err and "ESS" in err


def test_backtest_command_refuses_bad_splits_by_name(curve_csv, capsys):
    args = ["backtest", str(curve_csv), "--law", "power_law", "--input", "x=examples"]
    assert "COLUMN=NUMBER" in cli_error(capsys, [*args, "--split", "examples=big"])
    assert "split column 'held_out' is missing" in cli_error(capsys, [*args, "--split", "held_out"])
    split = ["--split", "examples=1e9"]
    assert "--by 'run': no such column" in cli_error(capsys, [*args, *split, "--by", "run"])
    out = ["--save-predictions", "no_such_folder/p.csv"]
    assert "folder 'no_such_folder' does not exist" in cli_error(capsys, [*args, *split, *out])


def test_backtest_command_scores_one_held_out_run(curve_csv, capsys):
    """It fitted every law, then failed on the bootstrap intervals, printing no table."""
    below_largest = float(np.sort(pd.read_csv(curve_csv)["examples"])[-2])
    args = ["backtest", str(curve_csv), "--law", "power_law", "--input", "x=examples"]
    args += ["--split", f"examples={below_largest!r}", "--chains", "1", "--draws", "100"]
    assert main([*args, "--tune", "100", "--n-bootstrap", "2"]) in (0, 1)  # 1: few draws
    out = capsys.readouterr().out
    assert "Held-out rows: 1 (fitted: 29)" in out and "baseline power_law" in out
    assert "(one held-out run: no bootstrap intervals)" in out


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


def saved_fit(path, values, seed, draws=2000, chains=4):
    """A converged fake Chinchilla fit around ``values``, of data on that law, saved to ``path``.

    Enough independent draws in four chains that r-hat and ESS pass, as a good NUTS run's do.
    """
    from test_decisions import chinchilla_draws, design

    from bayescale.testing import fake_fit

    frame = design()
    n, d = frame["N"], frame["D"]
    frame["loss"] = (
        values["E"] + values["A"] / n ** values["alpha"] + values["B"] / d ** values["beta"]
    )
    params = chinchilla_draws(frame, spread=0.3, seed=seed, values=values, n=draws)
    params["sigma"] = 0.01 * np.exp(0.1 * np.random.default_rng(seed).standard_normal(draws))
    fit = fake_fit(frame, "chinchilla", params, chains=chains, random_seed=seed)
    fit.save(path)
    return fit


SLOW = {"E": 1.90, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
FAST = {"E": 1.70, "A": 800.0, "B": 800.0, "alpha": 0.3, "beta": 0.3}


@pytest.fixture(scope="module")
def decision_fits(tmp_path_factory):
    """Two saved converged fits whose optimal loss curves cross near 6e24 FLOPs."""
    from test_decisions import BESIROGLU

    folder = tmp_path_factory.mktemp("decide")
    paths = {name: str(folder / f"{name}.nc") for name in ("besiroglu", "slow", "fast")}
    fits = {
        name: saved_fit(paths[name], values, seed)
        for seed, (name, values) in enumerate(
            (("besiroglu", BESIROGLU), ("slow", SLOW), ("fast", FAST)), start=1
        )
    }
    assert all(fit.converged for fit in fits.values())
    return paths, fits


def shown(value):
    """How ``_show`` prints a number in a table."""
    return f"{value:.4g}"


def test_optimal_command_prints_the_posterior_allocation(decision_fits, capsys):
    paths, fits = decision_fits
    args = ["optimal", paths["besiroglu"], "--compute", "5.76e23", "1e25", "--ci", "0.8"]
    assert main([*args, "--extrapolation", "none"]) == 0
    out = capsys.readouterr().out
    table = bayescale.compute_optimal(
        fits["besiroglu"], [5.76e23, 1e25], ci=0.8, extrapolation="none"
    )
    for column in ("N_opt_median", "N_opt_lower", "tokens_per_param_upper", "loss_opt_median"):
        assert shown(table[column].iloc[0]) in out, column
    assert "beyond the fitted runs" not in out
    assert main(args) == 0
    assert "beyond the fitted runs (reach > 1)" in capsys.readouterr().out
    assert main([*args, "--flops-per-token", "8"]) == 0
    k8 = bayescale.compute_optimal(fits["besiroglu"], 5.76e23, ci=0.8, flops_per_token=8)
    assert shown(k8["N_opt_median"].iloc[0]) in capsys.readouterr().out


def test_target_command_prints_budgets_and_unreachable_share(decision_fits, capsys):
    paths, fits = decision_fits
    args = ["target", paths["besiroglu"], "--loss", "2.0", "1.81", "--fixed-N", "7e10"]
    assert main([*args, "--extrapolation", "none"]) == 0
    out = capsys.readouterr().out
    table = bayescale.compute_for_target(
        fits["besiroglu"], [2.0, 1.81], fixed_N=7e10, extrapolation="none"
    )
    assert shown(table["C_median"].iloc[0]) in out and shown(table["D_upper"].iloc[0]) in out
    assert table["p_unreachable"].iloc[1] == 1.0  # below E + A N^-alpha at 7e10
    assert "p_unreachable" in out and "asymptote" in out


def test_target_command_reaches_accuracies_through_a_downstream_fit(
    decision_fits, tmp_path, capsys
):
    from bayescale.testing import fake_fit

    paths, fits = decision_fits
    rng = np.random.default_rng(5)
    draws = {  # 2,000 independent draws in four chains: a converged fit
        "r_ref": 0.5 + 0.03 * rng.standard_normal(2000),
        "slope_ref": 0.6 * np.exp(0.1 * rng.standard_normal(2000)),
        "headroom": 0.8 + 0.02 * rng.standard_normal(2000),
        "phi": 200.0 * np.exp(0.1 * rng.standard_normal(2000)),
    }
    frame = pd.DataFrame({"L": np.linspace(2.0, 3.2, 9), "acc": np.linspace(0.7, 0.4, 9)})
    law = bayescale.get_law("downstream", floor=0.25)
    accuracy = fake_fit(frame, law, draws, y="acc", likelihood="beta", chains=4)
    accuracy.save(tmp_path / "acc.nc")
    args = ["target", paths["besiroglu"], "--accuracy", "0.55", "0.999"]
    assert main([*args, "--via", str(tmp_path / "acc.nc"), "--extrapolation", "none"]) == 0
    out = capsys.readouterr().out
    table = bayescale.compute_for_accuracy(
        fits["besiroglu"], accuracy, [0.55, 0.999], extrapolation="none"
    )
    assert shown(table["C_median"].iloc[0]) in out and shown(table["loss_upper"].iloc[0]) in out
    assert table["p_unreachable"].iloc[1] == 1.0 and "ceiling" in out
    assert main(args) == 2
    assert "--accuracy needs --via" in capsys.readouterr().err
    via_alone = ["target", paths["besiroglu"], "--loss", "2.0", "--via", str(tmp_path / "acc.nc")]
    assert main(via_alone) == 2
    assert "--via is used only with --accuracy" in capsys.readouterr().err


def test_versus_command_compares_and_finds_the_crossover(decision_fits, capsys):
    paths, fits = decision_fits
    args = ["versus", paths["slow"], paths["fast"], "--compute", "1e21", "1e26"]
    assert main([*args, "--crossover", "1e18", "1e28", "--extrapolation", "none"]) == 0
    out = capsys.readouterr().out
    beats = bayescale.prob_beats(fits["slow"], fits["fast"], [1e21, 1e26], extrapolation="none")
    assert list(beats["p_a_better"]) == [1.0, 0.0]
    cross = bayescale.crossover(fits["slow"], fits["fast"], (1e18, 1e28), extrapolation="none")
    assert 1e24 < cross["median"] < 1e25
    assert "p_a_better" in out and "each at its own optimal allocation" in out
    assert shown(cross["median"]) in out and shown(cross["upper"]) in out
    at = ["versus", paths["slow"], paths["fast"], "--at", "N=1e9,D=2e10", "--at", "N=1e11,D=2e12"]
    assert main(at) == 0
    assert "at the given N, D" in capsys.readouterr().out


def test_decisions_from_an_unconverged_fit_are_loud(tmp_path, capsys):
    from test_decisions import BESIROGLU

    path = str(tmp_path / "one_chain.nc")
    saved_fit(path, BESIROGLU, seed=0, draws=200, chains=1)
    assert main(["optimal", path, "--compute", "1e21"]) == 1
    assert f"WARNING: fit {path} did not converge" in capsys.readouterr().err
    assert main(["versus", path, path, "--compute", "1e21"]) == 2  # one fit with itself
    assert "same fit with the same group" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["optimal", "FIT", "--compute=-1e21"], "C must be positive and finite"),
        (["optimal", "FIT", "--compute", "big"], "argument --compute: invalid float value: 'big'"),
        (["optimal", "FIT"], "the following arguments are required: --compute"),
        (["optimal", "FIT", "--compute", "1e21", "--ci", "2"], "ci must be a probability"),
        (["optimal", "FIT", "--compute", "1e21", "--group", "x"], "this fit has no groups"),
        (["optimal", "FIT", "--compute", "1e21", "--unique-tokens", "1e12"], "no unique-token"),
        (["optimal", "FIT", "--compute", "1e21", "--flops-per-token", "0"], "flops_per_token"),
        (["optimal", "FIT", "--compute", "1e21", "--extrapolation", "maybe"], "invalid choice"),
        (["target", "FIT", "--loss", "0"], "loss must be positive and finite target losses"),
        (["target", "FIT", "--loss", "2", "--fixed-N=-7e10"], "fixed_N must be a positive"),
        (["target", "FIT", "--loss", "2", "--fixed-N", "-7e10"], "expected one argument"),
        (["versus", "FIT", "FIT2"], "versus needs --compute, --at or --crossover"),
        (["versus", "FIT", "FIT2", "--crossover", "1e24", "1e20"], "C_range must be (lo, hi)"),
        (["versus", "FIT", "FIT2", "--crossover", "1e24"], "expected 2 arguments"),
        (["versus", "FIT", "FIT2", "--compute", "1e21", "--at", "N=1,D=2"], "not allowed with"),
        (["versus", "FIT", "FIT2", "--at", "N=1e9"], "D"),
        (["target", "missing.nc", "--loss", "2"], "missing.nc"),
    ],
)
def test_decision_commands_refuse_bad_arguments_in_one_line(decision_fits, capsys, argv, expected):
    paths, _ = decision_fits
    argv = [{"FIT": paths["besiroglu"], "FIT2": paths["slow"]}.get(a, a) for a in argv]
    assert expected in cli_error(capsys, argv)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--prior", "alpha=Normal(0.3"], "--prior alpha=Normal(0.3: expected NAME=DIST(args)"),
        (["--prior", "alpha"], "--prior expects NAME=DIST(args)"),
        (["--prior", "alpha=Foo(1)"], "--prior alpha=Foo(1): unknown distribution 'Foo'"),
        (["--prior", "alpha=Beta(2, 3, 4)"], "Beta takes alpha, beta, each once"),
        (["--prior", "alpha=Beta(2, alpha=3)"], "Beta takes alpha, beta, each once"),
        (["--prior", "alpha=Beta(2, s=3)"], "takes parameters ('alpha', 'beta')"),
        (["--prior", "alpha=Beta(2, 1+x)"], "--prior alpha=Beta(2, 1+x): expected"),
        (["--prior", "alpha=Beta(2,3)", "--prior", "alpha=Beta(3,3)"], "gives 'alpha' twice"),
        (["--prior", "zeta=Normal(0, 1)"], "priors= names 'zeta', which is not a parameter"),
        (["--prior", "E=Normal(0.5, 0.6)"], "of its mass outside"),
        (["--pooling", "alpha=bogus"], "--pooling alpha=bogus: choose one of shared, pooled"),
        (["--pooling", "alpha=pooled"], "pooling= needs group="),
        (["--likelihood", "binomial"], "missing 1 required positional argument: 'n'"),
        (["--likelihood", "binomial(20)"], "name its options, e.g. binomial(n=14042)"),
        (["--likelihood", "nope"], "unknown likelihood 'nope'"),
    ],
)
def test_fit_flags_are_parsed_and_refused_before_fitting(tmp_path, capsys, option, expected):
    """Each is refused in one line naming the argument, before the (missing) CSV is read."""
    assert expected in cli_error(capsys, ["fit", str(tmp_path / "x.csv"), *option])


@pytest.fixture
def fit_options(monkeypatch):
    """What ``bayescale fit`` passes to ``bayescale.fit``: recorded, then stopped (no sampling)."""
    seen = {}

    def record(data, **options):
        seen.update(options, data=data)
        raise bayescale.SpecError("recorded")

    monkeypatch.setattr(bayescale, "fit", record)
    return seen


def test_fit_flags_reach_the_fit(fit_options, capsys):
    args = ["fit", "runs.csv", "--group", "corpus", "--pooling", "alpha=separate"]
    args += ["--prior", "alpha=Beta(alpha=3, beta=5)", "--prior", "E=LogNormal(0.5, 0.3)"]
    args += ["--likelihood", "binomial(n=14042)", "--flops-per-token", "8", "--quiet"]
    assert main(args) == 2 and "recorded" in capsys.readouterr().err
    assert fit_options["group"] == "corpus" and fit_options["pooling"] == {"alpha": "separate"}
    assert fit_options["priors"] == {
        "alpha": bayescale.Prior("Beta", alpha=3, beta=5),
        "E": bayescale.Prior("LogNormal", mu=0.5, sigma=0.3),
    }
    assert fit_options["likelihood"].to_dict() == {"name": "binomial", "n": 14042}
    assert fit_options["flops_per_token"] == 8.0 and fit_options["progressbar"] is False
    assert main(["fit", "runs.csv", "--likelihood", "ou_normal(along=N)"]) == 2
    assert fit_options["likelihood"].to_dict() == {"name": "ou_normal", "along": "N"}
    assert fit_options["pooling"] is None and fit_options["priors"] is None


def test_backtest_flags_reach_every_fit(curve_csv, monkeypatch, capsys):
    """``--group``, ``--pooling`` and ``--flops-per-token``: backtest had none of them."""
    seen = {}

    def record(data, laws, **options):
        seen.update(options["fit_options"])
        raise bayescale.SpecError("recorded")

    monkeypatch.setattr(bayescale, "backtest", record)
    args = ["backtest", str(curve_csv), "--law", "chinchilla", "--split", "examples=1e9"]
    args += ["--group", "corpus", "--pooling", "alpha=separate", "--flops-per-token", "8"]
    assert main(args) == 2 and "recorded" in capsys.readouterr().err
    assert seen["group"] == "corpus" and seen["pooling"] == {"alpha": "separate"}
    assert seen["flops_per_token"] == 8.0


def test_fit_shows_progress_in_a_terminal_unless_quiet(fit_options, monkeypatch):
    """bayescale.fit shows it (a clock for numpyro: tests/test_progress.py); --quiet not."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    main(["fit", "runs.csv"])
    assert fit_options["progressbar"] is True
    main(["fit", "runs.csv", "--sampler", "nutpie"])
    assert fit_options["progressbar"] is True
    main(["fit", "runs.csv", "--quiet"])
    assert fit_options["progressbar"] is False
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    main(["fit", "runs.csv"])
    assert fit_options["progressbar"] is False  # output captured or redirected: no bars


@pytest.fixture(scope="module")
def report_fits(tmp_path_factory):
    """Two converged saved fits of the same runs (different draws), and an unconverged one."""
    from test_decisions import BESIROGLU

    folder = tmp_path_factory.mktemp("report")
    paths = {name: str(folder / f"{name}.nc") for name in ("main", "other", "one_chain")}
    saved_fit(paths["main"], BESIROGLU, seed=1)
    saved_fit(paths["other"], BESIROGLU, seed=2)
    saved_fit(paths["one_chain"], BESIROGLU, seed=0, draws=200, chains=1)
    return paths


def test_report_command_writes_html_and_markdown(report_fits, tmp_path, capsys):
    out = tmp_path / "report.html"
    args = ["report", report_fits["main"], "-o", str(out), "--target", "C=5.76e23"]
    assert main([*args, "--compare", report_fits["other"]]) == 0
    assert f"report written to {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "<h1" in text and "main: posterior report" in text and 'class="banner"' not in text
    assert "<td>other</td>" in text and "Compute-optimal allocation" in text
    assert main(["report", report_fits["main"], "-o", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").exists() and any((tmp_path / "r_files").iterdir())


def test_report_command_is_loud_for_an_unconverged_fit(report_fits, capsys):
    assert main(["report", report_fits["one_chain"]]) == 1
    captured = capsys.readouterr()
    assert f"WARNING: fit {report_fits['one_chain']} did not converge" in captured.err
    written = report_fits["one_chain"].replace(".nc", ".html")  # default: beside the fit
    assert f"report written to {written}" in captured.out
    assert "NOT CONVERGED: do not use these results" in open(written).read()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-o", "r.pdf"], "must end in .html (one self-contained file) or .md"),
        (["-o", "no_such_folder/r.html"], "folder 'no_such_folder' does not exist"),
        (["--compare", "FIT"], "fits are labelled by file name, which must differ"),
        (["--target", "C=big"], "compute C of a target"),
        (["--target", "N=1e9"], "missing column(s) ['D']"),
        (["--target", "C=1e23", "--target", "N=1e9"], "every --target must name the same"),
        (["--target", "C"], "--target expects NAME=VALUE,NAME=VALUE"),
        (["--ci", "2"], "ci must be a probability"),
    ],
)
def test_report_command_refuses_bad_arguments_in_one_line(report_fits, capsys, argv, expected):
    argv = [report_fits["main"] if a == "FIT" else a for a in argv]
    assert expected in cli_error(capsys, ["report", report_fits["main"], *argv])


def test_at_keeps_a_group_label_as_typed():
    """``corpus=1`` must stay the fitted group ``"1"``, not become a new group ``1.0``."""
    from bayescale.cli import _targets

    rows = _targets(["N=1e8,D=1e10,corpus=1", "N=2e8,D=1e10,corpus=web"], labels="corpus")
    assert rows["corpus"].tolist() == ["1", "web"]
    assert rows["N"].tolist() == [1e8, 2e8]
    rows = _targets(["N=1e9,C=1e20", "C=2e20,N=2e9"])  # the same columns in another order
    assert rows["N"].tolist() == [1e9, 2e9] and rows["C"].tolist() == [1e20, 2e20]


def test_predict_keeps_group_labels_as_typed_and_names_new_groups(tmp_path, capsys):
    """``corpus=1`` is the fitted group "1"; ``corpus=3`` is said to be new (a typo shows)."""
    from bayescale.testing import fake_fit

    x = np.geomspace(1e7, 1e9, 6)
    frame = pd.DataFrame({"x": np.tile(x, 2), "corpus": [1] * 6 + [2] * 6})
    frame["loss"] = 2.0 + 5.0 * frame["x"] ** -0.3
    rng = np.random.default_rng(0)
    draws = {
        "E": 2.0 + 0.01 * rng.standard_normal(400),
        "a_ref": 0.03 * np.exp(0.01 * rng.standard_normal((400, 2))),
        "a_ref_mu": 0.03 * np.exp(0.01 * rng.standard_normal(400)),
        "a_ref_tau": np.abs(0.05 * rng.standard_normal(400)),
        "alpha": 0.3 + 0.01 * rng.standard_normal(400),
        "sigma": 0.01 * np.exp(0.1 * rng.standard_normal(400)),
    }
    pooling = {"E": "shared", "a_ref": "pooled", "alpha": "shared"}
    fit = fake_fit(frame, "power_law", draws, group="corpus", pooling=pooling, chains=4)
    path = tmp_path / "grouped.nc"
    fit.save(path)
    main(["predict", str(path), "--at", "x=1e8,corpus=1"])
    assert "groups not in the fit" not in capsys.readouterr().out
    main(["predict", str(path), "--at", "x=1e8,corpus=1", "--at", "x=1e8,corpus=3"])
    assert "groups not in the fit, predicted from the population of groups: ['3']" in (
        capsys.readouterr().out
    )
    # the report too: its targets were read as numbers, so corpus=1 became a new group 1.0
    out = tmp_path / "grouped.md"
    main(
        [
            "report",
            str(path),
            "-o",
            str(out),
            "--target",
            "x=1e8,corpus=1",
            "--target",
            "x=1e8,corpus=3",
        ]
    )
    text = out.read_text()
    assert "| 1e+08 | 1 |" in text and "| 1e+08 | 3 |" in text
    assert "Groups not in the fit, predicted from the population of groups: ['3']" in text


def test_a_failed_own_backtest_sets_the_exit_status(capsys, monkeypatch):
    """It was silent: the library's warning of it is silenced with the others."""
    import dataclasses

    from test_plots import nd_design
    from test_report import DRAWS, chinchilla_draws

    from bayescale import cli, extrapolation
    from bayescale.testing import fake_fit

    fit = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 0), chains=2)
    assert cli._status({"fit good.nc": fit}) == 0
    own = extrapolation.default()
    fit.__dict__["own_extrapolation"] = dataclasses.replace(
        own, source=f"{own.source}; {extrapolation.UNCONVERGED_BACKTEST}"
    )
    assert cli._status({"fit good.nc": fit}) == 1
    assert "WARNING: fit good.nc: its own backtest (a refit" in capsys.readouterr().err
    # an answer that did not use it: --extrapolation none or population, or all within reach
    assert cli._status({"fit good.nc": fit}, own_used=False) == 0
    assert not capsys.readouterr().err
    for choice, reach, used in [
        ("calibrated", [1.0, 3.0], True),
        ("calibrated", [1.0, 1.0], False),
        ("population", [1.0, 3.0], False),
        ("none", [1.0, 3.0], False),
    ]:
        args = SimpleNamespace(extrapolation=choice)
        assert cli._extrapolation_note(reach, args, "losses") is used, (choice, reach)
    # LOO compares the fitted runs: compare exited 1 for it
    monkeypatch.setattr(bayescale, "load", lambda path: fit)
    monkeypatch.setattr(bayescale, "compare", lambda fits: pd.DataFrame({"elpd": [0.0, 0.0]}))
    assert main(["compare", "a.nc", "b.nc"]) == 0 and "WARNING" not in capsys.readouterr().err


def test_target_and_report_pass_the_accuracy_group_and_unique_tokens(monkeypatch, capsys):
    """Neither could be given: a grouped accuracy fit and a data_constrained report failed."""
    seen = {}

    def record(name):
        def call(*args, **options):
            seen[name] = options
            raise bayescale.SpecError("recorded")

        return call

    monkeypatch.setattr(bayescale, "load", lambda path: path)
    monkeypatch.setattr(bayescale, "compute_for_accuracy", record("target"))
    monkeypatch.setattr("bayescale.report.write_report", record("report"))
    args = ["target", "loss.nc", "--accuracy", "0.6", "--via", "acc.nc", "--accuracy-group", "hs"]
    assert main(args) == 2 and seen["target"]["accuracy_group"] == "hs"
    assert main(["report", "fit.nc", "--unique-tokens", "1e9"]) == 2
    assert seen["report"]["unique_tokens"] == 1e9
    capsys.readouterr()
    assert "give --via and --accuracy" in cli_error(
        capsys, ["target", "loss.nc", "--loss", "2.0", "--accuracy-group", "hs"]
    )
