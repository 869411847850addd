"""Per-parameter pooling across groups (corpora, model families, configurations, seeds).

``"shared"``: one value for all groups. ``"separate"``: an independent value per group,
each with the parameter's prior. ``"pooled"``, ``"pooled_centred"`` and
``"pooled_noncentred"``: hierarchical; on the
parameter's unconstrained scale ``T`` (log for positive parameters, logit for exponents in
(0, 1), identity for real ones) the group values are

    T(theta_g) ~ Normal(T(theta_mu), theta_tau),

with ``theta_mu`` under the parameter's own prior and ``theta_tau ~ HalfNormal(0.2)``:
groups typically differ by up to ~20% in a coefficient, or by ~0.05 in an exponent near
0.35, with more allowed when the data demand it.

The hierarchical choices are the same model written two ways for NUTS, and which one
samples well depends on how much each group's own data say (Betancourt and Girolami
2015; Papaspiliopoulos, Roberts and Sköld 2007):

``"pooled_noncentred"``: ``T(theta_g) = T(theta_mu) + theta_tau * z_g``
    with ``z_g ~ Normal(0, 1)``. Right when groups are thin or noisy: the data leave
    ``theta_g`` wide, and this form removes the funnel between ``theta_tau`` and the group
    values.
``"pooled_centred"``: ``T(theta_g)`` sampled directly. Right when each group's data pin
    its value much more tightly than the spread between groups (a dozen clean points per
    group for a two-parameter law). There the non-centred form has the funnel instead:
    ``z_g = (T(theta_g) - T(theta_mu)) / theta_tau`` is squeezed as ``theta_tau`` grows.
    Measured on the Porian et al. optima (15 configurations, 11-12 points each, both
    parameters of ``pure_power_law`` pooled, no known errors): non-centred gave r-hat
    1.02 and bulk ESS 370; centred r-hat 1.004 and ESS 4,200.
``"pooled"`` (with groups, the default of every parameter but a law's terms, which are
    ``"separate"``: :func:`resolve`): :func:`bayescale.fit` fits each group alone first
    and samples each group conditionally non-centred on that estimate, between the two
    forms as the sampled ``tau`` moves (:mod:`bayescale.engine.geometry`), and the
    population value around the groups' estimates; the spec records it as
    ``"pooled_partial"``. A model built directly from ``"pooled"`` is non-centred.

A law's additive terms (:attr:`~bayescale.laws.ScalingLaw.terms`), where all are shared
or all separate per group, are sampled jointly as their sum and shares (:func:`create_terms`;
per group, at the group's own centre): the same prior, a better geometry.

The same code evaluates parameters per row in numpy (predictions, log-likelihood) and
draws parameters for a group never seen from the population distribution.
"""

import numpy as np

from bayescale.errors import SpecError
from bayescale.ops import NUMPY, PYTENSOR
from bayescale.priors import Prior

POOLINGS = ("shared", "pooled", "pooled_centred", "pooled_noncentred", "separate")
HIERARCHICAL = ("pooled", "pooled_centred", "pooled_noncentred", "pooled_partial")
GROUP_SCALE = Prior("HalfNormal", sigma=0.2)


def resolve(law, group, pooling):
    """Pooling choice of every law parameter.

    Without ``group`` every parameter is shared. With ``group``, a law's additive terms
    (:attr:`~bayescale.laws.ScalingLaw.terms`, Chinchilla's ``E, a_ref, b_ref``) default
    to ``"separate"`` and every other parameter to ``"pooled"``, or to the law's
    ``group_pooling`` where it names one (an isoFLOP law's frontier exponent is shared
    across budgets); ``pooling`` overrides per parameter. Likelihood parameters (noise)
    are always shared.

    Why this default. The terms are each group's level (its floor, and the size of each
    power law at the reference), what corpora, model families and recipes differ in
    most; a group's own runs pin their sum to a fraction of a percent, and sampled per
    group at the group's own centre (:func:`create_terms`) they need no population. A
    population of levels was the funnel no form of the hierarchy removed: where the
    groups' floors or coefficients agree, their spread ``tau`` nears 0 and pins values
    the data leave free along the floor-coefficient ridge (Gemstones' three families:
    361/582/112 divergent draws at seeds 0-2 with every parameter pooled; the terms'
    hierarchy sampled centred on the joint form, 236/177/211, all at small ``E_tau``; the
    README lists the other forms tried). The exponents, the shape that carries over
    between groups and that one group's runs pin least, are pooled.

    Measured with ``benchmarks/grouped_fits.py --no-warm`` (Chinchilla law, 4 x 1000
    draws), terms separate and exponents pooled against every parameter pooled (the
    default until 2026-12-07): 14 of 17 sweeps pass every convergence check at seed 0
    against 10, with 34-241 leapfrog steps per draw against 55-1,023; Gemstones 0
    divergent draws at seeds 0-2, and to 350B tokens too (445 at seed 0 before). Simulated
    power-law curves with pooled exponents (``tests/test_groups_slow.py``'s thin groups:
    4 x 25 and 6 x 10 runs, one exponent or 0.2-0.4): no divergent draw at seeds 0-1 and
    32-42 steps per draw, against 59-67 and, for the spread exponents, r-hat 1.010-1.021.
    (Mis)Fitting's five learning rates kept one divergent draw at seeds 0-2 (the rate
    0.008 has 24 runs of models within 1.1x in size, so its floor and N term are the
    prior's to split) until such a group paired them (:func:`create_terms`): with that,
    15, 16 and 15 of the 17 pass at seeds 0-2.

    What separate terms give up: a group the fit has not seen has no population to be
    drawn from (:meth:`~bayescale.result.ScalingFit.predict` says so); and where many
    groups could share their levels, some sharpness beyond the data (leave one source out
    in ``case_studies/extrapolation_calibration.py``, Porian's sweeps of ten and five
    configurations: uncalibrated interval scores 0.352 and 0.350 against 0.290 and 0.265
    with every parameter pooled; averaged over the 13 sources, the default's 0.178 against
    0.171). For either, pass ``pooling`` with the terms ``"pooled"`` and check
    ``fit.diagnostics``.
    """
    if pooling is not None and not isinstance(pooling, dict):
        raise SpecError(
            f"pooling= must map law parameters to choices, e.g. {{'alpha': 'shared'}}; "
            f"got {pooling!r}"
        )
    pooling = dict(pooling or {})
    if group is None:
        if pooling:
            raise SpecError("pooling= needs group= (the column whose labels define groups)")
        return dict.fromkeys(law.parameters, "shared")
    unknown = set(pooling) - set(law.parameters)
    if unknown:
        raise SpecError(
            f"pooling= names {sorted(unknown)}, not parameters of law {law.name!r}: "
            f"{', '.join(law.parameters)}"
        )
    for name, mode in pooling.items():
        if not isinstance(mode, str) or mode not in POOLINGS:
            raise SpecError(f"pooling[{name!r}] = {mode!r}; choose one of {', '.join(POOLINGS)}")
    default = dict.fromkeys(law.parameters, "pooled")
    if len(law.terms) > 1:
        default |= dict.fromkeys(law.terms, "separate")
    default |= law.group_pooling
    return {name: pooling.get(name, default[name]) for name in law.parameters}


def hyper_priors(pooling):
    """Default priors of the group scales, ``{name}_tau``, for pooled parameters."""
    return {f"{k}_tau": GROUP_SCALE for k, mode in pooling.items() if mode in HIERARCHICAL}


TERMS_SUM = "terms_log_sum"
TERMS_RATIOS = "terms_log_ratio"
"""Names of what NUTS samples for a law's joint terms (:func:`create_terms`); not kept in fits."""


def joint_terms(law, priors, pooling):
    """The law's :attr:`~bayescale.laws.ScalingLaw.terms` to sample jointly, or ``()``.

    All of them, where every one is shared, or every one is separate per group, and each
    has a positive prior (a user's prior on a bounded interval keeps the one-by-one form,
    whose transforms know the bounds).
    """
    terms = law.terms
    modes = {pooling[k] for k in terms}
    if (
        len(terms) > 1
        and modes in ({"shared"}, {"separate"})
        and all(priors[k].support == "positive" for k in terms)
    ):
        return terms
    return ()


PAIR_SPAN = 1.5
"""A group whose runs span less than this factor in an input (one nominal model size, say)
has that input's term paired with the floor (:func:`create_terms`)."""


def create_terms(names, priors, dim=None, shifts=None, pairing=None):
    """Create the positive terms ``names`` as their sum and shares; returns them by name.

    A law's terms at its reference point (Chinchilla's ``E, a_ref, b_ref``) add up to its
    value there, which the data pin to a fraction of a percent; each term alone they pin
    only along a ridge. Where a sweep's model sizes span little (a Gemstones family: five
    sizes within 2.4x) the floor and the N term trade off one for one, ``E + a_ref``
    fixed, and on the log scale that NUTS samples that line is a thin curved valley. So
    NUTS samples ``s = log(sum)`` and the log-ratios ``r_i = log(t_i / t_k)``:
    ``t_i = e^s w_i`` with ``w = softmax(r, 0)``. The terms keep their own priors, and the
    change of variables adds ``log |J| = sum(log t_i)`` (``k s + sum(log w_i)``), so the
    posterior is the same; only its geometry changes (the sum is nearly independent of
    the shares).

    Per group (``dim``, terms ``"separate"``), each group's sum and shares are those of
    its terms at its own centre, where its own rows pin their sum, not at the fit's
    reference, which can lie far outside a group's sizes: ``shifts[t]`` (per group, the
    term's exponent times the group's mean ``z`` of its input) moves each term from there
    to the reference, ``log t = s + log w + shift``, a shear of unit Jacobian, so the
    priors stay those of the terms at the reference.

    Measured with ``benchmarks/single_fits.py`` (Chinchilla law, default settings, 28 fits
    of real sweeps without groups): median leapfrog steps per draw 66 one by one, 28
    jointly; Gemstones' ``deep`` family alone (50 checkpoints) 760 steps, 59% of draws at
    the maximum tree depth, against 80 and none; fits passing every convergence check 22
    against 27. Gemstones' three families in one fit (where each family alone takes 65-81
    steps): every parameter separate, one by one at the fit's reference, 923 steps, 82% of
    draws at the maximum depth and 25 divergent draws, jointly at each group's centre 120
    steps and none (seed 0); the terms separate and the exponents pooled, jointly at the
    fit's reference 142-169 steps and 6-11 divergent draws (seeds 0-1), at each group's
    centre 93-100 steps and none (seeds 0-2). It relies on the laws'
    ``logsumexp`` having a gradient free of maxima (:mod:`bayescale.ops`). The
    Revisiting-NSL curves' BNSL law is written this way from the start (``y_ref`` and
    ``a_frac``).

    Pairs. A group whose runs hold one input (nearly) fixed, such as one model size
    trained to many token counts, pins the floor and that input's term only as their sum.
    In the softmax's ``log(E / b)`` and ``log(a / b)`` that sum is a curve with two arms
    at right angles (one term near 0 and the other pinned, then the other way round),
    each as wide as a different prior: divergent draws where the arms meet. So for three
    terms (a floor and two exponent terms), ``pairing`` (per group) names the term to
    pair with the floor: 0 none (the softmax), ``i`` the term ``names[i]``. Paired, NUTS
    samples ``u = log(rest / (floor + paired))`` and ``v = log(paired / floor)``, each
    moved by a constant so that the softmax's start is the same point: that group pins
    ``s`` and ``u`` and leaves ``v`` to the priors, one smooth direction. The Jacobian has the same form, ``k s + sum(log w_i)``. Paired only where
    an input spans less than :data:`PAIR_SPAN` (``bayescale.engine.build``): elsewhere
    the softmax did better (``benchmarks/grouped_fits.py``, seeds 0-2: pairing every
    group by its least varied input gave Gemstones 6/0/2 divergent draws against 0/0/0).
    (Mis)Fitting's learning rate 0.008, 24 runs of models within 1.1x in size, one
    divergent draw at each of seeds 0-2 with the softmax: none paired.
    """
    import pymc as pm
    import pytensor.tensor as pt

    medians = np.array([priors[n].scipy().median() for n in names])  # the starting point
    size = () if dim is None else (len(pm.modelcontext(None).coords[dim]),)
    log_sum = pm.Flat(TERMS_SUM, shape=size, initval=np.full(size, np.log(medians.sum())))
    start = np.log(medians[:-1] / medians[-1])
    ratios = pm.Flat(
        TERMS_RATIOS, shape=(*size, len(names) - 1), initval=np.tile(start, (*size, 1))
    )
    log_share = pt.special.log_softmax(
        pt.concatenate([ratios, pt.zeros((*size, 1))], axis=-1), axis=-1
    )
    if pairing is not None:
        for mate in (1, 2):
            paired = _paired_log_shares(ratios, np.log(medians), start, mate)
            log_share = pt.switch(pt.eq(pairing, mate)[..., None], paired, log_share)
    log_terms = [log_sum + log_share[..., i] for i in range(len(names))]
    log_jacobian = len(names) * log_sum + pt.sum(log_share, axis=-1)
    for i, n in enumerate(names):
        if n in (shifts or {}):
            log_terms[i] = log_terms[i] + shifts[n]
            log_jacobian = log_jacobian + shifts[n]
    values = {
        n: pm.Deterministic(n, pt.exp(v), dims=dim) for n, v in zip(names, log_terms, strict=True)
    }
    log_prior = sum(priors[n].logp(values[n]) for n in names)
    pm.Potential("terms_prior", pt.sum(log_prior + log_jacobian))
    return values


def _paired_log_shares(ratios, log_medians, start, mate):
    """Log shares of three terms, the floor (0) paired with term ``mate`` (:func:`create_terms`).

    ``ratios`` are moved by the constant that maps ``start`` (the softmax's start) to the
    pair's own coordinates of the same prior medians.
    """
    import pytensor.tensor as pt

    rest = 3 - mate
    log_pair = np.logaddexp(log_medians[0], log_medians[mate])
    offset = np.array([log_medians[rest] - log_pair, log_medians[mate] - log_medians[0]]) - start
    u, v = ratios[..., 0] + offset[0], ratios[..., 1] + offset[1]
    shares = {0: -pt.softplus(u) - pt.softplus(v), mate: -pt.softplus(u) - pt.softplus(-v)}
    shares[rest] = -pt.softplus(-u)
    return pt.stack([shares[i] for i in range(3)], axis=-1)


def create(name, prior, mode, dim, priors, own=None):
    """Create parameter ``name`` in the current PyMC model; returns a scalar or a group vector.

    ``own`` (for ``"pooled_partial"``) is a pair of tensors over groups: each group's own
    estimate ``y_g`` of ``T(theta_g)`` and its sd ``s_g``. With ``h^2 = tau^2 + s^2`` the
    group value is ``T(theta_g) = m + sd v`` where ``m = y + (T(mu) - y) s^2 / h^2``,
    ``sd = tau s / h`` and ``v ~ Normal(tau (T(mu) - y) / (s h), h / s)``, which is
    ``Normal(T(mu), tau)`` for any ``y`` and ``s`` (:mod:`bayescale.engine.geometry` says
    why this form; written without ``tau^2 / h^2`` so that a tiny ``tau`` cannot round
    ``sd`` to 0). Its ``mu`` is sampled around the same estimates
    (:func:`_population_given_groups`).
    """
    import pymc as pm

    if mode == "shared":
        return prior.create(name)
    if mode == "separate":
        return prior.create(name, dims=dim)
    tau = priors[f"{name}_tau"].create(f"{name}_tau")
    if mode == "pooled_partial":
        mu = _population_given_groups(name, prior, tau, *own)
    else:
        mu = prior.create(f"{name}_mu")
    loc = prior.to_unconstrained(PYTENSOR, mu)
    if mode == "pooled_centred":
        u = pm.Normal(f"{name}_u", loc, tau, dims=dim)
    elif mode == "pooled_partial":
        y, s = own
        h = pm.math.sqrt(tau**2 + s**2)
        sd = tau * s / h
        v = pm.Normal(f"{name}_v", tau * (loc - y) / (s * h), h / s, dims=dim)
        u = y + (loc - y) * (s / h) ** 2 + sd * v
    else:
        u = loc + tau * pm.Normal(f"{name}_z", 0.0, 1.0, dims=dim)
    return pm.Deterministic(name, prior.to_constrained(PYTENSOR, u), dims=dim)


def _population_given_groups(name, prior, tau, y, s):
    """Create the population value ``mu`` of a ``"pooled_partial"`` parameter; returns it.

    It is sampled around the groups' own estimates ``y_g`` (sds ``s_g``, ``G`` groups).
    Where the groups' data pin their values, ``T(mu)`` given ``tau`` is known to about
    ``sqrt((tau^2 + mean s_g^2) / G)``: sampled directly, its scale shrinks with ``tau``, a
    funnel whose neck is where the groups agree. So NUTS samples ``eta`` with
    ``T(mu) = c + eta r``, ``c = sum(y_g / s_g^2) / sum(1 / s_g^2)`` and
    ``r = sqrt((tau^2 + mean s_g^2) / G)``; the prior of ``mu``, its transform's Jacobian
    and ``log r`` (that of ``eta -> T(mu)`` at fixed ``tau``) leave the density of ``mu``
    and ``tau`` what it was.

    Measured (``benchmarks/grouped_fits.py``, Chinchilla law): two data-rich simulated
    corpora gave 465/37/19/9 divergent draws at seeds 0-3 with ``mu`` sampled directly
    (a stuck chain at seed 0) and none this way. The exact normal-normal form (``c`` and
    ``r`` from the precisions ``1 / (tau^2 + s_g^2)``, moving with ``tau``) also gave none
    there at seed 0, but 256 on Gemstones and 108 on Open-Athena's Chinchilla (r-hat
    1.04) at seed 0, against 73 and 5 this way.
    """
    import pymc as pm
    import pytensor.tensor as pt

    centre = pt.sum(y / s**2) / pt.sum(1 / s**2)
    scale = pt.sqrt((tau**2 + pt.mean(s**2)) / y.shape[0])
    loc = centre + scale * pm.Flat(f"{name}_eta")
    mu = prior.to_constrained(PYTENSOR, loc)
    log_jacobian = pt.log(pt.abs(pt.grad(mu, loc))) + pt.log(scale)
    pm.Potential(f"{name}_mu_prior", prior.logp(mu) + log_jacobian)
    return pm.Deterministic(f"{name}_mu", mu)


def reported(pooling):
    """Posterior variables worth a summary row, beyond the law parameters themselves."""
    out = []
    for name, mode in pooling.items():
        if mode in HIERARCHICAL:
            out += [f"{name}_mu", f"{name}_tau"]
    return out


def refuse_new_groups(new_labels, fitted_labels, pooling, where=""):
    """SpecError if a parameter is ``"separate"`` and labels not fitted are asked for.

    Names the labels (a typo is the usual cause), ``where`` they occur, the fitted groups
    and the separate parameters: such a parameter has no population to draw from.
    """
    separate = [k for k, mode in pooling.items() if mode == "separate"]
    if new_labels and separate:
        raise SpecError(
            f"group(s) {list(new_labels)}{where} are not among the fitted groups "
            f"{list(fitted_labels)}; parameter(s) {separate} are 'separate' per group, so "
            "there is no population to draw a new group's value from: check the labels, or "
            "refit with them 'pooled' (or 'shared') to predict new groups"
        )


def new_group_draws(name, prior, mode, draws, rng):
    """Draws of ``name`` for a group never seen: from the population when pooled.

    A ``"separate"`` parameter has none: callers :func:`refuse_new_groups` first.
    """
    if mode == "shared":
        return draws[name]
    mu, tau = draws[f"{name}_mu"], draws[f"{name}_tau"]
    u = prior.to_unconstrained(NUMPY, mu) + tau * rng.standard_normal(mu.shape)
    return prior.to_constrained(NUMPY, u)


def per_row(values, mode, codes):
    """Parameter draws (draws[, groups]) -> (draws, rows) for rows in groups ``codes``."""
    values = np.asarray(values)
    if mode == "shared":
        return values[..., None]
    return values[..., codes]
