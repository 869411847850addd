"""Property-based tests of bad input (issue 23, item 5), with hypothesis.

Every generated input to the layers before and after sampling must end in a valid result or
a :class:`bayescale.BayescaleError` whose message names the problem: never another exception
type, a NaN in a result, or a hang. Nothing here samples with NUTS: :func:`bayescale.fit` is
run with ``run_nuts`` replaced by a sentinel, so reaching it means the inputs were accepted,
and predictions run on :func:`bayescale.testing.fake_fit` fits built from prior draws.

The fast lane runs ``sum(FAST.values())`` generated cases; the slow lane (``-m slow``)
``sum(SLOW.values())``.
"""

import contextlib
import signal
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import bayescale
from bayescale import data as data_mod
from bayescale.errors import BayescaleError, UndefinedDrawsWarning
from bayescale.likelihoods import get_likelihood
from bayescale.spec import resolve_priors
from bayescale.testing import fake_fit

# fake fits and short runs: what they answer warns that they failed the checks
# (tests/test_flags.py tests that warning); here it is not the subject
pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

FAST = {"prepare": 80, "fit": 60, "predict": 40, "density": 20}
SLOW = {"prepare": 400, "fit": 300, "predict": 250, "density": 100}
SECONDS_PER_CASE = 30
"""A case that runs longer is a hang (no validation step should take more than milliseconds)."""

LAWS = {
    "chinchilla": {},
    "power_law": {},
    "data_constrained": {},
    "downstream": {"floor": 0.25},
    "lr_annealing": {},
}
CAN_BE_UNDEFINED = {"loss_to_loss", "lr_annealing"}
"""Laws undefined for some draws and inputs (NaN with an UndefinedDrawsWarning): an ``Lx``
below a draw's ``E_x``; an ``S2`` far beyond the fitted ones (a negative loss)."""

# Slow but not a hang: building DataFrames of dates and big ints, and prediction chunks.
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@contextlib.contextmanager
def time_limit(seconds=SECONDS_PER_CASE):
    """Fail the case (instead of hanging the suite) when it runs past ``seconds``."""

    def expire(signum, frame):
        raise AssertionError(f"hang: the case ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(call):
    """``call()``'s result, or ``None`` if it raised a BayescaleError with a message.

    Any other exception propagates, so hypothesis reports and shrinks it.
    """
    with time_limit(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in logs of 1e300 is fine
        try:
            result = call()
        except BayescaleError as err:
            assert str(err).strip(), f"{type(err).__name__} without a message"
            event(f"{type(err).__name__}: {str(err)[:30]}")
            return None
    event("accepted")
    return result


# --- strategies ------------------------------------------------------------------------------


def mostly(valid, bad, odds=5):
    """``valid`` except one draw in ``odds``, which is ``bad`` (so many cases get far)."""
    return st.integers(1, odds).flatmap(lambda i: bad if i == odds else valid)


LABELS = st.one_of(
    st.sampled_from(["a", "b", " a", "a ", "", " ", "\t", "é", "ä", "日本", "\u200b", "1", "nan"]),
    st.text(max_size=4),
)
"""Group labels and column names, with unicode, whitespace and look-alikes."""

GOOD = st.floats(1e-2, 1e6)
EXTREME = st.sampled_from([1e300, 1e-300, 1.7e308, 5e-324, -1e300, 1e150, 1e-150, 2.0**53])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
SCALAR = st.one_of(
    GOOD,
    ANY_FLOAT,
    EXTREME,
    st.integers(-(2**70), 2**70),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
    st.complex_numbers(max_magnitude=1e6),
    st.datetimes(),
    st.just(object()),
    st.just((1, 2)),
    st.just(np.array([0.5, 0.9])),
)


@st.composite
def column(draw, n):
    """``n`` values of one kind (or mixed): floats, ints, text, bools, dates, complex..."""
    elements = draw(
        st.sampled_from(
            [
                *(GOOD, GOOD, ANY_FLOAT, EXTREME, st.integers(-5, 10**6), st.integers(0, 2**70)),
                *(st.text(max_size=3), st.booleans(), st.datetimes(), st.timedeltas()),
                *(st.complex_numbers(max_magnitude=1e6), st.just(object()), SCALAR),
                *(st.sampled_from([0.0, -1.0, 0.5, 1.0]), st.none()),
            ]
        )
    )
    return draw(st.lists(elements, min_size=n, max_size=n))


@st.composite
def tables(draw, names, group="g", y="loss"):
    """A table holding some of ``names`` (plus a response and group column) of mixed quality.

    Columns may be missing, of the wrong type, duplicated by name; rows may be zero, one or
    duplicated; labels may be unicode or whitespace.
    """
    n = draw(mostly(st.integers(3, 8), st.integers(0, 2)))
    wanted = [c for c in [*names, y, group, "C", "sd"] if c is not None]
    cols = draw(st.lists(st.sampled_from(wanted), unique=True, max_size=len(wanted)))
    if draw(mostly(st.just(True), st.just(False), odds=4)):  # most get past "missing column"
        cols = [c for c in wanted if c != "C" or draw(st.booleans())]
    cols += draw(st.lists(LABELS, max_size=2))
    values = {}
    for c in cols:
        if c == group:
            label = mostly(st.sampled_from(["a", "b", "c"]), st.one_of(LABELS, SCALAR))
            values[c] = draw(st.lists(label, min_size=n, max_size=n))
        elif draw(st.integers(0, 3)) == 0:
            values[c] = draw(column(n))
        else:
            values[c] = draw(st.lists(GOOD, min_size=n, max_size=n))
    df = pd.DataFrame(values, index=range(n))
    index = draw(st.sampled_from(["range", "text", "repeated"]))
    if index == "text" and n:
        df.index = [f"run {i} é" for i in range(n)]
    elif index == "repeated" and n:
        df.index = [0] * n
    if draw(st.integers(0, 3)) == 0 and n:
        df = pd.concat([df, df.iloc[: draw(st.integers(1, n))]])  # duplicated rows
    if len(df.columns) and draw(st.integers(0, 5)) == 0:  # a column name given twice
        names_ = list(df.columns)
        names_[-1] = draw(st.sampled_from(names_))
        df.columns = names_
    return df


def law_strategy():
    """One of the laws under test, with its options."""
    return st.sampled_from(sorted(LAWS)).map(lambda name: bayescale.get_law(name, **LAWS[name]))


MAPPINGS = mostly(
    st.none(),
    st.one_of(
        st.dictionaries(st.sampled_from(["N", "D", "x", "C", "U", "L", "S1", "S2", "Q"]), LABELS),
        st.sampled_from([["N"], "N", 3, {"N": None}, {"N": ["a"]}, {"N": "N"}]),
    ),
)


def not_tables(df):
    """The same rows as a dict of columns, or things that are not tables at all."""
    as_dict = df.to_dict("list") if df.columns.is_unique else {}
    return st.one_of(
        st.just(as_dict),
        st.just({"N": [1.0, 2.0], "loss": [1.0]}),  # unequal lengths
        st.just(df.to_numpy()),
        st.just(df.to_dict("records") if df.columns.is_unique else []),
        st.just("/no/such/table.csv"),
        SCALAR,
    )


@st.composite
def prepare_cases(draw):
    """Arguments of :func:`bayescale.data.prepare`."""
    law = draw(law_strategy())
    y = draw(mostly(st.sampled_from(["loss", "loss", None]), LABELS))
    group = draw(mostly(st.sampled_from([None, "g"]), LABELS))
    df = draw(tables(law.inputs, group=group if isinstance(group, str) else None))
    return {
        "data": draw(mostly(st.just(df), not_tables(df), odds=8)),
        "law": law,
        "y": y,
        "inputs": draw(MAPPINGS),
        "group": group,
        "y_log_sd": draw(mostly(st.sampled_from([None, None, "sd"]), st.just("loss") | LABELS)),
        "y_support": draw(
            mostly(st.just("positive"), st.sampled_from(sorted(data_mod.SUPPORTS)), odds=2)
        ),
        "flops_per_token": draw(mostly(st.sampled_from([6.0, 2, 1e-3]), SCALAR, odds=10)),
        "n_params": draw(st.integers(0, 6)),
    }


def check_fit_data(result, case):
    """A FitData holds only finite numbers in the law's inputs and the response."""
    frame = result.frame
    assert len(frame) >= 1
    numeric = [*result.inputs, *([result.y] if result.y else [])]
    for name in numeric:
        values = frame[name].to_numpy()
        assert values.dtype == np.float64, (name, values.dtype)
        assert np.isfinite(values).all(), f"column {name} has non-finite values: {values}"
    if result.group:
        assert all(isinstance(v, str) for v in frame[result.group])


def _prepare(case):
    result = outcome(lambda: data_mod.prepare(**case))
    if result is not None:
        check_fit_data(result, case)


CHINCHILLA = bayescale.get_law("chinchilla")


@settings(max_examples=FAST["prepare"], **SETTINGS)
@given(case=prepare_cases())
@example(
    case={
        "data": pd.DataFrame({"N": [1e-300, 2e-300, 3e-300], "C": [1e300, 1e300, 2e300]}).assign(
            loss=[3.0, 2.0, 1.0]
        ),
        "law": CHINCHILLA,
        "y": "loss",
        "inputs": None,
        "group": None,
        "y_log_sd": None,
        "y_support": "positive",
        "flops_per_token": 6.0,
        "n_params": 0,
    }
)
def test_prepare_ends_in_finite_data_or_a_named_error(case):
    _prepare(case)


@pytest.mark.slow
@settings(max_examples=SLOW["prepare"], **SETTINGS)
@given(case=prepare_cases())
def test_prepare_ends_in_finite_data_or_a_named_error_slow(case):
    _prepare(case)


# --- fit() arguments, up to sampling ---------------------------------------------------------


class ReachedSampling(Exception):
    """Raised in place of NUTS: every argument before sampling was accepted."""


def _grid(n=12, seed=0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e11), n))
    U = D / rng.uniform(1, 4, n)
    return pd.DataFrame(
        {
            "N": N,
            "D": D,
            "U": U,
            "x": N,
            "L": rng.uniform(0.5, 3, n),
            "S1": np.linspace(100, 5000, n),
            "S2": np.linspace(0, 2000, n),
            "loss": 1.7 + 400 * N**-0.34 + 400 * D**-0.28,
            "acc": rng.uniform(0.3, 0.9, n),
            "g": np.tile(["a", "b"], n // 2),
        }
    )


FIT_TABLE = _grid()
DISTRIBUTIONS = st.one_of(st.sampled_from(bayescale.Prior.supported()), LABELS, SCALAR)
PARAM_NAMES = st.sampled_from(["mu", "sigma", "nu", "alpha", "beta", "lam", "lower", "upper"])
PARAM_VALUES = st.one_of(st.floats(-5, 5), st.floats(1e-3, 10), ANY_FLOAT, EXTREME, SCALAR)
PRIOR_TARGETS = st.sampled_from(
    [
        *("E", "a_ref", "b_ref", "alpha", "beta", "sigma", "nu", "alpha_tau", "r_d_star"),
        *("headroom", "L0", "phi", "slope_ref", "kappa", "bogus", "E_mu"),
    ]
)
POOLINGS = bayescale.pooling.POOLINGS
POOLING_MODES = st.one_of(
    st.sampled_from([*POOLINGS, "pooled_partial", "Pooled", " shared", ""]),
    SCALAR,
)
LIKELIHOODS = st.one_of(
    st.sampled_from(["normal", "student_t", "beta", "binomial", "ou_normal", "Normal", ""]),
    st.fixed_dictionaries(
        {"name": st.sampled_from(["normal", "binomial", "student_t", "beta", "ou_normal"])},
        optional={"n": SCALAR, "along": st.one_of(LABELS, SCALAR), "nu": SCALAR},
    ),
    st.dictionaries(LABELS, SCALAR, max_size=2),
    SCALAR,
)
COUNTS = mostly(
    st.integers(1, 5000) | st.just(np.int64(4)),
    st.integers(-3, 0) | SCALAR | st.sampled_from([4.0, "4", True]),
    odds=10,
)


@st.composite
def priors_dicts(draw, law):
    """A priors= argument: Priors with random distributions and parameters, or garbage.

    Mostly for ``law``'s own parameters, near their default priors.
    """
    defaults = {}
    if isinstance(law, bayescale.ScalingLaw):
        defaults = resolve_priors(law, get_likelihood("normal"), None, {})
    targets = (
        mostly(st.sampled_from(sorted(defaults)), PRIOR_TARGETS) if defaults else PRIOR_TARGETS
    )
    out = {}
    for name in draw(st.lists(targets, max_size=3, unique=True)):
        if draw(st.integers(0, 9)) == 0:
            out[name] = draw(SCALAR)
            continue
        if name in defaults and draw(st.booleans()):  # the default, rescaled
            scale = draw(st.floats(0.5, 2))
            dist, params = defaults[name].dist, dict(defaults[name].params)
            params = {k: v * scale for k, v in params.items()}
        else:
            dist = draw(mostly(st.sampled_from(bayescale.Prior.supported()), DISTRIBUTIONS))
            known = isinstance(dist, str) and dist in bayescale.Prior.supported()
            if known and draw(st.booleans()):  # the right parameter names
                params = {k: draw(PARAM_VALUES) for k in bayescale.priors._DISTRIBUTIONS[dist][0]}
            else:
                params = draw(st.dictionaries(PARAM_NAMES, PARAM_VALUES, max_size=3))
        try:  # any other exception fails the test while generating it
            out[name] = bayescale.Prior(dist, **params)
        except BayescaleError as err:
            assert str(err).strip()
    return draw(mostly(st.sampled_from([out, out, None]), st.sampled_from([[out], "priors"])))


@st.composite
def fit_cases(draw):
    """Arguments of :func:`bayescale.fit` other than the table."""
    name = draw(mostly(st.sampled_from(sorted(LAWS)), st.one_of(LABELS, SCALAR), odds=10))
    law = bayescale.get_law(name, **LAWS[name]) if isinstance(name, str) and name in LAWS else name
    group = draw(
        mostly(st.sampled_from([None, None, "g", "missing"]), LABELS | SCALAR | st.just(["g"]))
    )
    parameters = law.parameters if isinstance(law, bayescale.ScalingLaw) else ("alpha",)
    choices = st.dictionaries(
        mostly(st.sampled_from(parameters), PRIOR_TARGETS | LABELS),
        mostly(st.sampled_from(POOLINGS), POOLING_MODES),
        max_size=3,
    )
    valid = st.none() if group is None else st.none() | choices
    pooling = draw(mostly(valid, choices | SCALAR | st.just([("alpha", "shared")])))
    return {
        "law": law,
        "y": draw(mostly(st.sampled_from(["loss", "loss", "acc"]), LABELS | SCALAR, odds=10)),
        "group": group,
        "pooling": pooling,
        "priors": draw(priors_dicts(law)),
        "likelihood": draw(mostly(st.sampled_from(["normal", "student_t"]), LIKELIHOODS)),
        "flops_per_token": draw(mostly(st.just(6.0), SCALAR, odds=10)),
        "sampler": draw(
            mostly(st.sampled_from(["numpyro", "nutpie", "pymc"]), st.just("jax") | SCALAR, 10)
        ),
        "chains": draw(COUNTS),
        "draws": draw(COUNTS),
        "tune": draw(COUNTS),
        "target_accept": draw(mostly(st.floats(0.01, 0.99), st.floats(0, 1) | ANY_FLOAT | SCALAR)),
        "random_seed": draw(mostly(st.integers(0, 2**32), st.integers(-5, 2**70) | SCALAR)),
    }


def _until_sampling(case):
    def run():
        with mock.patch.object(bayescale.engine.sample, "run_nuts", side_effect=ReachedSampling):
            try:
                bayescale.fit(FIT_TABLE, **case)
            except ReachedSampling:
                return True
        raise AssertionError("fit() returned without sampling")

    outcome(run)


@settings(max_examples=FAST["fit"], **SETTINGS)
@given(case=fit_cases())
def test_fit_arguments_are_accepted_or_named_before_sampling(case):
    _until_sampling(case)


@pytest.mark.slow
@settings(max_examples=SLOW["fit"], **SETTINGS)
@given(case=fit_cases())
def test_fit_arguments_are_accepted_or_named_before_sampling_slow(case):
    _until_sampling(case)


# --- prediction on fake fits -----------------------------------------------------------------


def _prior_draws(law, likelihood, pooling, labels, n=40, seed=0):
    """Draws of every sampled quantity from the default priors (shape (n,) or (n, groups))."""
    rng = np.random.default_rng(seed)
    pool = bayescale.pooling.resolve(law, "g" if labels else None, pooling)
    priors = resolve_priors(law, likelihood, None, bayescale.pooling.hyper_priors(pool))
    draws = {}
    for name, prior in priors.items():
        draws[name] = prior.scipy().rvs(n, random_state=rng)
    for name, mode in pool.items():
        if mode == "separate":
            draws[name] = priors[name].scipy().rvs((n, len(labels)), random_state=rng)
        elif mode != "shared":
            draws[f"{name}_mu"] = draws[name]
            u = priors[name].to_unconstrained(bayescale.ops.NUMPY, draws[name])[:, None]
            u = u + draws[f"{name}_tau"][:, None] * rng.standard_normal((n, len(labels)))
            draws[name] = priors[name].to_constrained(bayescale.ops.NUMPY, u)
    return draws


def _fake(name, group=False):
    law = bayescale.get_law(name, **LAWS.get(name, {}))
    table = FIT_TABLE
    if name == "loss_to_loss":
        table = table.assign(Lx=table["loss"] + 0.5)
    columns = [*law.inputs, "loss", *(["g"] if group else [])]
    pooling = {"alpha": "separate"} if group and "alpha" in law.parameters else None
    labels = ("a", "b") if group else ()
    lik = get_likelihood("normal")
    draws = _prior_draws(law, lik, pooling, labels)
    return fake_fit(table[columns], law, draws, group="g" if group else None, pooling=pooling)


FIT_KINDS = [(name, False) for name in sorted(LAWS)] + [
    ("power_law", True),
    ("chinchilla", True),
    ("loss_to_loss", False),
]
FAKE_FITS = {}


def fake(key):
    """The fake fit ``key`` (built once)."""
    if key not in FAKE_FITS:
        FAKE_FITS[key] = _fake(*key)
    return FAKE_FITS[key]


@st.composite
def predict_cases(draw):
    """A fake fit and generated prediction targets, ci and kind."""
    key = draw(st.sampled_from(FIT_KINDS))
    law = bayescale.get_law(key[0], **LAWS.get(key[0], {}))
    df = draw(tables(law.inputs, group="g" if key[1] else None))
    if key[1] and "g" in df.columns and draw(st.booleans()):  # known and unknown groups
        df["g"] = draw(
            st.lists(st.sampled_from(["a", "b", "c", " a"]), min_size=len(df), max_size=len(df))
        )
    df = draw(mostly(st.just(df), not_tables(df), odds=8))
    ci = draw(mostly(st.just(0.9) | st.floats(0.001, 0.999), st.floats(0, 1) | ANY_FLOAT | SCALAR))
    kind = draw(mostly(st.sampled_from(["mean", "observed"]), LABELS | SCALAR))
    return key, df, ci, kind


def check_prediction(key, result):
    """No NaN where the law is defined, lower <= median <= upper, reach >= 1 or NaN."""
    assert list(result.columns[-5:]) == ["median", "lower", "upper", "reach", "extrapolation_share"]
    reach, share = result["reach"].to_numpy(), result["extrapolation_share"].to_numpy()
    assert (np.isnan(reach) | (reach >= 1)).all() and ((share >= 0) & (share <= 1)).all()
    med, lo, hi = (result[c].to_numpy() for c in ("median", "lower", "upper"))
    defined = ~np.isnan(med)
    if key[0] not in CAN_BE_UNDEFINED:
        assert defined.all(), f"NaN predictions at rows {list(result.index[~defined])}"
    assert (lo[defined] <= med[defined]).all() and (med[defined] <= hi[defined]).all()


def _predict(case):
    key, df, ci, kind = case
    fit = fake(key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedDrawsWarning)
        result = outcome(lambda: fit.predict(df, ci=ci, kind=kind))
    if result is not None:
        check_prediction(key, result)
        if result["median"].isna().any():
            assert any(issubclass(w.category, UndefinedDrawsWarning) for w in caught)


@settings(max_examples=FAST["predict"], **SETTINGS)
@given(case=predict_cases())
def test_predict_ends_in_ordered_intervals_or_a_named_error(case):
    _predict(case)


@pytest.mark.slow
@settings(max_examples=SLOW["predict"], **SETTINGS)
@given(case=predict_cases())
def test_predict_ends_in_ordered_intervals_or_a_named_error_slow(case):
    _predict(case)


@st.composite
def density_cases(draw):
    """A fake fit and a generated held-out table with the response."""
    key = draw(st.sampled_from(FIT_KINDS))
    law = bayescale.get_law(key[0], **LAWS.get(key[0], {}))
    df = draw(tables(law.inputs, group="g" if key[1] else None))
    return key, df


def _density(case):
    key, df = case
    fit = fake(key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedDrawsWarning)
        result = outcome(lambda: fit.log_predictive_density(df))
    if result is not None:
        result = np.asarray(result)
        assert result.shape == (len(df),)
        if np.isnan(result).any():
            assert key[0] in CAN_BE_UNDEFINED, f"NaN log densities: {result}"
            assert any(issubclass(w.category, UndefinedDrawsWarning) for w in caught)


@settings(max_examples=FAST["density"], **SETTINGS)
@given(case=density_cases())
def test_log_predictive_density_is_a_number_per_row_or_a_named_error(case):
    _density(case)


@pytest.mark.slow
@settings(max_examples=SLOW["density"], **SETTINGS)
@given(case=density_cases())
def test_log_predictive_density_is_a_number_per_row_or_a_named_error_slow(case):
    _density(case)


# --- the minimal failing examples the properties found, as plain regression tests ------------

TWO_ROWS = pd.DataFrame({"N": [1e8, 1e9], "D": [1e10, 1e11], "loss": [3.0, 2.5]})


def test_tokens_derived_from_compute_that_leave_float64_are_named():
    table = pd.DataFrame({"N": [1e-300, 2e-300, 3e-300], "C": [1e300, 1e300, 2e300]})
    with pytest.raises(bayescale.DataError, match=r"tokens D = C / \(6 N\).*3 rows \(0, 1, 2\)"):
        data_mod.prepare(table.assign(loss=[3.0, 2.0, 1.0]), CHINCHILLA, "loss")
    tiny = table.assign(N=[1e300, 2e300, 3e300], C=[1e-300, 1e-300, 2e-300])
    with pytest.raises(bayescale.DataError, match="overflow or underflow"):  # D = 0
        data_mod.prepare(tiny, CHINCHILLA, None)


def test_column_arguments_that_cannot_name_a_column_are_named():
    with pytest.raises(
        bayescale.DataError, match=r"inputs\['N'\]= must name a column, got \['a'\]"
    ):
        data_mod.prepare(TWO_ROWS, CHINCHILLA, None, inputs={"N": ["a"]})
    with pytest.raises(bayescale.DataError, match=r"inputs\['N'\]= must name a column, got None"):
        data_mod.prepare(TWO_ROWS, CHINCHILLA, None, inputs={"N": None})
    with pytest.raises(bayescale.DataError, match="group= must name a column"):
        data_mod.prepare(TWO_ROWS, CHINCHILLA, "loss", group=["g"])
    with pytest.raises(bayescale.DataError, match="group column <object"):
        data_mod.prepare(TWO_ROWS, CHINCHILLA, "loss", group=object())


def test_fit_names_bad_pooling_and_flops_per_token_before_sampling():
    with pytest.raises(bayescale.SpecError, match="pooling= must map law parameters"):
        bayescale.fit(FIT_TABLE, pooling=1.0)
    with pytest.raises(bayescale.DataError, match="flops_per_token must be a positive number"):
        bayescale.fit(FIT_TABLE, flops_per_token=object())  # no C column: it was never read


def test_prior_parameters_beyond_float64_are_named():
    assert bayescale.Prior("Normal", mu=2**70, sigma=1).params["mu"] == 2.0**70
    with pytest.raises(bayescale.SpecError, match="mu=1000.* must be a finite number"):
        bayescale.Prior("Normal", mu=10**400, sigma=1)
    with pytest.raises(bayescale.SpecError, match=r"mu=np.complex128\(1\+2j\) must be a finite"):
        bayescale.Prior("Normal", mu=np.complex128(1 + 2j), sigma=1)


def test_log_predictive_density_names_a_repeated_response_column():
    table = pd.DataFrame([[1.0, 2.0, 2.0]] * 3, columns=["L", "loss", "loss"])
    with pytest.raises(bayescale.DataError, match=r"column 'loss' \(response\) appears 2 times"):
        fake(("downstream", False)).log_predictive_density(table)


def test_log_predictive_density_warns_where_the_law_is_undefined_for_every_draw():
    table = pd.DataFrame({"S1": [1252.0, 1252.0], "S2": [339948.0, 10.0], "loss": [1.0, 2.0]})
    with pytest.warns(UndefinedDrawsWarning, match=r"every posterior draw at 1 row \(0\)"):
        density = fake(("lr_annealing", False)).log_predictive_density(table)
    assert np.isnan(density[0]) and np.isfinite(density[1])


def test_predictions_beyond_float64_are_infinite_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # exp overflows for some draws
        result = fake(("loss_to_loss", False)).predict(pd.DataFrame({"Lx": [1e300, 3.0]}))
    assert not result[["median", "lower", "upper"]].isna().any().any()
    assert result["upper"].iloc[0] == np.inf
    check_prediction(("chinchilla", False), result)


def test_arrays_where_a_name_or_a_value_belongs_are_named():
    array = np.array([0.5, 0.9])
    with pytest.raises(bayescale.SpecError, match="unknown prior distribution array"):
        bayescale.Prior(array)
    with pytest.raises(bayescale.SpecError, match="kind must be 'mean' or 'observed'"):
        fake(("power_law", False)).predict(pd.DataFrame({"x": [1e7]}), kind=array)
    with pytest.raises(bayescale.SpecError, match="unknown sampler array"):
        bayescale.fit(FIT_TABLE, sampler=array)
    with pytest.raises(bayescale.SpecError, match=r"pooling\['alpha'\] = array"):
        bayescale.fit(FIT_TABLE, group="g", pooling={"alpha": array})
    grouped = pd.DataFrame({"x": [1.0, 2.0, 3.0], "loss": [3.0, 2.0, 1.0], "g": [array, "a", "b"]})
    with pytest.raises(bayescale.DataError, match="group column 'g' holds ndarray values"):
        data_mod.prepare(grouped, bayescale.get_law("power_law"), "loss", group="g")
    with pytest.raises(bayescale.DataError, match=r"column 'x' \(input x\) has non-numeric"):
        data_mod.prepare(grouped.assign(x=grouped["g"]), bayescale.get_law("power_law"), None)
