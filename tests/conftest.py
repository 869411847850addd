import importlib
import sys
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CASE_STUDIES = Path(__file__).resolve().parents[1] / "case_studies"
CHINCHILLA_CSV = SHARED_DATA / "epoch_analyzing_chinchilla" / "svg_extracted_data.csv"


def besiroglu_chinchilla():
    """The 240-point Epoch reconstruction (5 highest losses dropped), or skip."""
    if not CHINCHILLA_CSV.exists():
        pytest.skip(f"real data not available: {CHINCHILLA_CSV} is missing (../shared/data)")
    df = pd.read_csv(CHINCHILLA_CSV)
    return df.sort_values("loss").iloc[:-5]


def case_study(module, *data):
    """Import ``case_studies/<module>.py``, or skip when a folder it reads is missing.

    ``data`` are paths under ``../shared/data`` (the real data sets are never copied into
    the repository, so a checkout without them skips these tests and says why).
    """
    for sub in data:
        if not (SHARED_DATA / sub).exists():
            pytest.skip(f"real data not available: {SHARED_DATA / sub} is missing")
    if str(CASE_STUDIES) not in sys.path:
        sys.path.insert(0, str(CASE_STUDIES))
    return importlib.import_module(module)


@pytest.fixture(scope="session")
def sim_sweep():
    from bayescale.simulate import chinchilla_sweep

    return chinchilla_sweep(random_seed=3)


def fit_sweep(sweep, **kwargs):
    """Fit the Chinchilla law to a simulated sweep; ``kwargs`` override the test settings."""
    import bayescale

    settings = {"random_seed": 1, "chains": 4, "draws": 1000, "tune": 1000, **kwargs}
    return bayescale.fit(sweep[["N", "D", "loss"]], law="chinchilla", y="loss", **settings)


@pytest.fixture(scope="session")
def short_fit(sim_sweep):
    """A real NUTS fit (4 chains x 1000 draws) on 90 simulated runs, shared by fast tests."""
    return fit_sweep(sim_sweep)


def model_for(law, likelihood, fitdata, pooling=None):
    """The PyMC model ``bayescale.fit`` builds for validated data, without sampling it.

    Default priors (and group scales) via ``resolve_priors``, the law's own reference
    scales, and the sorted group labels of a grouped ``fitdata``.
    """
    from bayescale import pooling as pooling_mod
    from bayescale.engine.build import build_model
    from bayescale.spec import resolve_priors

    group = fitdata.group
    pool = pooling_mod.resolve(law, group, pooling)
    labels = sorted(fitdata.frame[group].unique()) if group else []
    priors = resolve_priors(law, likelihood, None, pooling_mod.hyper_priors(pool))
    log_ref = law.log_reference(fitdata.frame)
    return build_model(law, priors, likelihood, fitdata, log_ref, pool, labels)


def finite_gradient(model):
    """Assert the log density and its gradient are finite at the initial point; the gradient."""
    import numpy as np

    point = model.initial_point()
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(point))
    grad = model.compile_dlogp(mode="FAST_COMPILE")(point)
    assert np.all(np.isfinite(grad))
    return grad
