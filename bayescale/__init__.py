"""bayescale: Bayesian scaling laws with PyMC, NUTS and ArviZ.

The five lines users need::

    fit = bayescale.fit(df, law="chinchilla", y="loss", random_seed=0)
    fit.summary(); fit.diagnostics
    fit.predict(targets, ci=0.9)
    fit.save("fit.nc"); bayescale.load("fit.nc")
"""

from bayescale.compare import ParetoKWarning, compare
from bayescale.diagnostics import ConvergenceWarning, Diagnostics
from bayescale.errors import BayescaleError, DataError, FitFileError, SpecError
from bayescale.fitting import fit
from bayescale.io import load
from bayescale.laws import ScalingLaw, get_law, laws
from bayescale.priors import Prior
from bayescale.result import ScalingFit

__all__ = [
    "BayescaleError",
    "ConvergenceWarning",
    "DataError",
    "Diagnostics",
    "FitFileError",
    "ParetoKWarning",
    "Prior",
    "ScalingFit",
    "ScalingLaw",
    "SpecError",
    "compare",
    "fit",
    "get_law",
    "laws",
    "load",
]
