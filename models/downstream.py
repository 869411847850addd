"""Downstream accuracy as a sigmoid of the upstream loss (the second stage of a two-stage law)."""

import numpy as np

from bayescale.errors import SpecError
from bayescale.laws import ScalingLaw
from bayescale.ops import NUMPY
from bayescale.priors import Prior

_SHAPE_PRIORS = {
    "r_ref": Prior("Beta", alpha=2.0, beta=2.0),
    "slope_ref": Prior("LogNormal", mu=float(np.log(0.5)), sigma=1.0),
    "headroom": Prior("Beta", alpha=5.0, beta=1.5),
}
_FLOOR_PRIOR = Prior("Beta", alpha=2.0, beta=5.0)


class Downstream(ScalingLaw):
    r"""Benchmark accuracy as a sigmoid of the upstream loss ``L``, between chance and a ceiling.

    .. math::

        \mathrm{acc}(L) = f + (c - f)\,\sigma\big(k\,(L_0 - L)\big),
        \qquad c = f + (1 - f)\,q

    The second stage of the two-stage approach of Gadre et al. (2024) and the OLMo /
    DataDecide ladders (Bhagia et al. 2024): a loss law predicts a new model's loss, and
    this law maps the loss to accuracy; :func:`bayescale.evaluation.two_stage.predict_chained` pushes the
    loss posterior through it. ``L`` is a *linear* input, seen as ``z = L / L_ref`` with
    ``L_ref`` the data's geometric centre (rounded to one significant figure); fit it with
    ``likelihood="beta"`` or ``bayescale.likelihoods.Binomial(n=items)``. The mean stays in
    ``(f, c)``, inside (0, 1) as both likelihoods require.

    Parameterisation. ``(k, L0, q)`` directly samples badly: the ceiling share ``q`` is
    rarely pinned (data stop short of saturation) and trades off against the midpoint, a
    curved ridge that gave 5-220 divergences per 4,000 draws on Pythia. The law samples
    what the data pin, the share of the range reached at ``L_ref`` and the slope there,
    and apart from them how much of the rest a perfect-loss model gains:

    .. math::

        r_{ref} = \frac{\mathrm{acc}(L_{ref}) - f}{1 - f},\quad
        s_{ref} = -\frac{d}{dz} \frac{\mathrm{acc} - f}{1 - f}\Big|_{z=1},\quad
        q = 1 - (1 - r_{ref})(1 - h),

        \eta = \operatorname{logit}(r_{ref} / q) = \log r_{ref} - \log(1 - r_{ref}) - \log h,
        \quad \kappa = \frac{s_{ref}\, q}{r_{ref} (1 - r_{ref})\, h},

        \log \mathrm{acc} = \operatorname{logsumexp}\big(\log f,\
        \log(1 - f) + \log q - \operatorname{softplus}(\kappa (z - 1) - \eta)\big)

    Sampling ``kappa`` instead of ``s_ref`` left it correlated -0.9 with ``h`` (the data
    fix the slope ``kappa r (1 - r/q)``, not ``kappa``) and 360-810 bulk ESS per 4,000
    draws on simulated sweeps; with ``s_ref`` no correlation exceeds 0.45 in magnitude and
    ESS rises to 1,000-2,500. ``h`` is then informed only by the curvature, which falls
    linearly in ``1/h``: a one-sided wall at low ``h`` in the sampler's ``logit h``, with a
    long flat tail towards ``h = 1`` under a prior heavy there. ``Beta(3, 1)`` (tail
    ``exp(-logit h)``) still left 0-7 divergences per fit on the recovery sweeps;
    ``Beta(5, 1.5)`` (tail ``exp(-1.5 logit h)``), which also says what benchmarks show,
    leaves 0 on all eight (``tests/test_law_downstream.py``, slow lane).

    Parameters
    ----------
    floor : float in [0, 1) or None
        The chance accuracy ``f`` (0.25 for 4-way multiple choice, 0.5 for 2-way, 0 for
        free-form answers), fixed. ``None`` makes it a free parameter: useful when the
        scoring rule moves untrained models off chance (lm-eval-harness's length-biased
        ``acc`` gives random-init Pythia models 0.19 on 4-way SciQ).

    Parameters (free)
    -----------------
    r_ref
        Share of the range above chance reached at the reference loss. ``Beta(2, 2)``:
        mean 0.5, 95% in [0.09, 0.91]: the data's centre may sit anywhere on the curve.
    slope_ref
        ``s_ref``, the share of the range gained per unit decrease of the *relative* loss
        ``z = L / L_ref``, at the reference. ``LogNormal(log 0.5, 1)``: median 0.5, 95% in
        [0.07, 3.6]; at the median, a 20% lower loss gains a tenth of the range (7.5
        accuracy points on a 4-way task), as along Pythia's sweep (fits: 0.27-0.34). With
        the other priors it implies ``kappa`` (the logit's slope per relative loss) with
        median 3.0 and 95% in [0.39, 27]: from gradual across a sweep to a near step
        ("emergence").
    headroom
        ``h``, the share of the range left above ``r_ref`` that a perfect-loss model gains.
        ``Beta(5, 1.5)``: mean 0.77, 90% in [0.47, 0.97]. Benchmarks saturate a few points
        below 1 (label noise, ambiguous items): with ``floor=0.25`` the implied ceiling has
        median 0.94 and its gap to 1 is 0.8-23 points (90%). Data that stop below
        saturation barely inform it, so then this prior speaks.
    floor
        Only with ``floor=None``: ``Beta(2, 5)``, mean 0.29, 95% in [0.04, 0.64], which
        covers the chance levels of 2- to 10-way multiple choice.

    Derived (natural scale): ``kappa``, ``k = kappa / L_ref`` per nat,
    ``L0 = L_ref (1 + eta / kappa)``, ``ceiling = c`` and ``ceiling_frac = q``.

    Prior predictive (``law.prior_predictive``, 4,000 draws, ``floor=0.25``, ``L`` from 1.3
    to 5 nats as Pythia's LAMBADA losses): median accuracy 0.65, 90% of draws in
    [0.27, 0.95]; with ``floor=None``: median 0.68, 90% in [0.24, 0.96]
    (``tests/test_law_downstream.py``).

    References
    ----------
    Gadre et al. (2024), "Language models scale reliably with over-training and on
    downstream tasks", arXiv:2403.08540. Bhagia et al. (2024), "Establishing Task Scaling
    Laws via Compute-Efficient Model Ladders", arXiv:2412.04403.
    """

    name = "downstream"
    inputs = ("L",)
    linear_inputs = ("L",)
    priors = {**_SHAPE_PRIORS, "floor": _FLOOR_PRIOR}
    citation = "Gadre et al. 2024, arXiv:2403.08540; Bhagia et al. 2024, arXiv:2412.04403"

    def __init__(self, floor=None):
        if floor is not None:
            ok = isinstance(floor, int | float | np.number) and not isinstance(floor, bool)
            if not ok or not 0.0 <= float(floor) < 1.0:
                raise SpecError(
                    f"law 'downstream': floor={floor!r} must be a chance accuracy in [0, 1) "
                    "(0.25 for 4-way multiple choice) or None to fit it"
                )
            floor = float(floor)
        self.options = {"floor": floor}
        self.priors = dict(_SHAPE_PRIORS) if floor is not None else dict(type(self).priors)

    def _floor(self, p):
        return p["floor"] if self.options["floor"] is None else self.options["floor"]

    @staticmethod
    def _shape(m, p):
        """``log q``, the logit ``eta`` at the reference and ``kappa``."""
        r, h = p["r_ref"], p["headroom"]
        log_q = m.log1p(-(1.0 - r) * (1.0 - h))
        log_odds, log_h = m.log(r) - m.log1p(-r), m.log(h)
        kappa = p["slope_ref"] * m.exp(log_q - m.log(r) - m.log1p(-r) - log_h)
        return log_q, log_odds - log_h, kappa

    def log_mean(self, m, p, z):  # noqa: D102
        log_q, eta, kappa = self._shape(m, p)
        above = log_q - m.softplus(kappa * (z["L"] - 1.0) - eta)
        floor = self._floor(p)
        if self.options["floor"] == 0.0:
            return above
        return m.logsumexp([m.log(floor), m.log1p(-floor) + above])

    def derived(self, m, p, log_ref):  # noqa: D102
        log_q, eta, kappa = self._shape(m, p)
        floor, l_ref = self._floor(p), m.exp(log_ref["L"])
        q = m.exp(log_q)
        return {
            "kappa": kappa,
            "k": kappa / l_ref,
            "L0": l_ref * (1.0 + eta / kappa),
            "ceiling_frac": q,
            "ceiling": floor + (1.0 - floor) * q,
        }

    def loss_for(self, params, log_ref, accuracy):
        """The loss at which the law's mean reaches ``accuracy``, per draw: the inverse.

        ``L = L_ref (1 + (eta - logit(s)) / kappa)`` with ``s = (acc - f) / (c - f)`` the
        share of the range from chance to the ceiling. ``inf`` where ``accuracy`` is at or
        below chance (any loss reaches it); NaN at or above the ceiling, or where only a loss
        of 0 or below would reach it (no loss does).

        Parameters
        ----------
        params : dict of str to ndarray
            The law's parameter draws, broadcast against ``accuracy``.
        log_ref : dict
            The fit's reference scales (``L``).
        accuracy : ndarray
        """
        log_q, eta, kappa = self._shape(NUMPY, params)
        floor = self._floor(params)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (accuracy - floor) / ((1.0 - floor) * np.exp(log_q))
            z = 1.0 + (eta - np.log(share) + np.log1p(-share)) / kappa
        loss = np.exp(log_ref["L"]) * z
        reached = (share < 1) & (loss > 0)  # a loss of 0 or below is no loss at all
        return np.where(share <= 0, np.inf, np.where(reached, loss, np.nan))
