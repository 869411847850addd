"""Every ArviZ call bayescale makes, in one place.

ArviZ 1.x changed defaults silently (89% ETI instead of 94% HDI; renamed compare columns),
so this module pins the interval kind and probability itself and translates ArviZ's column
names into bayescale's. A future ArviZ change should touch this file only.

It imports ``arviz_stats`` (ArviZ 1.x's statistics package) rather than the ``arviz``
umbrella, which also imports the plotting stack: 0.5 s less on every fit's start-up.
"""

import warnings

import arviz_stats as az
import numpy as np

SAMPLE_DIMS = ("chain", "draw")


def summary(posterior, var_names, ci):
    """Posterior table: mean, sd, median, equal-tailed ``ci`` interval, r-hat, ESS.

    Parameters
    ----------
    posterior : xarray.DataTree
    var_names : list of str
    ci : float
        Central interval probability, e.g. 0.9.

    Returns
    -------
    pandas.DataFrame
        Index: parameter names (``alpha``, or ``alpha[corpus_a]`` for vector parameters);
        columns ``mean, sd, median, lower, upper, r_hat, ess_bulk, ess_tail, mcse_mean``.
    """
    table = az.summary(posterior, var_names=var_names, ci_kind="eti", ci_prob=ci, round_to="none")
    lower, upper = (c for c in table.columns if c.startswith("eti"))
    table = table.rename(columns={lower: "lower", upper: "upper"})
    medians = az.summary(posterior, var_names=var_names, kind="stats_median", round_to="none")
    table.insert(2, "median", medians["median"].reindex(table.index).to_numpy())
    cols = ["mean", "sd", "median", "lower", "upper", "r_hat", "ess_bulk", "ess_tail", "mcse_mean"]
    return table[cols]


def bfmi(posterior):
    """E-BFMI of each chain (from the ``energy`` sampler statistic)."""
    return np.atleast_1d(np.asarray(az.bfmi(posterior)["energy"]))


_PARETO_WARNING = "Estimated shape parameter of Pareto distribution"
"""ArviZ's anonymous per-call warning; :func:`bayescale.compare` reports high Pareto k
itself, per fit and with counts, as a :class:`~bayescale.errors.ParetoKWarning`."""


def loo(posterior):
    """PSIS-LOO of one fit (ArviZ ``ELPDDataLOO``: elpd, se, pareto_k, good_k)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _PARETO_WARNING, UserWarning)
        return az.loo(posterior)


def compare(posteriors, method="stacking"):
    """ArviZ's LOO comparison table, unrounded (ArviZ 1.x rounds values by default)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _PARETO_WARNING, UserWarning)
        return az.compare(posteriors, method=method, round_to="none")
