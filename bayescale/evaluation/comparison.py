"""Model comparison by PSIS-LOO (Vehtari, Gelman and Gabry 2017), through ArviZ.

Comparing elpd only makes sense between fits of the same observations on the same
response scale: the check below (same rows, same response column, same values, the same
values of the law inputs the fits share, and likelihoods that are densities of the same
thing: ``log y`` for losses, ``y`` for Beta, counts for Binomial) is what makes the
comparison valid.
"""

import warnings

import numpy as np
import pandas as pd

from bayescale import arviz_adapter
from bayescale.diagnostics import flag
from bayescale.errors import ParetoKWarning, SpecError
from bayescale.evaluation.decisions import row_compute
from bayescale.result import ScalingFit

METHODS = ("stacking", "bb-pseudo-bma", "pseudo-bma")
"""ArviZ's ways of weighting fits."""


def check_same_data(fits):
    """Refuse fits whose elpd values (or mixture) would not be of the same observations.

    Same likelihood scale, same response column and values, and equal values in every
    column of the table that the fits both read as an input (a fit of ``N`` reversed has
    the same losses, other runs), checked for every pair: a column that two fits read
    may be one the first fit does not.
    """
    names = list(fits)
    ref = fits[names[0]].data
    for name in names[1:]:
        scales = fits[names[0]].likelihood.scale, fits[name].likelihood.scale
        if scales[0] != scales[1]:
            raise SpecError(
                f"cannot compare {names[0]!r} with {name!r}: their likelihoods are densities of "
                f"different things ({scales[0]} vs {scales[1]}), so elpd values are not comparable"
            )
        other = fits[name].data
        if other.y != ref.y:
            raise SpecError(
                f"cannot compare {names[0]!r} (response {ref.y!r}) with {name!r} (response "
                f"{other.y!r}): LOO needs the same response on the same scale"
            )
        same = len(other.frame) == len(ref.frame) and np.array_equal(
            other.frame[other.y].to_numpy(), ref.frame[ref.y].to_numpy()
        )
        if not same:
            raise SpecError(
                f"cannot compare {names[0]!r} ({len(ref.frame)} rows) with {name!r} "
                f"({len(other.frame)} rows): they were fitted on different data"
            )
    for i, first in enumerate(names):
        for name in names[i + 1 :]:
            ours, theirs = _input_columns(fits[first]), _input_columns(fits[name])
            for column in [c for c in ours if c in theirs]:
                if not np.array_equal(ours[column], theirs[column]) and not (
                    column == "D" and _same_compute(fits[first], fits[name])
                ):
                    raise SpecError(
                        f"cannot compare {first!r} with {name!r}: the column {column!r} they "
                        "both read differs row by row, so they were fitted on different runs"
                    )


def _input_columns(fit):
    """``{column of the user's table: values}`` of a fit's law inputs.

    Compared by the column a fit read, not by the law's name for it: ``power_law`` on
    ``x=N`` and ``chinchilla`` read the same ``N``; two power laws on ``x=N`` and ``x=D``
    read different columns of the same runs.
    """
    return {fit.spec.column(k): fit.data.frame[k].to_numpy() for k in fit.data.inputs}


def _same_compute(a, b):
    """Whether two fits' tokens are one table's compute read with different ``k``.

    ``D = C / (k N)`` is derived where a table has compute and no tokens, so fits of one
    table with ``flops_per_token`` 6 and 8 read the same runs with different ``D``.
    """
    if not np.array_equal(a.data.frame["N"], b.data.frame["N"]):
        return False
    computes = [row_compute(fit.data.frame, fit.spec.flops_per_token) for fit in (a, b)]
    return np.allclose(*computes, rtol=1e-12)


def compare(fits, method="stacking"):
    """Compare fits of the same data by PSIS-LOO, with stacking weights.

    Parameters
    ----------
    fits : dict of str to ScalingFit
        At least two fits of the same observations (laws, pooling choices, likelihoods).
    method : {"stacking", "bb-pseudo-bma", "pseudo-bma"}
        How ArviZ computes the weights.

    Returns
    -------
    pandas.DataFrame
        One row per fit, best first: ``rank, elpd, se, elpd_diff, dse, p, weight`` and
        ``n_high_pareto_k`` (observations whose Pareto k exceeds ArviZ's ``good_k``) and
        ``converged``. Warns with :class:`ParetoKWarning` when any fit has such
        observations, and with :class:`~bayescale.errors.ConvergenceWarning` when one
        failed its convergence checks (:func:`bayescale.diagnostics.flag`).
    """
    if not isinstance(fits, dict) or len(fits) < 2:
        raise SpecError("compare needs at least two fits, as a dict of name -> fit")
    if wrong := [k for k, f in fits.items() if not isinstance(f, ScalingFit)]:
        raise SpecError(f"compare takes bayescale fits; {wrong} are not")
    if method not in METHODS:
        raise SpecError(f"method must be one of {METHODS}, got {method!r}")
    check_same_data(fits)
    table = arviz_adapter.compare({k: f.posterior for k, f in fits.items()}, method=method)
    high = {}
    for name, fit in fits.items():
        result = arviz_adapter.loo(fit.posterior)
        high[name] = int((np.asarray(result.pareto_k) > result.good_k).sum())
    table["n_high_pareto_k"] = pd.Series(high)
    bad = {k: v for k, v in high.items() if v}
    if bad:
        warnings.warn(
            f"PSIS-LOO is unreliable for {bad} observations (Pareto k above threshold); "
            "treat elpd differences for those fits with caution",
            ParetoKWarning,
            stacklevel=2,
        )
    table["converged"] = pd.Series({name: fit.converged for name, fit in fits.items()})
    cols = ["rank", "elpd", "se", "elpd_diff", "dse", "p", "weight", "n_high_pareto_k"]
    return flag(table[[*cols, "converged"]], fits, "comparison")
