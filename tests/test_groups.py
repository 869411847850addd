"""Groups: validation, model structure for every pooling choice, and the grouped API.

The fitted fixture pools every parameter (the default), so that new groups can be predicted;
on these 4 small simulated groups that fit has a couple of divergent transitions out of 4,000
(measured: 2), so it silences ConvergenceWarning and these tests check what the API
computes. Healthy sampling of grouped fits is asserted on the real-data case studies in
the slow lane (``tests/test_slow.py``).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale.data import prepare
from bayescale.engine.build import build_model
from bayescale.likelihoods import get_likelihood
from bayescale.pooling import HIERARCHICAL, POOLINGS, hyper_priors, resolve
from bayescale.simulate import from_law

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

TRUE_E = {"c0": 1.6, "c1": 1.8, "c2": 2.0, "c3": 1.9}


def grouped_power_law():
    law = bayescale.get_law("power_law")
    rng = np.random.default_rng(0)
    frames = []
    for i, (label, e) in enumerate(TRUE_E.items()):
        x = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 25))
        df = from_law(law, {"E": e, "a_ref": 0.5 + 0.05 * i, "alpha": 0.3}, {"x": x}, random_seed=i)
        frames.append(df.assign(corpus=label))
    return pd.concat(frames, ignore_index=True)[["x", "loss", "corpus"]]


@pytest.fixture(scope="module")
def grouped_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        return bayescale.fit(
            grouped_power_law(),
            law="power_law",
            group="corpus",
            pooling=dict.fromkeys(["E", "a_ref", "alpha"], "pooled"),  # a population of all
            random_seed=0,
        )


@pytest.mark.parametrize("mode", POOLINGS)
@pytest.mark.parametrize("name", ["power_law", "pure_power_law", "chinchilla", "kaplan"])
def test_structure_and_gradient_for_every_pooling(name, mode):
    law = bayescale.get_law(name)
    lik = get_likelihood("normal")
    df = grouped_power_law().rename(columns={"x": "N"})
    df["D"] = np.geomspace(1e9, 1e12, len(df))
    df = df.rename(columns={"N": "x"}) if law.inputs == ("x",) else df
    fd = prepare(df, law, "loss", group="corpus")
    labels = sorted(TRUE_E)
    pooling = resolve(law, "corpus", dict.fromkeys(law.parameters, mode))
    priors = {**law.priors, **hyper_priors(pooling), **lik.priors}
    log_ref = law.log_reference(fd.frame)
    model = build_model(law, priors, lik, fd, log_ref, pooling, labels)
    assert list(model.coords["corpus"]) == labels
    for k in law.parameters:
        dims = model.named_vars_to_dims.get(k)
        assert dims == (None if mode == "shared" else ("corpus",))
        if mode in HIERARCHICAL:
            offsets = f"{k}_u" if mode == "pooled_centred" else f"{k}_z"
            assert {f"{k}_mu", f"{k}_tau", offsets} <= set(model.named_vars)
    point = model.initial_point()
    assert np.all(np.isfinite(model.compile_dlogp(mode="FAST_COMPILE")(point)))


def test_group_validation():
    df = grouped_power_law()
    law = bayescale.get_law("power_law")
    with pytest.raises(bayescale.DataError, match="group column 'family' is missing"):
        prepare(df, law, "loss", group="family")
    bad = df.astype({"corpus": object})
    bad.loc[[2, 5], "corpus"] = None
    with pytest.raises(bayescale.DataError, match=r"missing labels at 2 rows \(2, 5\)"):
        prepare(bad, law, "loss", group="corpus")
    with pytest.raises(bayescale.DataError, match="single label"):
        prepare(df.assign(corpus="a"), law, "loss", group="corpus")
    with pytest.raises(bayescale.SpecError, match="needs group="):
        resolve(law, None, {"alpha": "pooled"})
    with pytest.raises(bayescale.SpecError, match="choose one of"):
        resolve(law, "corpus", {"alpha": "partial"})
    with pytest.raises(bayescale.SpecError, match="not parameters"):
        resolve(law, "corpus", {"beta": "pooled"})
    # the law's additive terms separate, the rest pooled (see bayescale.pooling.resolve)
    assert resolve(law, "corpus", None) == {"E": "separate", "a_ref": "separate", "alpha": "pooled"}
    assert resolve(law, "corpus", {"E": "pooled_centred", "alpha": "shared"}) == {
        "E": "pooled_centred",
        "a_ref": "separate",
        "alpha": "shared",
    }
    kaplan = bayescale.get_law("kaplan")  # no terms: every parameter pooled
    assert set(resolve(kaplan, "corpus", None).values()) == {"pooled"}


def test_group_labels_are_a_posterior_dimension(grouped_fit):
    table = grouped_fit.summary()
    assert {"E[c0]", "E[c3]", "alpha[c1]", "alpha_mu", "alpha_tau", "A[c2]"} <= set(table.index)
    assert grouped_fit.posterior["posterior"]["E"].dims == ("chain", "draw", "corpus")
    for label, e in TRUE_E.items():  # 25 runs, 1% noise: E within ~0.1
        assert abs(table.loc[f"E[{label}]", "median"] - e) < 0.1


def test_new_group_predictions_are_wider(grouped_fit):
    rows = pd.DataFrame({"x": [1e11, 1e11], "corpus": ["c1", "never_seen"]})
    pred = grouped_fit.predict(rows)
    assert list(pred.columns[:5]) == ["x", "corpus", "median", "lower", "upper"]
    width = pred["upper"] - pred["lower"]
    assert width.iloc[1] > 2 * width.iloc[0]
    assert pred["lower"].iloc[1] < pred["median"].iloc[0] < pred["upper"].iloc[1]
    assert pred.attrs["new_groups"] == ["never_seen"]  # a typo would show here too
    assert "new_groups" not in grouped_fit.predict(rows.iloc[:1]).attrs


def test_contrasts(grouped_fit):
    diff = grouped_fit.contrast("E", "c2", "c0")
    assert 0.2 < diff["median"] < 0.6 and diff["p_greater"] > 0.99
    assert grouped_fit.contrast("E", "c0", "c2")["p_greater"] < 0.01
    p = grouped_fit.prob_lower({"x": [1e8, 1e11]}, "c0", "c2")
    assert list(p.columns) == ["x", "p_lower"] and (p["p_lower"] > 0.99).all()
    with pytest.raises(bayescale.SpecError, match="unknown group"):
        grouped_fit.contrast("E", "c0", "zz")
    with pytest.raises(bayescale.SpecError, match="unknown group 'c9'"):
        grouped_fit.prob_lower({"x": [1e8]}, "c9", "c2")
    with pytest.raises(bayescale.SpecError, match="does not vary by group"):
        grouped_fit.contrast("sigma", "c0", "c1")
    with pytest.raises(bayescale.SpecError, match=r"\['E'\] does not vary"):  # a raw TypeError
        grouped_fit.contrast(["E"], "c0", "c1")


def test_grouped_save_load_predicts_identically(grouped_fit, tmp_path):
    grouped_fit.save(tmp_path / "g.nc")
    loaded = bayescale.load(tmp_path / "g.nc")
    rows = pd.DataFrame({"x": [1e9, 1e11], "corpus": ["c0", "new"]})
    pd.testing.assert_frame_equal(loaded.predict(rows), grouped_fit.predict(rows))
    assert loaded.group_labels == sorted(TRUE_E) and loaded.pooling == grouped_fit.pooling


def test_separate_parameters_cannot_predict_new_groups():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        fit = bayescale.fit(
            grouped_power_law(),
            law="power_law",
            group="corpus",
            pooling={"E": "separate"},
            random_seed=0,
            draws=200,
            tune=200,
        )
    # the error names the unknown label, its row and the fitted groups (a typo is the usual cause)
    with pytest.raises(
        bayescale.SpecError,
        match=r"group\(s\) \['new'\] at 1 row \(1\) are not among the fitted groups "
        r"\['c0', 'c1', 'c2', 'c3'\]; parameter\(s\) \['E', 'a_ref'\] are 'separate'",
    ):
        fit.predict({"x": [1e9, 1e9], "corpus": ["c2", "new"]})
    assert len(fit.predict({"x": [1e9], "corpus": ["c2"]})) == 1


def test_a_program_built_for_other_data_fits_these_data_exactly(tmp_path, monkeypatch):
    """A grouped fit from a program compiled for another sweep of the same shape is the fit.

    Compiled programs are reused for any data of the same shape (``jax_nuts``), and a
    ``"pooled"`` parameter is built from each group's own estimate, which is data. When
    the constraining transforms and the initial point held the first sweep's estimates
    as constants, the second fit reported parameters that did not fit its data (seen as
    chains "stuck" hundreds of nats apart at r-hat 1.00). Here the second sweep's fit
    through the first sweep's program equals its fit through a program of its own.
    """
    from bayescale.engine import jax_nuts

    def fit(df, pooling):
        return bayescale.fit(
            df,
            law="power_law",
            group="corpus",
            pooling=pooling,
            chains=2,
            draws=50,
            tune=50,
            random_seed=0,
        )

    first = grouped_power_law()
    in_c1 = first["corpus"] == "c1"  # c1's curve moved up and to larger x: another centre
    second = first.assign(loss=first["loss"] * np.exp(0.3 * in_c1), x=first["x"] * 10.0**in_c1)
    # every parameter pooled (each group's estimates are data), and the default (each
    # group's terms sampled at its own centre, which is data too)
    for pooling, names in (
        (
            dict.fromkeys(["E", "a_ref", "alpha"], "pooled"),
            ("E", "a_ref", "alpha", "E_mu", "E_tau"),
        ),
        (None, ("E", "a_ref", "alpha", "alpha_mu", "alpha_tau")),
    ):
        monkeypatch.setattr(jax_nuts, "_PROGRAMS", {})
        monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path / f"shared{pooling is None}"))
        fit(first, pooling)
        reused = fit(second, pooling).posterior["posterior"]
        monkeypatch.setattr(jax_nuts, "_PROGRAMS", {})
        monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path / f"own{pooling is None}"))
        own = fit(second, pooling).posterior["posterior"]
        for name in names:
            np.testing.assert_allclose(reused[name].to_numpy(), own[name].to_numpy(), rtol=1e-9)
