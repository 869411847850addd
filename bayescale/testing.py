"""Fits built from given draws, and designs shared by the tests and the benchmarks.

:func:`fake_fit` returns a real :class:`~bayescale.ScalingFit` (validated data, a
:class:`~bayescale.spec.FitSpec`, derived quantities and the pointwise log-likelihood
computed as :func:`bayescale.fit` computes them), so everything downstream of sampling
(prediction, LOO, saving, two-stage prediction, backtest scores) runs on it unchanged.
"""

from dataclasses import replace

import numpy as np
import xarray as xr

from bayescale import pooling as pooling_mod
from bayescale.data import prepare
from bayescale.errors import SpecError
from bayescale.extrapolation import default
from bayescale.fitting import assemble_posterior
from bayescale.laws import get_law
from bayescale.likelihoods import get_likelihood
from bayescale.result import ScalingFit
from bayescale.simulate import from_law
from bayescale.spec import FitSpec, resolve_priors

ONE_BREAK = {"y_ref": 1.5, "a_frac": 0.3, "c0": 0.2, "z1": 0.4, "c1": 1.5, "f1": 0.3}
"""True free parameters of the one-break BNSL recovery design (a visible break)."""


def one_break_curve(seed):
    """The one-break recovery design's data set ``seed``: 40 points, 1% noise.

    ``x`` is log-uniform in [1e3, 1e5]. The slow lane's recovery test fits it; ``benchmarks/convergence_rates.py`` measures how
    often such fits fail the convergence checks.
    """
    rng = np.random.default_rng(300 + seed)
    x = np.exp(rng.uniform(np.log(1e3), np.log(1e5), 40))
    law = get_law("broken_power_law")
    return from_law(law, ONE_BREAK, {"x": x}, noise=0.01, random_seed=seed)[["x", "loss"]]


def fake_fit(
    data,
    law,
    draws,
    *,
    y="loss",
    likelihood="normal",
    inputs=None,
    group=None,
    pooling=None,
    log_ref=None,
    chains=1,
    flops_per_token=6.0,
    random_seed=0,
    own_extrapolation=None,
):
    """A :class:`~bayescale.ScalingFit` of ``data`` whose posterior is ``draws``.

    Parameters
    ----------
    data, law, y, likelihood, inputs, group, pooling, flops_per_token, random_seed
        As for :func:`bayescale.fit`.
    draws : dict of str to array_like
        Draws of every sampled quantity (law parameters, ``*_mu``/``*_tau`` of pooled
        ones, the likelihood's parameters): shape (n,), or (n, groups) for a parameter
        that varies by group, with the same n for all.
    log_ref : dict of str to float, optional
        Reference scales; default the law's own, from ``data``.
    chains : int
        The n draws are split into this many chains of n / chains (for diagnostics).
    own_extrapolation : ExtrapolationError, optional
        Its :attr:`~bayescale.ScalingFit.own_extrapolation`, what
        ``extrapolation="calibrated"`` adds beyond the data over ``N`` and ``D``. A fake
        fit has no sampler to backtest itself with (its spec has no tuning), so by
        default the shipped population.

    Returns
    -------
    ScalingFit
        With ``sample_stats`` of no divergences; its diagnostics are those of the draws.
    """
    law, lik = get_law(law), get_likelihood(likelihood)
    pool = pooling_mod.resolve(law, group, pooling)
    fitdata = prepare(
        data,
        law,
        y,
        inputs=inputs,
        flops_per_token=flops_per_token,
        group=group,
        y_support=lik.support,
    )
    labels = sorted(fitdata.frame[group].unique()) if group else ()
    arrays = {k: np.asarray(v, float) for k, v in draws.items()}
    n = {len(v) for v in arrays.values()}
    if len(n) != 1 or n.pop() % chains:
        raise SpecError(f"draws must share one length divisible by chains={chains}")
    spec = FitSpec(
        law=law,
        likelihood=lik,
        priors=resolve_priors(law, lik, None, pooling_mod.hyper_priors(pool)),
        pooling=pool,
        inputs=inputs or {},
        y=y,
        group=group,
        labels=labels,
        flops_per_token=flops_per_token,
        chains=chains,
        draws=len(next(iter(arrays.values()))) // chains,
        tune=0,
        random_seed=random_seed,
    )

    def dims(value):
        return ("chain", "draw", group)[: value.ndim + 1]

    shaped = {k: v.reshape(chains, -1, *v.shape[1:]) for k, v in arrays.items()}
    posterior = xr.Dataset(
        {k: (dims(v), shaped[k]) for k, v in arrays.items()},
        coords={group: list(labels)} if group else {},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, spec.draws), bool))})
    idata = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    log_ref = law.log_reference(fitdata.frame) if log_ref is None else log_ref
    fit = ScalingFit(spec, assemble_posterior(idata, spec, fitdata, log_ref), fitdata, log_ref)
    if own_extrapolation is None:
        population = default()
        own_extrapolation = replace(population, source=f"{population.source} (a fake fit)")
    fit.__dict__["own_extrapolation"] = own_extrapolation  # fills the cached property
    return fit
