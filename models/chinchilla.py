"""The Chinchilla (Hoffmann et al. 2022) law in parameters and tokens."""

import numpy as np

from bayescale.laws import ScalingLaw
from bayescale.priors import Prior


class Chinchilla(ScalingLaw):
    r"""Additive power laws in model size ``N`` and training tokens ``D``.

    .. math::

        L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}},
        \qquad \log L = \operatorname{logsumexp}\big(\log E,\
        \log a_{ref} - \alpha\,(\log N - \log N_{ref}),\
        \log b_{ref} - \beta\,(\log D - \log D_{ref})\big)

    Parameters (free)
    -----------------
    E
        Irreducible loss, ``LogNormal(0.5, 0.6)``: median 1.65, 95% in [0.5, 5.3] nats.
    a_ref, b_ref
        Size of the N (D) term at the reference ``N_ref`` (``D_ref``), the geometric centre
        of the data. ``LogNormal(-1, 1.5)``: median 0.37, 95% in [0.02, 7]. On the Chinchilla
        data each term is about 0.35 nats at the centre.
    alpha, beta
        Exponents, ``Beta(2, 3)``: mean 0.4, 95% in [0.07, 0.81]. Published fits range from
        0.28 (Hoffmann et al.) to 0.69 (Gemstones' beta); the bound below 1 removes the
        E-exponent ridge that unbounded priors leave for NUTS to wander along.

    ``A = a_ref * N_ref**alpha`` and ``B = b_ref * D_ref**beta`` are reported as derived
    quantities.

    Prior predictive (``law.prior_predictive``, 4,000 draws; N in [7e7, 1.6e10], D in
    [5e9, 5e11]): median loss 3.1, 90% of draws in [1.2, 11.2] nats: every published LLM
    sweep sits well inside (checked in ``tests/test_laws.py``).

    References
    ----------
    Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models",
    arXiv:2203.15556. Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt",
    arXiv:2404.10102.
    """

    name = "chinchilla"
    inputs = ("N", "D")
    scale_inputs = ("N", "D")
    terms = ("E", "a_ref", "b_ref")
    term_exponents = {"a_ref": ("alpha", "N"), "b_ref": ("beta", "D")}
    priors = {
        "E": Prior("LogNormal", mu=0.5, sigma=0.6),
        "a_ref": Prior("LogNormal", mu=-1.0, sigma=1.5),
        "b_ref": Prior("LogNormal", mu=-1.0, sigma=1.5),
        "alpha": Prior("Beta", alpha=2.0, beta=3.0),
        "beta": Prior("Beta", alpha=2.0, beta=3.0),
    }
    citation = "Hoffmann et al. 2022, arXiv:2203.15556"

    def log_mean(self, m, p, z):  # noqa: D102
        return m.logsumexp(
            [
                m.log(p["E"]),
                m.log(p["a_ref"]) - p["alpha"] * z["N"],
                m.log(p["b_ref"]) - p["beta"] * z["D"],
            ]
        )

    def derived(self, m, p, log_ref):  # noqa: D102
        return {
            "A": p["a_ref"] * m.exp(p["alpha"] * log_ref["N"]),
            "B": p["b_ref"] * m.exp(p["beta"] * log_ref["D"]),
        }

    def frontier_exponent(self, params):
        """``a = beta / (alpha + beta)`` of ``N* ∝ C^a`` (:meth:`compute_optimal`)."""
        return params["beta"] / (params["alpha"] + params["beta"])

    @staticmethod
    def compute_optimal(params, C, flops_per_token=6.0):
        r"""Loss-minimising ``N*`` and ``D*`` at compute ``C = k N D`` (closed form).

        .. math::

            N^* = G \left(\frac{C}{k}\right)^{\beta/(\alpha+\beta)},\quad
            D^* = \frac{C}{k N^*},\quad
            G = \left(\frac{\alpha A}{\beta B}\right)^{1/(\alpha+\beta)}

        Parameters
        ----------
        params : dict
            ``A, B, alpha, beta`` (arrays of posterior draws broadcast).
        C : array_like
            Compute budgets in FLOPs.
        flops_per_token : float
            ``k``; 6 for the usual forward+backward estimate.

        Returns
        -------
        tuple of ndarray
            ``(N*, D*)``.
        """
        a, b = np.asarray(params["alpha"]), np.asarray(params["beta"])
        log_g = (np.log(a) + np.log(params["A"]) - np.log(b) - np.log(params["B"])) / (a + b)
        log_n = log_g + b / (a + b) * np.log(np.asarray(C) / flops_per_token)
        n_opt = np.exp(log_n)
        return n_opt, np.asarray(C) / (flops_per_token * n_opt)
