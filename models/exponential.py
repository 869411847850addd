"""Saturating (stretched) exponential in one input: the beyond-power-law alternative."""

from bayescale.laws import ScalingLaw
from bayescale.priors import Prior


class Exponential(ScalingLaw):
    r"""Loss that decays exponentially in a power of ``x`` towards a floor.

    .. math::

        L(x) = E + A \exp(-k\,x^{\gamma}),
        \qquad \log L = \operatorname{logsumexp}\big(\log E,\
        \log a_{ref} - \kappa\,(e^{\gamma (\log x - \log x_{ref})} - 1)\big)

    Sorscher et al. (2022) show that pruning data well can turn power-law scaling in data
    set size into exponential scaling; fit this beside ``power_law`` and let
    :func:`bayescale.compare` decide which the data support. The two are nested in a
    limit: as ``gamma -> 0`` with ``kappa * gamma`` fixed, the reducible term tends to
    ``a_ref (x / x_ref)^(-kappa gamma)``, a power law with exponent ``kappa * gamma``.

    Parameters (free)
    -----------------
    E
        Irreducible loss, ``LogNormal(0.5, 0.6)``: median 1.65, 95% in [0.5, 5.3] nats.
    a_ref
        Size of the reducible term at the reference ``x_ref`` (the data's geometric
        centre), ``LogNormal(-1, 1.5)``: median 0.37, 95% in [0.02, 7], as in ``power_law``.
    kappa
        ``k x_ref^gamma``: how many e-folds the reducible term has decayed by at ``x_ref``.
        ``LogNormal(log 0.6, 1)``: median 0.6, 95% in [0.08, 4.3].
    gamma
        Stretch of the exponential, ``LogNormal(log 0.5, 0.75)``: median 0.5, 95% in
        [0.12, 2.2]; ``gamma = 1`` is Sorscher et al.'s plain exponential. With the
        ``kappa`` prior, the local log-log slope at ``x_ref``, ``kappa * gamma``, has median
        0.3 like ``power_law``'s exponent prior, so neither family is favoured a priori.

    ``A = a_ref * exp(kappa)`` and ``k = kappa * x_ref**-gamma`` are reported as derived
    quantities.

    Prior predictive (``law.prior_predictive``, 4,000 draws, x spanning two decades around
    ``x_ref``): median 2.3, 90% of draws in [0.85, 7.9] nats (``tests/test_laws.py``).

    References
    ----------
    Sorscher et al. (2022), "Beyond neural scaling laws: beating power law scaling via data
    pruning", NeurIPS, arXiv:2206.14486.
    """

    name = "exponential"
    inputs = ("x",)
    scale_inputs = ("x",)
    priors = {
        "E": Prior("LogNormal", mu=0.5, sigma=0.6),
        "a_ref": Prior("LogNormal", mu=-1.0, sigma=1.5),
        "kappa": Prior("LogNormal", mu=-0.51, sigma=1.0),
        "gamma": Prior("LogNormal", mu=-0.69, sigma=0.75),
    }
    citation = "Sorscher et al. 2022, arXiv:2206.14486"

    def log_mean(self, m, p, z):  # noqa: D102
        decay = p["kappa"] * m.expm1(p["gamma"] * z["x"])
        return m.logsumexp([m.log(p["E"]), m.log(p["a_ref"]) - decay])

    def derived(self, m, p, log_ref):  # noqa: D102
        return {
            "A": p["a_ref"] * m.exp(p["kappa"]),
            "k": p["kappa"] * m.exp(-p["gamma"] * log_ref["x"]),
        }
