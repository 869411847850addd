"""Saturating power law in one input."""

from bayescale.laws import ScalingLaw
from bayescale.priors import Prior


class PowerLaw(ScalingLaw):
    r"""Saturating power law in a single input ``x``.

    .. math::

        L(x) = E + A\,x^{-\alpha},
        \qquad \log L = \operatorname{logsumexp}(\log E,\ \log a_{ref} - \alpha (\log x - \log x_{ref}))

    Map a column to ``x`` with ``inputs={"x": "N"}`` (or tokens, compute, steps...).

    Parameters (free)
    -----------------
    E
        Irreducible loss. ``LogNormal(0.5, 0.6)``: median 1.65, 95% in [0.5, 5.3], the range
        of final cross-entropies (nats/token) of language models on natural text.
    a_ref
        Size of the reducible term at the reference ``x_ref`` (the data's geometric centre).
        ``LogNormal(-1, 1.5)``: median 0.37, 95% in [0.02, 7]: from negligible to dominant.
    alpha
        Exponent. ``LogNormal(log 0.3, 1)``: median 0.3, 95% in [0.04, 2.1], covering
        compute exponents near 0.05 (Porian et al.) up to data-set-size exponents near 1.

    ``A = a_ref * x_ref**alpha`` is reported as a derived quantity.

    Sampling. Where a short curve barely bends, the data pin ``E + a_ref`` but not how it
    splits, and NUTS meets that trade-off as an L-shaped ridge in ``(log E, log a_ref)``:
    on the ten 19-point BIG-bench curves of the Revisiting-NSL benchmark (4 x 1000 draws,
    target_accept 0.95) 8 fits fail the checks, 7 of them with 2-15 divergences. Sampling
    the split instead (``y_ref = E + a_ref ~ LogNormal(0.5, 1)`` and
    ``E / y_ref ~ Beta(1, 1)``, as ``broken_power_law`` does) passed 7 of those 10 and all
    5 NMT curves (4 before), but only 62 of the 72 image-classification curves (71
    before): there the floor is barely identified, the ``E`` prior above keeps it off
    zero, and without it the chains wander towards ``E = 0``. So this form stays, and its
    failures are reported.

    Prior predictive (``law.prior_predictive``, 4,000 draws, x spanning two decades around
    ``x_ref``): median loss 2.35, 90% of draws in [0.9, 8.6] nats, so the prior allows
    every LLM sweep we know of without putting mass on absurd losses
    (checked in ``tests/test_laws.py``).

    References
    ----------
    Hestness et al. (2017), "Deep Learning Scaling is Predictable, Empirically",
    arXiv:1712.00409.
    """

    name = "power_law"
    inputs = ("x",)
    scale_inputs = ("x",)
    terms = ("E", "a_ref")
    term_exponents = {"a_ref": ("alpha", "x")}
    priors = {
        "E": Prior("LogNormal", mu=0.5, sigma=0.6),
        "a_ref": Prior("LogNormal", mu=-1.0, sigma=1.5),
        "alpha": Prior("LogNormal", mu=-1.2, sigma=1.0),
    }
    citation = "Hestness et al. 2017, arXiv:1712.00409"

    def log_mean(self, m, p, z):  # noqa: D102
        return m.logsumexp([m.log(p["E"]), m.log(p["a_ref"]) - p["alpha"] * z["x"]])

    def derived(self, m, p, log_ref):  # noqa: D102
        return {"A": p["a_ref"] * m.exp(p["alpha"] * log_ref["x"])}
