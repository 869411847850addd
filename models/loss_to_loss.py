"""Loss-to-loss prediction (Brandfonbrener et al. 2024), with the input loss measured noisily."""

import numpy as np

from bayescale.laws import ScalingLaw
from bayescale.priors import Prior


class LossToLoss(ScalingLaw):
    r"""One loss as a shifted power law of another: ``L_y = K (L_x - E_x)^kappa + E_y``.

    .. math::

        \log L_y = \operatorname{logsumexp}\Big(\log E_y,\ \log k_{ref}
        + \kappa \log\frac{z - f}{1 - f}\Big),
        \qquad z = L_x / L_{x,min},\quad E_x = f\,L_{x,min}

    Brandfonbrener et al. (2024) find this form links train-to-train (the same models
    trained on two corpora), train-to-test and test-to-test losses, so a loss measured on
    small models of one kind predicts another kind's. The input is the loss ``Lx`` itself
    (a linear input); its reference is the smallest fitted ``Lx``, so ``E_x = f L_{x,min}``
    with ``f`` in (0, 1) keeps ``L_x - E_x > 0`` at every fitted row by construction.
    Predictions at an ``Lx`` at or below a draw's ``E_x`` are undefined (NaN).

    Errors in variables. ``Lx`` is an evaluation loss, measured with noise like ``Ly``;
    ignoring that biases ``kappa`` towards zero and makes intervals too narrow. The noise
    ``sigma_x`` of ``log Lx`` is propagated to first order: it adds
    ``|d log L_y / d log L_x| * sigma_x`` in quadrature to the noise of ``log Ly``
    (effective variance; Orear 1982), which keeps one likelihood term per row, so LOO
    still works. The approximation is accurate when ``sigma_x`` is small next to the
    curvature of the law, as it is for evaluation losses (1-2% noise).

    Parameters (free)
    -----------------
    E_y
        Irreducible ``y`` loss, ``LogNormal(0.5, 0.6)``: median 1.65, 95% in [0.5, 5.3].
    k_ref
        Reducible ``y`` loss at the smallest fitted ``Lx``, ``LogNormal(-1, 1)``: median
        0.37, 95% in [0.05, 2.6]. Narrower than the other laws' reference terms because
        the power ``kappa`` multiplies it up across the sweep's range of ``Lx``.
    kappa
        Exponent, ``LogNormal(0, 0.5)``: median 1, 95% in [0.38, 2.7]. Brandfonbrener et
        al. report exponents near 1 for train-to-train and up to ~2 train-to-test.
    f
        ``E_x`` as a fraction of the smallest fitted ``Lx``, ``Beta(3, 2)``: mean 0.6, 95%
        in [0.19, 0.93]. Models in a sweep usually sit well above the irreducible loss.
    sigma_x
        Noise sd of ``log Lx``, ``HalfNormal(0.02)``: up to ~4%, the seed-to-seed and
        evaluation noise of LLM losses. Set it (``priors={"sigma_x": ...}``) when the
        evaluation's standard errors are known.

    ``E_x = f * Lx_min`` and ``K = k_ref / (Lx_min (1 - f))**kappa`` are reported as
    derived quantities.

    Prior predictive (``law.prior_predictive``, 4,000 draws, ``Lx`` in [2.5, 4]): median
    ``Ly`` 2.7, 90% of draws in [1.1, 8.5] nats (``tests/test_law_loss_to_loss.py``).

    References
    ----------
    Brandfonbrener, Anand, Vyas, Malach, Kakade (2024), "Loss-to-Loss Prediction: Scaling
    Laws for All Datasets", arXiv:2411.12925. Orear (1982), "Least squares when both
    variables have uncertainties", Am. J. Phys. 50, 912.
    """

    name = "loss_to_loss"
    inputs = ("Lx",)
    linear_inputs = ("Lx",)
    noisy_inputs = ("Lx",)
    priors = {
        "E_y": Prior("LogNormal", mu=0.5, sigma=0.6),
        "k_ref": Prior("LogNormal", mu=-1.0, sigma=1.0),
        "kappa": Prior("LogNormal", mu=0.0, sigma=0.5),
        "f": Prior("Beta", alpha=3.0, beta=2.0),
        "sigma_x": Prior("HalfNormal", sigma=0.02),
    }
    citation = "Brandfonbrener et al. 2024, arXiv:2411.12925"

    def input_support(self, name):
        """``Lx`` is a loss, and its reference is the log of the smallest: it must be > 0."""
        return "positive"

    def log_reference(self, inputs):
        """The smallest ``Lx`` (exact, not rounded): ``E_x`` is a fraction of it."""
        return {"Lx": float(np.log(np.min(np.asarray(inputs["Lx"], float))))}

    def _log_terms(self, m, p, z):
        shift = m.log(z["Lx"] - p["f"]) - m.log(1 - p["f"])
        return m.log(p["E_y"]), m.log(p["k_ref"]) + p["kappa"] * shift

    def log_mean(self, m, p, z):  # noqa: D102
        return m.logsumexp(list(self._log_terms(m, p, z)))

    def input_log_sd(self, m, p, z):
        """``|d log Ly / d log Lx| * sigma_x``: the share of ``Ly`` that moves with ``Lx``."""
        log_floor, log_term = self._log_terms(m, p, z)
        share = m.sigmoid(log_term - log_floor)
        return share * p["kappa"] * z["Lx"] / (z["Lx"] - p["f"]) * p["sigma_x"]

    def derived(self, m, p, log_ref):  # noqa: D102
        lx_min = m.exp(log_ref["Lx"])
        return {
            "E_x": p["f"] * lx_min,
            "K": p["k_ref"] * m.exp(-p["kappa"] * m.log(lx_min * (1 - p["f"]))),
        }
