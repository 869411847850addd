"""The Kaplan et al. (2020) joint law in parameters and tokens."""

from bayescale.laws import ScalingLaw
from bayescale.priors import Prior


class Kaplan(ScalingLaw):
    r"""Kaplan et al.'s joint law in model size ``N`` and tokens ``D`` (no irreducible term).

    .. math::

        L(N, D) = \left[\left(\frac{N_c}{N}\right)^{\alpha_N/\alpha_D} + \frac{D_c}{D}\right]^{\alpha_D}

    ``N_c`` and ``D_c`` lie decades outside any sweep (8.8e13 and 5.4e13 in the paper), so
    they are sampled as the loss each term alone would give at the reference scale:
    ``LN_ref = (N_c/N_ref)^{alpha_N}`` and ``LD_ref = (D_c/D_ref)^{alpha_D}``. Then

    .. math::

        \log L = \alpha_D \operatorname{logsumexp}\Big(
        \frac{\log LN_{ref} - \alpha_N (\log N - \log N_{ref})}{\alpha_D},\
        \frac{\log LD_{ref} - \alpha_D (\log D - \log D_{ref})}{\alpha_D}\Big)

    Parameters (free)
    -----------------
    LN_ref, LD_ref
        ``LogNormal(1, 0.75)``: median 2.7 nats, 95% in [0.6, 12].
    alpha_N, alpha_D
        ``LogNormal(log 0.1, 0.75)``: median 0.1, 95% in [0.023, 0.43]; Kaplan et al.
        report 0.076 and 0.095.

    ``N_c`` and ``D_c`` are reported as derived quantities.

    Prior predictive (``law.prior_predictive``, 4,000 draws; N in [7e7, 1.6e10], D in
    [5e9, 5e11]): median loss 4.1, 90% of draws in [1.5, 12.4] nats (checked in
    ``tests/test_laws.py``).

    References
    ----------
    Kaplan et al. (2020), "Scaling Laws for Neural Language Models", arXiv:2001.08361.
    """

    name = "kaplan"
    inputs = ("N", "D")
    scale_inputs = ("N", "D")
    priors = {
        "LN_ref": Prior("LogNormal", mu=1.0, sigma=0.75),
        "LD_ref": Prior("LogNormal", mu=1.0, sigma=0.75),
        "alpha_N": Prior("LogNormal", mu=-2.3, sigma=0.75),
        "alpha_D": Prior("LogNormal", mu=-2.3, sigma=0.75),
    }
    citation = "Kaplan et al. 2020, arXiv:2001.08361"

    def log_mean(self, m, p, z):  # noqa: D102
        a_n, a_d = p["alpha_N"], p["alpha_D"]
        return a_d * m.logsumexp(
            [
                (m.log(p["LN_ref"]) - a_n * z["N"]) / a_d,
                (m.log(p["LD_ref"]) - a_d * z["D"]) / a_d,
            ]
        )

    def frontier_exponent(self, params):
        """``a = alpha_D / (alpha_N + alpha_D)``: ``d/dN`` of the law's base at fixed ``N D``."""
        return params["alpha_D"] / (params["alpha_N"] + params["alpha_D"])

    def derived(self, m, p, log_ref):  # noqa: D102
        return {
            "N_c": m.exp(log_ref["N"] + m.log(p["LN_ref"]) / p["alpha_N"]),
            "D_c": m.exp(log_ref["D"] + m.log(p["LD_ref"]) / p["alpha_D"]),
        }
