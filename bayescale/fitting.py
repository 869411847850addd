"""``bayescale.fit``: from a table of training runs to a checked posterior."""

from pathlib import Path

import numpy as np
import xarray as xr

import bayescale.models
from bayescale import data as data_mod
from bayescale import diagnostics
from bayescale import pooling as pooling_mod
from bayescale.engine import geometry, sample
from bayescale.engine.build import OBSERVED, ModelRecipe
from bayescale.errors import SpecError
from bayescale.laws import get_law
from bayescale.likelihoods import get_likelihood
from bayescale.ops import NUMPY
from bayescale.predictive import Evaluator
from bayescale.progress import elapsed
from bayescale.result import ANSWER_COLUMNS, ScalingFit, sampled_names
from bayescale.spec import FitSpec, resolve_priors
from bayescale.versions import versions

SOURCES = (str(Path(__file__).parent), str(Path(bayescale.models.__file__).parent))
"""Folders of bayescale's and its law catalogue's source: the compiled-program cache is
keyed on their contents, so editing the code never reuses a stale program."""


def fit(
    data,
    law="chinchilla",
    y="loss",
    *,
    inputs=None,
    group=None,
    pooling=None,
    y_log_sd=None,
    priors=None,
    likelihood="normal",
    flops_per_token=6.0,
    sampler="numpyro",
    chains=4,
    draws=1000,
    tune=1000,
    target_accept=0.8,
    random_seed=0,
    progressbar=False,
):
    """Fit a scaling law to a table of training runs with NUTS.

    Parameters
    ----------
    data : pandas.DataFrame or path to a CSV file
        One row per run (or checkpoint).
    law : str or ScalingLaw
        Family name from :func:`bayescale.laws` (``"chinchilla"``, ``"power_law"``...), or
        an instance with options, ``bayescale.get_law("broken_power_law", n_breaks=2)``.
    y : str
        Response column: a loss (> 0, modelled on the log scale) or, with a ``beta`` or
        ``binomial`` likelihood, an accuracy in [0, 1].
    inputs : dict, optional
        Law input -> column, e.g. ``{"N": "Model Size", "C": "Training FLOP"}``.
    group : str, optional
        Column of group labels (corpus, model family, configuration, seed...). Labels
        become a named dimension of the posterior and rows of ``summary()``.
    pooling : dict of str to str, optional
        Per law parameter: ``"shared"``, ``"pooled"`` (hierarchical, each group sampled
        around its own estimate, between the centred and non-centred forms as the data
        suit, see :mod:`bayescale.engine.geometry`; the fit's ``spec.pooling`` records it
        as ``"pooled_partial"``), ``"pooled_centred"`` or ``"pooled_noncentred"`` (the
        same model with the form forced) or ``"separate"``. With ``group``, the law's
        additive terms (Chinchilla's ``E, a_ref, b_ref``) default to ``"separate"`` and
        the other parameters to ``"pooled"``; see :func:`bayescale.pooling.resolve`.
    y_log_sd : str, optional
        Column of known standard deviations of ``log y`` per row (measurement error, e.g.
        bootstrap errors of an estimated optimum). Added in quadrature to the fitted noise,
        which then measures the scatter beyond them; see :mod:`bayescale.likelihoods`.
    priors : dict of str to Prior, optional
        Replace default priors by parameter name (``alpha``; ``alpha_tau`` for the group
        scale of a pooled ``alpha``).
    likelihood : {"normal", "student_t", "beta"} or Likelihood
        Observation model: on ``log y`` for losses (``"student_t"`` is robust to outlying
        runs); ``"beta"`` or ``Binomial(n=items)`` for accuracies in [0, 1]; see
        :mod:`bayescale.likelihoods`.
    flops_per_token : float
        ``k`` in ``D = C / (k N)`` when tokens are derived from a compute column.
    sampler : {"numpyro", "nutpie", "pymc"}
    chains, draws, tune : int
        NUTS settings (4 x 1000 after 1000 tuning steps by default, set explicitly because
        PyMC's own defaults depend on the machine and the sampler).
    target_accept : float
    random_seed : int
        Same seed and data give the identical posterior.
    progressbar : bool
        Show sampling progress in a terminal or notebook: nutpie's and PyMC's own bars;
        for numpyro, whose compiled program reports nothing until it ends, a running
        clock (:func:`bayescale.progress.elapsed`).

    Returns
    -------
    ScalingFit
        Warns with :class:`~bayescale.errors.ConvergenceWarning` if a convergence check
        fails.
    """
    law = get_law(law)
    lik = get_likelihood(likelihood)
    if not isinstance(y, str):
        raise SpecError(f"y must name the response column, got {y!r}")
    if (y_log_sd is not None or law.noisy_inputs) and not lik.known_sd:
        raise SpecError(
            f"a {lik.name} likelihood cannot take known errors of log y (y_log_sd, or the "
            f"input noise of law {law.name!r}); use 'normal' or 'student_t'"
        )
    pool = pooling_mod.resolve(law, group, pooling)
    group_scales = pooling_mod.hyper_priors(pool)
    all_priors = resolve_priors(law, lik, priors, group_scales)
    _check_names(law, all_priors, y, group, y_log_sd)
    fitdata = data_mod.prepare(
        data,
        law,
        y,
        inputs=inputs,
        flops_per_token=flops_per_token,
        n_params=len(all_priors),
        group=group,
        y_log_sd=y_log_sd,
        y_support=lik.support,
    )
    sample.check_settings(sampler, chains, draws, tune, target_accept, random_seed)
    labels = sorted(fitdata.frame[group].unique()) if group else ()
    log_ref = law.log_reference(fitdata.frame)
    pool, centring = geometry.resolve_centring(law, all_priors, pool, fitdata, log_ref, labels)
    spec = FitSpec(
        law=law,
        likelihood=lik,
        priors=all_priors,
        pooling=pool,
        inputs=inputs or {},
        y=y,
        group=group,
        labels=labels,
        y_log_sd=y_log_sd,
        flops_per_token=float(flops_per_token),
        sampler=sampler,
        chains=int(chains),
        draws=int(draws),
        tune=int(tune),
        target_accept=float(target_accept),
        random_seed=int(random_seed),
        versions=versions(),
    )
    recipe = ModelRecipe(spec, fitdata, log_ref, centring)
    steps = f"{law.name}: sampling, {spec.chains} chains x {spec.tune} + {spec.draws} steps"
    with elapsed(steps, progressbar and spec.sampler == "numpyro"):
        idata = sample.run_nuts(recipe, progressbar=progressbar, sources=SOURCES)
    posterior = assemble_posterior(idata, spec, fitdata, log_ref, centring)
    result = ScalingFit(spec, posterior, fitdata, log_ref)
    diagnostics.warn_if_bad(result.diagnostics, result.label)
    return result


def _check_names(law, priors, y, group, y_log_sd):
    """Refuse column names the saved fit or the posterior's dimensions use for their own.

    The group column names the posterior's group dimension, which xarray refuses to share
    with a variable (``E``) or with ``chain`` and ``draw``; a saved fit keeps the table's
    columns beside its ``row`` coordinate; and xarray's DataTree, which holds the fit,
    refuses ``/`` in a name (``loss/nats`` failed after sampling, at ``save``, and so in
    every ``fit_many`` task, whose fits travel as files).
    """
    if group is not None and not isinstance(group, str):
        raise SpecError(f"group= must name a column by its text name, got {group!r}")
    ones = dict.fromkeys(law.parameters, np.ones(1))
    with np.errstate(all="ignore"):  # only the names count; 1 is a bound of some parameters
        derived = law.derived(NUMPY, ones, dict.fromkeys(law.inputs, 0.0))
    # a group column is kept in predictions, beside the answer's own columns
    taken = {"row", "chain", "draw", OBSERVED, *priors, *derived, *ANSWER_COLUMNS}
    for argument, name, reserved in (
        ("y", y, {"row"}),
        ("y_log_sd", y_log_sd, {"row"}),
        ("group", group, taken),
    ):
        if name in reserved:
            raise SpecError(
                f"{argument}={name!r}: bayescale uses that name for its own "
                f"({', '.join(sorted(reserved))}): rename the column"
            )
        if name is not None and "/" in name:
            raise SpecError(
                f"{argument}={name!r}: a saved fit (xarray's DataTree) cannot hold a name "
                "with '/': rename the column"
            )


def refit(fitted, data):
    """Fit ``data`` as ``fitted`` was fitted: its law, likelihood, priors, group, sampler, seed.

    For fits nested inside a fit's own rows (:func:`bayescale.sweep_error`). A pooled
    parameter is pooled again, its centring chosen afresh from ``data`` as :func:`fit` does.
    """
    s = fitted.spec
    pooling = {k: "pooled" if v == "pooled_partial" else v for k, v in s.pooling.items()}
    return fit(
        data,
        law=s.law,
        y=s.y,
        group=s.group,
        pooling=pooling if s.group else None,
        y_log_sd=s.y_log_sd,
        priors=dict(s.priors),
        likelihood=s.likelihood,
        flops_per_token=s.flops_per_token,
        sampler=s.sampler,
        chains=s.chains,
        draws=s.draws,
        tune=s.tune,
        target_accept=s.target_accept,
        random_seed=s.random_seed,
    )


def assemble_posterior(idata, spec, fitdata, log_ref, centring=None):
    """Posterior tree with derived quantities and the pointwise log-likelihood.

    Both are computed in numpy from the law written once, so they cost no extra graph
    compilation. The unconstrained group values (``*_z``, ``*_u``, ``*_v``) are dropped:
    they have no meaning of their own once the group values are recorded. The centring
    data of a ``"pooled_partial"`` parameter (how it was sampled, see
    :mod:`bayescale.engine.geometry`) are kept in ``constant_data``: each group's own
    estimate and sd on the unconstrained scale, ``group_estimate_{name}`` and
    ``group_sd_{name}``.
    """
    law, likelihood, pooling = spec.law, spec.likelihood, spec.pooling
    post = idata["posterior"].to_dataset()
    post = post[sampled_names(law, pooling, likelihood)]
    p = {k: post[k].to_numpy() for k in law.parameters}
    grouped = [k for k in law.parameters if pooling[k] != "shared"]
    if grouped:  # broadcast shared (chain, draw) against grouped (chain, draw, group)
        p_wide = {k: v if k in grouped else v[..., None] for k, v in p.items()}
        for name, value in law.derived(NUMPY, p_wide, log_ref).items():
            value = np.broadcast_to(value, (*value.shape[:2], len(spec.labels)))
            post[name] = (("chain", "draw", fitdata.group), np.asarray(value))
    else:
        for name, value in law.derived(NUMPY, p, log_ref).items():
            post[name] = (("chain", "draw"), np.asarray(value))
    evaluator = Evaluator(
        law=law,
        log_ref=log_ref,
        draws={k: post[k].to_numpy() for k in (*law.parameters, *likelihood.priors)},
        likelihood=likelihood,
        pooling=pooling,
        group=fitdata.group,
        labels=spec.labels,
        fitted=fitdata,
    )
    loglik = evaluator.fitted_log_likelihood()
    observed = likelihood.observe(fitdata.y_values())
    obs = np.arange(len(fitdata.frame))
    sample_stats = idata["sample_stats"].to_dataset()
    own = {
        f"group_{what}_{k}": ((fitdata.group,), np.asarray(v))
        for k, pair in (centring or {}).items()
        for what, v in zip(("estimate", "sd"), pair, strict=True)
    }
    return xr.DataTree.from_dict(
        {
            "posterior": post,
            "sample_stats": sample_stats,
            "log_likelihood": xr.Dataset(
                {OBSERVED: (("chain", "draw", "obs"), loglik)}, coords={"obs": obs}
            ),
            "observed_data": xr.Dataset({OBSERVED: (("obs",), observed)}, coords={"obs": obs}),
            "constant_data": xr.Dataset(
                own, coords={fitdata.group: list(spec.labels)} if own else {}
            ),
        }
    )
