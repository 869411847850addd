"""The learning rate as a function of scale: loss around its optimum, which follows power laws."""

import numpy as np
import pandas as pd

from bayescale.arguments import check_probability
from bayescale.diagnostics import flag
from bayescale.errors import SpecError
from bayescale.extrapolation import log_reach
from bayescale.laws import ScalingLaw
from bayescale.predictive import quantiles
from bayescale.priors import Prior


class LROptimum(ScalingLaw):
    r"""Loss against the peak learning rate, a parabola in ``log lr`` whose optimum moves with scale.

    Labs tune the learning rate on small models and need it for a large one; DeepSeek
    (``lr* ∝ C^-0.125``) and Porian et al. report such laws, fitted to the best learning
    rate of each small run as if it were known. Here every run's loss is the data: the
    runs of one setting (a model size trained for a token budget) trace a parabola in
    ``log lr``, and the settings' optima follow a power law in ``N`` and ``D``:

    .. math::

        \log L = \log L_{opt} + \kappa\,(z_{lr} - \ell_{opt} + p_N z_N + p_D z_D)^2,
        \qquad lr^*(N, D) = lr_{ref}\, e^{\ell_{opt}}\, (N/N_{ref})^{-p_N} (D/D_{ref})^{-p_D}

    (``z`` the inputs' logs centred on their reference scales). Fit it with ``group=`` the
    setting: each setting's loss at its optimum, ``L_opt``, is its own (``"separate"``),
    while the optimum's law and the curvature are shared (:attr:`group_pooling`), so a
    setting whose best rate lies at the edge of the rates it tried (the minimum not
    bracketed: 43 of (Mis)Fitting's 80 settings) still informs the optimum through the
    shared curvature. The posterior of ``lr*`` at a new ``N``, ``D`` is :func:`optimal_lr`.

    Parameters (free)
    -----------------
    L_opt
        Loss at the optimal rate, ``LogNormal(1, 0.75)``: median 2.7 nats, 95% in [0.6, 12].
    lr_opt
        ``log lr* - log lr_ref`` at the reference ``N``, ``D``, ``Normal(0, 1)``: a sweep
        brackets its rates around the optimum it expects.
    p_N, p_D
        Exponents of ``lr* ∝ N^-p_N D^-p_D``, ``Normal(0.3, 0.3)`` and ``Normal(0, 0.3)``:
        larger models want smaller rates, and the token budget may move the optimum either
        way (DeepSeek's ``lr* ∝ C^-0.125`` is ``p_N = p_D = 0.125`` here).
    kappa
        Curvature of ``log L`` in ``log lr``, ``LogNormal(log 0.05, 1)``: 95% in [0.007,
        0.36]; a rate twice the optimum then costs about 2.4% of the loss at the median.

    Prior predictive: the law's value is ``L_opt`` times a factor at least 1, so the loss
    prior is ``L_opt``'s wherever the rates sit near the optimum.

    References
    ----------
    DeepSeek-AI (2024), "DeepSeek LLM: Scaling Open-Source Language Models with
    Longtermism", arXiv:2401.02954, section 3.1. Porian et al. (2024), arXiv:2406.19146.
    """

    name = "lr_optimum"
    inputs = ("lr", "N", "D")
    scale_inputs = ("N", "D")
    group_pooling = {
        "L_opt": "separate",
        "lr_opt": "shared",
        "p_N": "shared",
        "p_D": "shared",
        "kappa": "shared",
    }
    priors = {
        "L_opt": Prior("LogNormal", mu=1.0, sigma=0.75),
        "lr_opt": Prior("Normal", mu=0.0, sigma=1.0),
        "p_N": Prior("Normal", mu=0.3, sigma=0.3),
        "p_D": Prior("Normal", mu=0.0, sigma=0.3),
        "kappa": Prior("LogNormal", mu=float(np.log(0.05)), sigma=1.0),
    }
    citation = "DeepSeek-AI 2024, arXiv:2401.02954; Porian et al. 2024, arXiv:2406.19146"

    def log_mean(self, m, p, z):  # noqa: D102
        off = z["lr"] - self.log_optimum(p, z)
        return m.log(p["L_opt"]) + p["kappa"] * off**2

    @staticmethod
    def log_optimum(p, z):
        """``log lr* - log lr_ref`` at centred inputs ``z`` (numpy or pytensor)."""
        return p["lr_opt"] - p["p_N"] * z["N"] - p["p_D"] * z["D"]


def optimal_lr(fit, N, D, ci=0.9):
    """Posterior of the loss-minimising learning rate at model sizes ``N`` and tokens ``D``.

    Parameters
    ----------
    fit : ScalingFit
        A fit of :class:`LROptimum`.
    N, D : float or array_like
        Broadcast together; the rows asked about.
    ci : float

    Returns
    -------
    pandas.DataFrame
        One row per ``(N, D)``: ``N``, ``D``, ``lr_median``, ``lr_lower``, ``lr_upper``, and
        ``reach``, how far beyond the fitted runs the answer lies
        (:func:`bayescale.extrapolation.log_reach`: ``N D`` over the largest fitted ``N D``,
        at least 1). The calibrated extrapolation error, learnt on losses, is not added
        to a learning rate: beyond the runs, the interval is the law's alone.
    """
    check_probability(ci, "ci")
    if not isinstance(fit.law, LROptimum):
        raise SpecError(f"optimal_lr needs a fit of law 'lr_optimum', not {fit.law.name!r}")
    if varying := [k for k in ("lr_opt", "p_N", "p_D") if fit.pooling[k] != "shared"]:
        raise SpecError(
            f"optimal_lr reads one optimum law; this fit varies {varying} by group: fit them "
            "shared (the default)"
        )
    n, d = (np.atleast_1d(np.asarray(v, float)) for v in np.broadcast_arrays(N, D))
    if not (np.all(np.isfinite(n) & (n > 0)) and np.all(np.isfinite(d) & (d > 0))):
        raise SpecError(f"N and D must be positive and finite, got {N!r} and {D!r}")
    draws = fit.draws(["lr_opt", "p_N", "p_D"])
    p = {k: np.asarray(v, float).reshape(-1, 1) for k, v in draws.items()}
    z = {k: np.log(v)[None, :] - fit.log_ref[k] for k, v in (("N", n), ("D", d))}
    log_lr = fit.log_ref["lr"] + LROptimum.log_optimum(p, z)
    med, lo, hi = quantiles(np.exp(log_lr), ci, axis=0)
    reach = np.exp(log_reach(fit.law, pd.DataFrame({"N": n, "D": d}), fit.data.frame))
    table = pd.DataFrame(
        {"N": n, "D": d, "lr_median": med, "lr_lower": lo, "lr_upper": hi, "reach": reach}
    )
    return flag(table, {fit.label: fit}, "optimal learning rate")
