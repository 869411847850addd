"""FitSpec as the one source of a fit's definition; saved files of the previous format;
ScalingFit as a frozen value; the fake-fit helper; the layering of the package."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayescale
from bayescale import io, plots
from bayescale.spec import FitSpec
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

FIXTURES = Path(__file__).parent / "fixtures"


def _spec(**changes):
    law = bayescale.get_law("power_law")
    lik = bayescale.get_likelihood("student_t")
    spec = FitSpec(
        law=law,
        likelihood=lik,
        priors={**law.priors, **lik.priors},
        pooling=dict.fromkeys(law.parameters, "shared"),
        inputs={"x": "tokens"},
        random_seed=3,
        versions={"pymc": "6"},
    )
    return dataclasses.replace(spec, **changes)


def test_spec_round_trips_through_a_dict_and_json():
    import json

    spec = _spec(group="corpus", labels=["a", "b"], y_log_sd="sd")
    again = FitSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.to_dict() == spec.to_dict()
    assert again.graph_key() == spec.graph_key()
    assert again.labels == ("a", "b") and again.law.name == "power_law"


def test_graph_key_holds_what_shapes_the_program_and_nothing_else():
    base = _spec()
    for same in (_spec(random_seed=9), _spec(inputs={}), _spec(draws=10), _spec(y="acc")):
        assert same.graph_key() == base.graph_key()
    tighter = {**base.priors, "alpha": bayescale.Prior("Beta", alpha=3, beta=3)}
    for other in (_spec(priors=tighter), _spec(y_log_sd="sd"), _spec(sampler="nutpie")):
        assert other.graph_key() != base.graph_key()
    # the group column names the posterior's dimension, which the compiled program records
    corpus = _spec(group="corpus", labels=["a", "b"])
    assert _spec(group="source", labels=["a", "b"]).graph_key() != corpus.graph_key()


def test_spec_and_fit_are_frozen():
    spec = _spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.random_seed = 1
    with pytest.raises(TypeError):
        spec.priors["alpha"] = None  # a read-only view
    fit = fake_fit(
        pd.DataFrame({"x": [1e6, 1e7, 1e8, 1e9], "loss": [3.0, 2.5, 2.2, 2.0]}),
        "power_law",
        {"E": np.full(4, 1.5), "a_ref": np.full(4, 0.8), "alpha": np.full(4, 0.3)}
        | {"sigma": np.full(4, 0.01)},
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.posterior = None


def test_a_fit_saved_by_the_previous_format_loads_and_predicts_identically(tmp_path):
    """``format2_grouped.nc`` and its predictions were written by bayescale at a3c444c."""
    fit = bayescale.load(FIXTURES / "format2_grouped.nc")
    expected = pd.read_csv(FIXTURES / "format2_grouped_predictions.csv", index_col=0)
    targets = pd.DataFrame({"tokens": [1e10, 1e10, 3e9], "corpus": ["web", "new", "code"]})
    got = fit.predict(targets, ci=0.8, kind="observed", random_seed=1, extrapolation="none")
    for column in ("median", "lower", "upper"):
        np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy())
    assert fit.spec.inputs == {"x": "tokens"} and fit.spec.group == "corpus"
    assert fit.spec.labels == ("code", "web") and fit.likelihood.name == "student_t"
    assert list(fit.pooling) == list(fit.law.parameters)  # the law's order, not JSON's
    fit.save(tmp_path / "now.nc")  # written again in today's format, read back the same
    again = bayescale.load(tmp_path / "now.nc")
    assert again.spec.to_dict() == fit.spec.to_dict()
    pd.testing.assert_frame_equal(
        again.predict(targets, ci=0.8, kind="observed", random_seed=1, extrapolation="none"), got
    )


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch):
    fit = bayescale.load(FIXTURES / "format2_grouped.nc")

    def full_disk(self, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", full_disk)
    with pytest.raises(bayescale.FitFileError, match="No space left"):
        fit.save(tmp_path / "fit.nc")
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_an_unknown_format_is_refused(tmp_path, monkeypatch):
    fit = bayescale.load(FIXTURES / "format2_grouped.nc")
    monkeypatch.setattr(io, "FORMAT", 99)
    fit.save(tmp_path / "future.nc")
    with pytest.raises(bayescale.FitFileError, match="has format 99"):
        bayescale.load(tmp_path / "future.nc")


def test_fake_fit_predicts_what_its_draws_say():
    rng = np.random.default_rng(0)
    draws = {
        "E": rng.normal(1.5, 0.01, 500),
        "a_ref": rng.lognormal(0, 0.01, 500),
        "alpha": rng.normal(0.3, 0.01, 500),
        "sigma": np.full(500, 0.02),
    }
    data = pd.DataFrame({"x": np.geomspace(1e6, 1e9, 6), "loss": np.geomspace(3, 2, 6)})
    fit = fake_fit(data, "power_law", draws, log_ref={"x": np.log(1e7)}, chains=2)
    law_value = draws["E"] + draws["a_ref"] * (1e10 / 1e7) ** -draws["alpha"]
    pred = fit.predict({"x": [1e10]}, ci=0.5, extrapolation="none").iloc[0]
    assert pred["median"] == pytest.approx(np.median(law_value), rel=1e-12)
    assert fit.posterior["posterior"].sizes["chain"] == 2
    assert fit.posterior["log_likelihood"]["y"].shape == (2, 250, 6)
    with pytest.raises(bayescale.SpecError, match="divisible"):
        fake_fit(data, "power_law", draws, chains=3)


def test_package_face_and_layering():
    import bayescale.laws as laws_module

    assert laws_module.ScalingLaw is bayescale.ScalingLaw
    assert "chinchilla" in bayescale.laws()
    assert bayescale.Binomial(n=10).n == 10 and callable(bayescale.sbc)
    root = Path(bayescale.__file__).parents[1]
    private = subprocess.run(
        ["grep", "-rnE", r"from bayescale\.[a-z_.]* import _", "bayescale", "models"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert private.stdout == ""
    # the engine is told which sources key its cache; it never imports the package face
    engine = (root / "bayescale" / "engine" / "jax_nuts.py").read_text()
    assert "import bayescale\n" not in engine and "bayescale.models" not in engine


def test_the_command_line_offers_every_likelihood_chosen_by_name():
    out = subprocess.run(
        [sys.executable, "-m", "bayescale.cli", "fit", "--help"], capture_output=True, text=True
    )
    for name in ("normal", "student_t", "beta", "ou_normal"):
        assert name in out.stdout


@pytest.mark.parametrize("n", ["abc", None, [1, 2], 0, 2.5, float("nan"), True])
def test_a_binomial_item_count_that_is_not_a_whole_number_is_named(n):
    with pytest.raises(bayescale.SpecError, match="binomial likelihood needs the item count"):
        bayescale.Binomial(n=n)


NOT_A_FIT = {
    "compute_optimal": lambda f: bayescale.compute_optimal(f, [1e21]),
    "frontier_exponents": lambda f: bayescale.frontier_exponents(f),
    "compute_for_target": lambda f: bayescale.compute_for_target(f, [2.0]),
    "prob_beats": lambda f: bayescale.prob_beats(f, f, [1e21]),
    "crossover": lambda f: bayescale.crossover(f, f, (1e20, 1e21)),
    "sweep_error": lambda f: bayescale.sweep_error(f),
    "predict_chained": lambda f: bayescale.predict_chained(f, f, {"N": [1e9], "D": [1e11]}),
    **{
        name: (lambda f, name=name, extra=extra: getattr(plots, name)(f, *extra))
        for name, extra in {
            "fit_plot": (),
            "extrapolation_plot": ({"C": 1e22},),
            "isoflop_plot": ([1e20],),
            "frontier_plot": ([1e20],),
            "residual_plot": (),
            "posterior_plot": (),
            "forest_plot": (),
            "rank_plot": (),
            "trace_plot": (),
            "pair_plot": (),
            "prior_posterior_plot": (),
            "ppc_plot": (),
        }.items()
    },
}


@pytest.mark.parametrize("call", NOT_A_FIT.values(), ids=NOT_A_FIT)
@pytest.mark.parametrize("value", ["fit.nc", None])
def test_a_path_or_nothing_where_a_fit_belongs_is_named(call, value):
    with pytest.raises(bayescale.SpecError, match="must be a bayescale.ScalingFit, not"):
        call(value)
