"""Choose how NUTS samples each pooled parameter, group by group, from the data.

A hierarchical parameter can be written centred or non-centred (:mod:`bayescale.pooling`),
and which one NUTS samples well depends on how tightly each group's own data pin its
value compared with the spread between groups (Papaspiliopoulos, Roberts and Sköld 2007;
Betancourt and Girolami 2015). With ``s_g`` the posterior sd of group ``g``'s value from
its own data and ``tau`` the spread between groups, both on the parameter's unconstrained
scale:

- ``s_g >> tau`` (thin or noisy groups): the centred form has a funnel between ``tau`` and
  the group values; the non-centred ``T(theta_g) = T(mu) + tau z_g`` removes it.
- ``s_g << tau`` (data-rich groups): the non-centred ``z_g`` is pinned to
  ``(T(theta_g) - T(mu)) / tau``, a thin curved ridge along ``tau`` that a diagonal mass
  matrix follows with tiny steps; the centred form is then nearly independent Gaussians.

Real sweeps mix both, parameter by parameter and group by group ((Mis)Fitting's five
learning rates pin the floor to 0.02-0.27 on the log scale), and within one fit the
posterior of ``tau`` itself can span both regimes: with two or three groups it is barely
more than its prior, so no single form suits all of it. So ``"pooled"`` is sampled
conditionally non-centred on each group's own estimate. Fitting each group's law alone by
regularised least squares on ``log y`` (a Laplace approximation: the default priors as a
Gaussian ridge on the unconstrained scale, the noise from the residuals) gives its value
``y_g`` and sd ``s_g``. Were that the group's whole likelihood, the posterior of
``u_g = T(theta_g)`` given ``mu`` and ``tau`` would be normal with

    w_g = tau^2 / (tau^2 + s_g^2),   m_g = w_g y_g + (1 - w_g) mu,   sd_g = tau s_g / h_g

(``h_g^2 = tau^2 + s_g^2``), so NUTS samples ``v_g`` with ``u_g = m_g + sd_g v_g``: the
prior ``u_g ~ Normal(mu, tau)`` makes ``v_g ~ Normal((mu - m_g) / sd_g, h_g / s_g)``, and
the posterior of ``v_g`` is then close to a standard normal whatever ``mu`` and ``tau``
are. It is the normal-normal model's exact decorrelation: centred where a group's data
dominate (``w_g -> 1``), non-centred where they do not (``w_g -> 0``), and the weight moves
with ``tau`` along the chain instead of being fixed at one estimate of it. It changes how
the posterior is explored, never the posterior itself; ``y_g`` and ``s_g`` are data of the
compiled program (one program serves any data) and are kept in the fit's ``constant_data``
as ``group_estimate_{name}`` and ``group_sd_{name}``.

Measured with ``benchmarks/grouped_fits.py`` (Chinchilla law, every parameter pooled, 4 x
1000 draws): on a simulated six-corpus isoFLOP sweep (528 runs, 8 budgets up to 4.8e19
FLOPs, noise sd 0.0036 as on the real sweep of issue 19) the non-centred form hit the
maximum tree depth on every draw (1,023 leapfrog steps, step size 0.002, bulk ESS 200);
this form takes 125 steps per draw (ESS 2,369). Against centring weights fixed from a
method-of-moments ``tau`` (the partial centring of Gorinova, Moore and Hoffman 2020, the
previous default), divergent draws summed over seeds 0-2 (1-2 with an algebraically
identical first version of this code): Gemstones by family 295 against 557, Open-Athena's
Chinchilla by budget 10 against 33, a simulated two-corpus sweep 17 against 30; at seed 0,
(Mis)Fitting by learning rate 0 against 27 and Pythia 0 against 59 (the README has the
table). A weight that follows ``tau`` but ignores ``y_g`` (Gorinova's form with ``w_g`` as
above) was worse on Gemstones (518 at seed 0) and (Mis)Fitting (149). Whitening each
group's parameters jointly with its Laplace precision (``u_g = m_g + L_g^-T v_g``,
``L_g L_g^T`` = that precision plus ``diag(tau^-2)``) cut Pythia to 25 leapfrog steps per
draw but gave 103 divergences there (at small ``tau``, with the larger step), and on Gemstones
78% of draws hit the maximum tree depth: a group's Gaussian approximation is poor along its
floor-exponent ridge, and whitening by a wrong covariance is worse than none. Taking
``s_g`` conditional on the parameters all groups share (an isoFLOP budget's minimum is
confounded with the shared frontier slope in its own runs) removed every divergence on two
simulated isoFLOP sets but failed 14 of the 45 fits of
``case_studies/isoflop_approaches.py`` (ESS down to 49, Llama 3 at the maximum tree depth)
against 6: the group's own mode is off along that confound, so centring on it is worse than
the marginal sd's caution.
"""

import numpy as np
from scipy import optimize

from bayescale.ops import NUMPY

_STARTS = 6
"""Least-squares starts per group: the prior medians and draws from the priors."""

_PRIOR_DRAWS = 4000
"""Prior draws used to place the Gaussian ridge on each unconstrained parameter."""

_NOISE_FLOOR = 1e-4
"""Smallest noise sd of ``log y`` assumed (a perfect fit would otherwise claim certainty)."""

_SD_FLOOR = 1e-6
"""Smallest group sd on the unconstrained scale (the model divides by it)."""


def resolve_centring(law, priors, pooling, fitdata, log_ref, labels, seed=0):
    """``pooling`` with every ``"pooled"`` parameter conditionally non-centred, and its data.

    Parameters
    ----------
    law : ScalingLaw
    priors : dict of str to Prior
        The fit's priors (their transforms define the unconstrained scale).
    pooling : dict of str to str
        :func:`bayescale.pooling.resolve`'s choices; only ``"pooled"`` entries change.
    fitdata : FitData
        The validated, grouped table.
    log_ref : dict of str to float
    labels : sequence of str
        The fit's group labels.
    seed : int
        Seeds the least-squares starts, so the same data always give the same choice.

    Returns
    -------
    pooling : dict of str to str
        ``"pooled"`` replaced by ``"pooled_partial"``.
    estimates : dict of str to (ndarray, ndarray)
        Per ``"pooled_partial"`` parameter, each group's own estimate and its sd on the
        unconstrained scale (:func:`group_estimates`).
    """
    auto = [k for k, mode in pooling.items() if mode == "pooled"]
    if not auto:
        return dict(pooling), {}
    estimates = group_estimates(law, priors, fitdata, log_ref, labels, seed)
    out = {k: "pooled_partial" if k in auto else mode for k, mode in pooling.items()}
    return out, {k: estimates[k] for k in auto}


def group_estimates(law, priors, fitdata, log_ref, labels, seed=0):
    """Each group's value and sd of every law parameter, from its own rows alone.

    Returns
    -------
    dict of str to (ndarray, ndarray)
        Per parameter: the groups' values and their sds, on the unconstrained scale.
    """
    rng = np.random.default_rng(seed)
    names = law.parameters
    ridge = {}
    for k in names:  # a Gaussian on the unconstrained scale matching each prior's draws
        drawn = priors[k].scipy().rvs(_PRIOR_DRAWS, random_state=rng)
        draws = priors[k].to_unconstrained(NUMPY, drawn)
        ridge[k] = (float(np.median(draws)), float(np.std(draws)))
    codes = fitdata.codes(labels)
    log_y = np.log(np.clip(fitdata.y_values(), 1e-12, None))
    z = law.z(fitdata.frame, log_ref)
    values = {k: np.empty(len(labels)) for k in names}
    sds = {k: np.empty(len(labels)) for k in names}
    for g in range(len(labels)):
        rows = codes == g
        u, s = _laplace(law, priors, {k: v[rows] for k, v in z.items()}, log_y[rows], ridge, rng)
        for i, k in enumerate(names):
            values[k][g], sds[k][g] = u[i], s[i]
    return {k: (values[k], sds[k]) for k in names}


def _laplace(law, priors, z, log_y, ridge, rng):
    """Regularised least-squares fit of one group: mode and sd on the unconstrained scale."""
    names = law.parameters
    centre = np.array([ridge[k][0] for k in names])
    scale = np.array([ridge[k][1] for k in names])

    def residuals(theta, noise):
        p = {k: priors[k].to_constrained(NUMPY, t) for k, t in zip(names, theta, strict=True)}
        with np.errstate(all="ignore"):
            r = (law.log_mean(NUMPY, p, z) - log_y) / noise
        r = np.where(np.isfinite(r), r, 1e3)
        return np.concatenate([r, (theta - centre) / scale])

    starts = [centre, *(centre + scale * rng.standard_normal((_STARTS - 1, len(names))))]
    first = min(
        (optimize.least_squares(residuals, x0, args=(0.01,)) for x0 in starts),
        key=lambda result: result.cost,
    )
    # refit from the best start with the noise its residuals show
    r = residuals(first.x, 1.0)[: len(log_y)]
    noise = max(float(np.sqrt(np.sum(r**2) / max(len(log_y) - len(names), 1))), _NOISE_FLOOR)
    best = optimize.least_squares(residuals, first.x, args=(noise,))
    precision = best.jac.T @ best.jac
    sd = np.sqrt(np.diag(np.linalg.pinv(precision)))
    return best.x, np.clip(sd, _SD_FLOOR, scale)
