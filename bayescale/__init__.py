"""bayescale: Bayesian scaling laws with PyMC, NUTS and ArviZ.

The five lines users need::

    fit = bayescale.fit(df, law="chinchilla", y="loss", random_seed=0)
    fit.summary(); fit.diagnostics
    fit.predict(targets, ci=0.9)
    fit.save("fit.nc"); bayescale.load("fit.nc")

The data flow, one subpackage or module per stage: ``data`` (validation) -> ``laws`` (the
catalogue in ``bayescale.models``), ``likelihoods``, ``priors``, ``pooling`` -> ``spec``
(``FitSpec``) -> ``engine`` (PyMC model, NUTS) -> ``result`` (``ScalingFit``, evaluated by
``predictive``) -> ``evaluation`` (scores, backtests, comparison, averaging, SBC, baseline).
``bayescale.laws`` is both the module of the law base class and, called, the list of laws.
"""

from bayescale import laws
from bayescale.batch import fit_many
from bayescale.diagnostics import Diagnostics
from bayescale.errors import (
    BayescaleError,
    CacheWarning,
    ConvergenceWarning,
    DataError,
    FitFileError,
    ParetoKWarning,
    SamplingError,
    SpecError,
    UndefinedDrawsWarning,
)
from bayescale.evaluation.averaging import AveragedFit, average
from bayescale.evaluation.backtesting import Backtest, backtest, reach_split
from bayescale.evaluation.calibration import recalibrate, sweep_error
from bayescale.evaluation.comparison import compare
from bayescale.evaluation.decisions import compute_optimal, frontier_exponents
from bayescale.evaluation.sbc import sbc
from bayescale.evaluation.sensitivity import sensitivity
from bayescale.evaluation.targets import compute_for_accuracy, compute_for_target
from bayescale.evaluation.two_stage import predict_chained
from bayescale.evaluation.versus import crossover, prob_beats
from bayescale.extrapolation import ExtrapolationError
from bayescale.fitting import fit
from bayescale.laws import ScalingLaw, get_law
from bayescale.likelihoods import (
    Beta,
    Binomial,
    Likelihood,
    Normal,
    OUNormal,
    StudentT,
    get_likelihood,
)
from bayescale.priors import Prior
from bayescale.result import ScalingFit, load
from bayescale.spec import FitSpec

__all__ = [
    "AveragedFit",
    "Backtest",
    "BayescaleError",
    "Beta",
    "Binomial",
    "CacheWarning",
    "ConvergenceWarning",
    "DataError",
    "Diagnostics",
    "ExtrapolationError",
    "FitFileError",
    "FitSpec",
    "Likelihood",
    "Normal",
    "OUNormal",
    "ParetoKWarning",
    "Prior",
    "SamplingError",
    "ScalingFit",
    "ScalingLaw",
    "SpecError",
    "StudentT",
    "UndefinedDrawsWarning",
    "average",
    "backtest",
    "compare",
    "compute_for_accuracy",
    "compute_for_target",
    "compute_optimal",
    "crossover",
    "fit",
    "fit_many",
    "frontier_exponents",
    "get_law",
    "get_likelihood",
    "laws",
    "load",
    "plots",
    "predict_chained",
    "prob_beats",
    "reach_split",
    "recalibrate",
    "sbc",
    "sensitivity",
    "sweep_error",
]


def __getattr__(name):
    """``bayescale.plots`` on first use: matplotlib and arviz-plots add seconds to an import."""
    if name == "plots":
        import importlib

        return importlib.import_module("bayescale.plots")
    raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
