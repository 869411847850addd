"""Pure power law (no floor) in one input."""

from bayescale.laws import ScalingLaw
from bayescale.priors import Prior


class PurePowerLaw(ScalingLaw):
    r"""Pure power law in a single input ``x``: a straight line on log-log axes.

    .. math::

        y = k\,x^{a}, \qquad \log y = \log y_{ref} + a (\log x - \log x_{ref})

    The form of compute-optimal allocations, ``N*(C) = k C^a`` and ``D*(C)`` (Kaplan et al.
    2020; Hoffmann et al. 2022, approaches 1 and 2; Porian et al. 2024), and of losses far
    from their floor. Map a column to ``x`` with ``inputs={"x": "flops"}``.

    Parameters (free)
    -----------------
    y_ref
        The law's value at the reference ``x_ref`` (the data's geometric centre).
        ``LogNormal(0, 10)``: ``y`` may be a loss (~1), a parameter count (~1e9) or a token
        count (~1e12), so the default is vague on purpose, ``log y_ref`` within +-20; the
        data pin it down (12 points fix it to a few per cent in the Porian case study).
        Pass ``priors={"y_ref": ...}`` when you know the scale.
    a
        Exponent, signed: positive for quantities that grow with ``x`` (``N*`` and ``D*``
        grow as ``C^0.5`` under Chinchilla scaling), negative for losses.
        ``Normal(0, 1)``: 95% in [-2, 2], every exponent in the scaling literature.

    ``k = y_ref * x_ref**-a`` is reported as a derived quantity.

    References
    ----------
    Kaplan et al. (2020), "Scaling Laws for Neural Language Models", arXiv:2001.08361.
    """

    name = "pure_power_law"
    inputs = ("x",)
    scale_inputs = ("x",)
    priors = {
        "y_ref": Prior("LogNormal", mu=0.0, sigma=10.0),
        "a": Prior("Normal", mu=0.0, sigma=1.0),
    }
    citation = "Kaplan et al. 2020, arXiv:2001.08361"

    def log_mean(self, m, p, z):  # noqa: D102
        return m.log(p["y_ref"]) + p["a"] * z["x"]

    def derived(self, m, p, log_ref):  # noqa: D102
        return {"k": p["y_ref"] * m.exp(-p["a"] * log_ref["x"])}
