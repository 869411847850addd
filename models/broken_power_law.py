"""Broken neural scaling law (Caballero et al. 2023) with 1-3 smooth breaks."""

import numbers

from bayescale.errors import SpecError
from bayescale.laws import ScalingLaw
from bayescale.priors import Prior

MAX_BREAKS = 3


def _priors(n_breaks):
    priors = {
        "y_ref": Prior("LogNormal", mu=0.0, sigma=1.5),
        "a_frac": Prior("Beta", alpha=1.0, beta=1.0),
        "c0": Prior("Normal", mu=0.3, sigma=0.5),
        "z1": Prior("Normal", mu=0.0, sigma=1.5),
    }
    for i in range(2, n_breaks + 1):
        priors[f"gap{i}"] = Prior("Gamma", alpha=2.0, beta=1.0)
    for i in range(1, n_breaks + 1):
        priors[f"c{i}"] = Prior("StudentT", nu=3.0, mu=0.0, sigma=1.0)
        priors[f"f{i}"] = Prior("LogNormal", mu=-0.7, sigma=0.7)
    return priors


class BrokenPowerLaw(ScalingLaw):
    r"""Broken neural scaling law (BNSL): power-law segments joined by smooth breaks.

    .. math::

        y(x) = a + b\,x^{-c_0} \prod_{i=1}^{n} \left(1 + (x/d_i)^{1/f_i}\right)^{-c_i f_i}

    evaluated in log space with centred ``z = log x - log x_ref`` and break locations
    ``z_i = log d_i - log x_ref``:

    .. math::

        \log y = \operatorname{logsumexp}\Big(\log a,\ \log (y_{ref} - a) - c_0 z
        - \sum_i c_i f_i \big[\operatorname{softplus}\big(\tfrac{z - z_i}{f_i}\big)
        - \operatorname{softplus}\big(\tfrac{-z_i}{f_i}\big)\big]\Big)

    Sign conventions (those of the paper and of the authors' code, where the fitted 4-digit
    addition curve has ``c0 = 0.055, c1 = 5.7``): in log-log axes the reducible part
    ``y - a`` falls with slope ``-c0`` before the first break and ``-(c0 + c1 + ... + c_i)``
    after break ``i``. ``c_i > 0`` steepens the decay (an "emergent" drop), ``c_i < 0``
    flattens it, and a negative running sum makes the curve rise (non-monotone curves such
    as double descent), so ``c0`` and ``c_i`` are real. ``a``, ``b``, ``d_i`` and
    ``f_i`` (the width of break ``i`` in units of ``log x``; small is sharp) are positive.

    Parameterisation, for NUTS. The free scale is ``y_ref = y(x_ref)``, the curve's value at
    the reference, split into floor and reducible part by ``a_frac = a / y_ref``: the data
    pin ``y_ref`` to 0.05% on 4-digit addition while ``a`` and ``y_ref - a`` trade off
    along a curved ridge (with ``a`` and ``y_ref - a`` free, NUTS gave 105 divergences per 2,000
    draws there at seed 0; with this form, 1-72 over seeds 0-5 at the default target_accept
    and 0-9 at 0.95: the ridge's width there scales with the noise scale, see
    ``case_studies/bnsl_extrapolation.py``). Subtracting ``softplus(-z_i / f_i)`` makes every
    break factor equal 1 at ``x_ref``, so moving a break does not drag the scale with it.
    Breaks are ordered by construction, ``z_{i+1} = z_i + gap_{i+1}`` with positive gaps,
    so they cannot swap labels. ``a``, ``b`` and ``d_i`` are reported as derived
    quantities.

    Identification. A break is only seen if the data reach it: on a curve with no visible
    break, a break beyond the data (any ``c_i``) or one with ``c_i ~ 0`` (anywhere) fit
    equally well, and NUTS reports divergences in that L-shaped posterior. The law then
    extrapolates well but its intervals are approximate; compare with ``power_law`` by LOO.

    Options
    -------
    n_breaks : int, 1 to 3 (default 1)
        Number of breaks.

    Parameters (free)
    -----------------
    y_ref
        The curve's value at ``x_ref``, ``LogNormal(0, 1.5)``: median 1, 95% in [0.05, 19],
        error rates to losses of many nats; the data always pin it.
    a_frac
        Share of ``y_ref`` that is the floor ``a``, ``Beta(1, 1)`` (uniform): a solved task
        (near 0) and a language model far into saturation (near 1) alike.
    c0
        First segment's decay exponent, ``Normal(0.3, 0.5)``: 95% in [-0.7, 1.3]; typical
        data-size exponents 0.05-1, with flat or rising first segments allowed.
    z1
        First break, in ``log x`` units from ``x_ref``: ``Normal(0, 1.5)``, 95% of breaks
        within ``x_ref e^{+-3}`` (1.3 decades either side), the span of most sweeps.
    gap2, gap3
        Distance in ``log x`` to the next break, ``Gamma(2, 1)``: mean 2 (0.9 decade), 95%
        in [0.24, 5.6]; zero density at 0 keeps two breaks from merging into one.
    c1, c2, c3
        Change of log-log slope at each break, ``StudentT(3, 0, 1)``: half within +-0.77,
        with heavy tails for emergent drops (4-digit addition: ``c1 = 5.7``) as well as
        saturation (``c_i ~ -c0``). A ``Normal(0, 2.5)`` instead let 10% of prior curves
        change by a factor over 470 across two decades.
    f1, f2, f3
        Break widths in ``log x`` units, ``LogNormal(-0.7, 0.7)``: median 0.5, 95% in
        [0.13, 2]; sharper breaks need the data to show them (4-digit addition: 0.06).
        The wider ``LogNormal(-1.2, 1)`` tripled divergences on the NMT curves, whose
        curvature alone cannot tell a sharp small break from a wide large one.

    Prior predictive (``law.prior_predictive``, 4,000 draws, x spanning two decades around
    ``x_ref``, one break): median 1.07, 90% of draws in [0.08, 19], so a solved task, a
    language model and an untrained classifier are all inside; within one curve the
    largest/smallest value is below 3.2 for half the draws and below 48 for 90% of them
    (checked in ``tests/test_law_broken_power_law.py``).

    References
    ----------
    Caballero, Gupta, Rish, Krueger (2023), "Broken Neural Scaling Laws", ICLR 2023,
    arXiv:2210.14891; code: github.com/ethancaballero/broken_neural_scaling_laws.
    """

    name = "broken_power_law"
    inputs = ("x",)
    scale_inputs = ("x",)
    priors = _priors(1)
    citation = "Caballero et al. 2023, arXiv:2210.14891"

    def __init__(self, n_breaks=1):
        if (
            isinstance(n_breaks, bool)
            or not isinstance(n_breaks, numbers.Integral)
            or not 1 <= n_breaks <= MAX_BREAKS
        ):
            raise SpecError(
                f"law 'broken_power_law': n_breaks must be an integer from 1 to {MAX_BREAKS},"
                f" got {n_breaks!r}"
            )
        self.n_breaks = int(n_breaks)
        self.options = {"n_breaks": self.n_breaks}
        self.priors = _priors(self.n_breaks)

    def break_locations(self, p):
        """Centred log break locations ``z_1 < z_2 < ...`` from ``z1`` and the gaps."""
        out = [p["z1"]]
        for i in range(2, self.n_breaks + 1):
            out.append(out[-1] + p[f"gap{i}"])
        return out

    def log_mean(self, m, p, z):  # noqa: D102
        x = z["x"]
        log_red = m.log(p["y_ref"]) + m.log1p(-p["a_frac"]) - p["c0"] * x
        for i, zb in enumerate(self.break_locations(p), start=1):
            f = p[f"f{i}"]
            log_red = log_red - p[f"c{i}"] * f * (m.softplus((x - zb) / f) - m.softplus(-zb / f))
        return m.logsumexp([m.log(p["y_ref"]) + m.log(p["a_frac"]), log_red])

    def derived(self, m, p, log_ref):  # noqa: D102
        ref = log_ref["x"]
        log_b = m.log(p["y_ref"]) + m.log1p(-p["a_frac"]) + p["c0"] * ref
        out = {}
        for i, zb in enumerate(self.break_locations(p), start=1):
            f = p[f"f{i}"]
            log_b = log_b + p[f"c{i}"] * f * m.softplus(-zb / f)
            out[f"d{i}"] = m.exp(ref + zb)
        return {"a": p["y_ref"] * p["a_frac"], "b": m.exp(log_b), **out}
