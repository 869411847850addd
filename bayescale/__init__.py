"""bayescale: Bayesian scaling laws with PyMC, NUTS and ArviZ.

The five lines users need::

    fit = bayescale.fit(df, law="chinchilla", y="loss", random_seed=0)
    fit.summary(); fit.diagnostics
    fit.predict(targets, ci=0.9)
    fit.save("fit.nc"); bayescale.load("fit.nc")
"""

from bayescale.average import AveragedFit, average
from bayescale.backtest import Backtest, backtest, reach_split
from bayescale.chain import predict_chained
from bayescale.compare import ParetoKWarning, compare
from bayescale.diagnostics import ConvergenceWarning, Diagnostics
from bayescale.errors import BayescaleError, DataError, FitFileError, SamplingError, SpecError
from bayescale.fitting import fit
from bayescale.io import load
from bayescale.laws import ScalingLaw, get_law, laws
from bayescale.priors import Prior
from bayescale.result import ScalingFit, UndefinedDrawsWarning

__all__ = [
    "AveragedFit",
    "Backtest",
    "BayescaleError",
    "ConvergenceWarning",
    "DataError",
    "Diagnostics",
    "FitFileError",
    "ParetoKWarning",
    "Prior",
    "SamplingError",
    "ScalingFit",
    "ScalingLaw",
    "SpecError",
    "UndefinedDrawsWarning",
    "average",
    "backtest",
    "compare",
    "fit",
    "get_law",
    "laws",
    "load",
    "predict_chained",
    "reach_split",
]
