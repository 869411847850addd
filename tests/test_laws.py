import numpy as np
import pandas as pd
import pytest
from conftest import finite_gradient, model_for
from scipy import special

import bayescale
from bayescale.data import prepare
from bayescale.engine.build import build_model
from bayescale.laws import reference_scale
from bayescale.likelihoods import LIKELIHOODS, get_likelihood
from bayescale.ops import NUMPY, PYTENSOR
from bayescale.simulate import chinchilla_sweep
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

RNG = np.random.default_rng(42)
N = np.geomspace(5e7, 2e10, 7)
D = np.geomspace(3e11, 4e9, 7)
LOG_REF = {"N": np.log(1e9), "D": np.log(5e10), "x": np.log(1e9)}
LAWS = ["power_law", "pure_power_law", "chinchilla", "kaplan", "exponential"]
LOSS_LAWS = ["power_law", "chinchilla", "kaplan", "exponential"]
LOSS_LIKELIHOODS = sorted(k for k, v in LIKELIHOODS.items() if v.support == "positive")
"""Laws of a loss with a floor; ``pure_power_law`` is scale-free (its default is vague)."""


def hand_written(name, p):
    """The published formulas, in plain numpy on natural parameters."""
    if name == "power_law":
        return p["E"] + p["A"] * N ** -p["alpha"]
    if name == "chinchilla":
        return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    if name == "pure_power_law":
        return p["k"] * N ** p["a"]
    if name == "exponential":
        return p["E"] + p["A"] * np.exp(-p["k"] * N ** p["gamma"])
    if name == "kaplan":
        return ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]
    raise KeyError(name)


def test_registry_lists_laws_and_rejects_unknown():
    assert set(LAWS) <= set(bayescale.laws())
    with pytest.raises(bayescale.SpecError, match="unknown scaling law 'chinchila'.*chinchilla"):
        bayescale.get_law("chinchila")
    with pytest.raises(bayescale.SpecError, match=r"'name' and 'options' only, got \['typo'\]"):
        bayescale.get_law({"name": "chinchilla", "typo": 1})
    with pytest.raises(bayescale.SpecError, match="'options' must be a dict, got 'abc'"):
        bayescale.get_law({"name": "chinchilla", "options": "abc"})
    law = bayescale.get_law("broken_power_law", n_breaks=2)
    assert bayescale.get_law(law.to_dict()).options == {"n_breaks": 2}


def test_parameter_input_collision_raises():
    with pytest.raises(bayescale.SpecError, match="collide"):

        class Bad(bayescale.ScalingLaw):
            name = "bad_law_for_test"
            inputs = ("x",)
            priors = {"x": bayescale.Prior("Normal", mu=0, sigma=1)}


@pytest.mark.parametrize("name", LAWS)
def test_log_mean_matches_published_formula(name):
    law = bayescale.get_law(name)
    for seed in range(5):
        p = {k: float(v[0]) for k, v in law.sample_prior(1, random_seed=seed).items()}
        p.update({k: float(v) for k, v in law.derived(NUMPY, p, LOG_REF).items()})
        raw = {"N": N, "D": D, "x": N}
        got = law.mean(p, {k: raw[k] for k in law.inputs}, LOG_REF)
        np.testing.assert_allclose(got, hand_written(name, p), rtol=1e-10)


@pytest.mark.parametrize("name", LAWS)
def test_numpy_and_pytensor_agree(name):
    law = bayescale.get_law(name)
    p = {k: float(v[0]) for k, v in law.sample_prior(1, random_seed=7).items()}
    z = {"N": np.log(N) - LOG_REF["N"], "D": np.log(D) - LOG_REF["D"], "x": np.log(N) - 20}
    z = {k: z[k] for k in law.inputs}
    np.testing.assert_allclose(
        law.log_mean(PYTENSOR, p, z).eval(), law.log_mean(NUMPY, p, z), rtol=1e-12
    )


def test_log_space_survives_extreme_powers():
    law = bayescale.get_law("chinchilla")
    p = {"E": 1.5, "a_ref": 0.3, "b_ref": 0.3, "alpha": 0.99, "beta": 0.99}
    z = {"N": np.array([-300.0, 300.0]), "D": np.array([300.0, -300.0])}
    out = law.log_mean(NUMPY, p, z)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, np.log(0.3) + 0.99 * 300, rtol=1e-12)


def test_logsumexp_gradient_in_jax_is_exact_and_needs_no_maximum():
    """The compiled NUTS program differentiates laws with JAX, which differentiates a
    maximum by counting the elements equal to it: a count that one compiled program got
    wrong (0, so NaN) at isolated points. The softplus chain is exact (ties, gaps of
    hundreds of nats) and its gradient, the terms' softmax, has no maximum in it."""
    import jax
    import pytensor.tensor as pt
    from pymc.sampling.jax import get_jaxified_graph

    a, b, c = pt.dscalar("a"), pt.dvector("b"), pt.dvector("c")
    fn = get_jaxified_graph([a, b, c], [PYTENSOR.logsumexp([a, b, c]).sum()])
    values = (0.3, np.array([0.3, -600.0, 650.0, 5.0]), np.array([0.3, 2.0, -1.0, 600.0]))
    stacked = np.stack(np.broadcast_arrays(*values))
    np.testing.assert_allclose(fn(*values)[0], special.logsumexp(stacked, axis=0).sum(), rtol=1e-13)

    def total(*v):
        return fn(*v)[0]

    grads = jax.grad(total, argnums=(0, 1, 2))(*values)
    weights = special.softmax(stacked, axis=0)  # d/d term of logsumexp
    np.testing.assert_allclose(grads[0], weights[0].sum(), rtol=1e-12)
    np.testing.assert_allclose(grads[1], weights[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads[2], weights[2], rtol=1e-12, atol=1e-15)
    jaxpr = str(jax.make_jaxpr(jax.grad(total, argnums=(0, 1, 2)))(*values))
    assert "reduce_max" not in jaxpr and " max " not in jaxpr


@pytest.mark.parametrize(
    ("name", "likelihood"),
    [
        (name, lik)
        for name in LAWS
        for lik in LOSS_LIKELIHOODS
        # correlated noise orders one curve by one input: laws of one input only
        if not (LIKELIHOODS[lik].dependent and len(bayescale.get_law(name).inputs) > 1)
    ],
)
def test_finite_logp_gradient_at_initial_point(name, likelihood):
    law = bayescale.get_law(name)
    lik = get_likelihood(likelihood)
    single = len(law.inputs) == 1
    df = chinchilla_sweep(random_seed=0).rename(columns={"N": "x"} if single else {})
    if lik.dependent:  # one curve: one row per value of the input that orders it
        df = df.drop_duplicates("x")
    grad = finite_gradient(model_for(law, lik, prepare(df, law, "loss")))
    assert grad.shape == (len(law.parameters) + len(lik.priors),)


@pytest.mark.parametrize("name", LOSS_LAWS)
def test_default_priors_imply_plausible_llm_losses(name):
    """The docstrings' prior-predictive claims: losses in nats, not absurd."""
    law = bayescale.get_law(name)
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), 50))
    d = np.exp(rng.uniform(np.log(5e9), np.log(5e11), 50))
    inputs = {"N": n, "D": d, "x": np.exp(rng.uniform(np.log(0.1), np.log(10), 50))}
    draws = law.prior_predictive({k: inputs[k] for k in law.inputs}, n=4000, random_seed=1)
    lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
    assert 0.5 < lo < 2.0 and 1.5 < med < 5.0 and 5.0 < hi < 15.0


def test_prior_validation_and_round_trip():
    p = bayescale.Prior("Beta", alpha=3, beta=5)
    assert p.scipy().mean() == pytest.approx(0.375)
    assert bayescale.Prior.from_dict(p.to_dict()) == p
    with pytest.raises(bayescale.SpecError, match="unknown prior distribution 'Cauchy'"):
        bayescale.Prior("Cauchy", alpha=0, beta=1)
    with pytest.raises(bayescale.SpecError, match="takes parameters"):
        bayescale.Prior("Normal", mu=0)
    with pytest.raises(bayescale.SpecError, match="sigma=-1.*> 0"):
        bayescale.Prior("Normal", mu=0, sigma=-1)
    with pytest.raises(bayescale.SpecError, match="finite"):
        bayescale.Prior("Normal", mu=np.nan, sigma=1)
    with pytest.raises(bayescale.SpecError, match="sigma=True must be a finite number"):
        bayescale.Prior("Normal", mu=0, sigma=True)


def test_reference_scale_is_rounded_geometric_centre():
    assert np.exp(reference_scale([1e8, 1e10])) == pytest.approx(1e9)
    assert np.exp(reference_scale([2.2e9, 2.6e9])) == pytest.approx(2e9)


@pytest.mark.parametrize("likelihood", [k for k in LOSS_LIKELIHOODS if LIKELIHOODS[k].known_sd])
def test_known_measurement_error_adds_in_quadrature(likelihood):
    """numpy and the PyMC graph agree, and the scale is sqrt(sigma^2 + s_i^2)."""
    law = bayescale.get_law("pure_power_law")
    lik = get_likelihood(likelihood)
    rng = np.random.default_rng(0)
    x = np.geomspace(1e16, 1e19, 12)
    s = rng.uniform(0.0, 0.3, x.size)
    df = pd.DataFrame({"x": x, "y": 1e-3 * x**0.5 * np.exp(rng.normal(0, s)), "s": s})
    fd = prepare(df, law, "y", y_log_sd="s")
    log_ref = {"x": reference_scale(x)}
    pooling = dict.fromkeys(law.parameters, "shared")
    model = build_model(law, {**law.priors, **lik.priors}, lik, fd, log_ref, pooling)
    point = {"y_ref": 3e7, "a": 0.5, "sigma": 0.05, "nu": 4.0}
    mu = law.log_mean(NUMPY, point, {"x": np.log(x) - log_ref["x"]})
    expected = lik.logpdf(np.log(fd.y_values()), mu, point, fd.known_sd())
    values = {
        "y_ref_log__": np.log(3e7),
        "a": 0.5,
        "sigma_log__": np.log(0.05),
        "nu_log__": np.log(4.0),
    }
    values = {v.name: values[v.name] for v in model.value_vars}
    got = model.compile_logp(vars=[model["y"]], sum=False)(values)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    wide = lik.logpdf(np.log(fd.y_values()), mu, {**point, "sigma": np.hypot(0.05, s)})
    np.testing.assert_allclose(expected, wide, rtol=1e-12)


ROUND_TRIP = {
    "power_law": ({}, "normal", {"x": np.geomspace(1e7, 1e10, 12)}),
    "pure_power_law": ({}, "normal", {"x": np.geomspace(1e7, 1e10, 12)}),
    "exponential": ({}, "student_t", {"x": np.geomspace(1e7, 1e10, 12)}),
    "broken_power_law": ({"n_breaks": 2}, "normal", {"x": np.geomspace(1e2, 1e5, 14)}),
    "chinchilla": ({}, "normal", {"N": N, "D": D}),
    "kaplan": ({}, "normal", {"N": N, "D": D}),
    "isoflop": ({}, "normal", {"N": N, "D": D}),
    "data_constrained": ({}, "normal", {"N": N, "D": D, "U": D / np.arange(1, 8)}),
    "lr_annealing": ({}, "normal", {"S1": np.geomspace(1, 50, 9), "S2": np.linspace(0, 3, 9)}),
    "lr_optimum": ({}, "normal", {"lr": np.geomspace(1e-4, 1e-2, 7), "N": N, "D": D}),
    "downstream": ({"floor": 0.25}, "beta", {"L": np.linspace(2.0, 4.0, 9)}),
    "loss_to_loss": ({}, "normal", {"Lx": np.linspace(2.4, 4.5, 9)}),
}


def prior_fit(name):
    """A ScalingFit whose 'posterior' is 200 prior draws: save/load without running NUTS."""
    options, likelihood, inputs = ROUND_TRIP[name]
    law, lik = bayescale.get_law(name, **options), get_likelihood(likelihood)
    y = 0.5 if lik.support == "open_unit" else 2.5
    df = pd.DataFrame(inputs).assign(y=y * np.exp(RNG.normal(0, 0.01, len(inputs[law.inputs[0]]))))
    priors = {**law.priors, **lik.priors}
    draws = {k: p.scipy().rvs(200, random_state=1) for k, p in priors.items()}
    return fake_fit(df, law, draws, y="y", likelihood=lik, chains=2), df


@pytest.mark.filterwarnings("ignore::bayescale.UndefinedDrawsWarning")
@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_every_law_round_trips_through_save_and_load(name, tmp_path):
    assert set(ROUND_TRIP) == set(bayescale.laws())
    fit, df = prior_fit(name)
    fit.save(tmp_path / "fit.nc")
    loaded = bayescale.load(tmp_path / "fit.nc")
    assert loaded.law.to_dict() == fit.law.to_dict()
    assert loaded.likelihood.to_dict() == fit.likelihood.to_dict()
    new = df.drop(columns="y").iloc[::3]
    for kind in ("mean", "observed"):
        pd.testing.assert_frame_equal(loaded.predict(new, kind=kind), fit.predict(new, kind=kind))
