"""Observation models for log y, written once for PyMC and for numpy.

Losses are fitted on the log scale: multiplicative noise is what repeated training runs
show, and it keeps a 1.8-nat and a 5-nat loss on comparable footing. ``student_t`` is the
Bayesian analogue of the Huber loss the field uses: heavy tails let a few outlying runs
(diverged, mis-logged, quantised from a plot) pull the fit much less than under ``normal``.

Known measurement error. When each observation comes with a known standard deviation
``s_i`` of its log (a bootstrap error of an estimated optimum, say), the scale of row ``i``
is ``sqrt(sigma**2 + s_i**2)``: the fitted ``sigma`` is then the scatter *beyond* what
the measurements explain, and precise rows weigh more, as in a weighted fit.
"""

from typing import ClassVar

import numpy as np
from scipy import stats

from bayescale.errors import SpecError
from bayescale.priors import Prior


class Likelihood:
    """Base class: an observation model on ``log y`` with its own parameters and priors."""

    name: ClassVar[str] = ""
    priors: ClassVar[dict[str, Prior]] = {}

    def create(self, name, mu, p, observed, shape, known_sd=None):
        """Add the observed random variable to the current PyMC model.

        ``known_sd`` (per row, optional) is added in quadrature to the noise scale.
        """
        raise NotImplementedError

    def logpdf(self, log_y, mu, p, known_sd=None):
        """Pointwise log density of ``log y`` in numpy (draws broadcast against rows)."""
        raise NotImplementedError

    def draw(self, mu, p, rng):
        """Draw ``log y`` around ``mu`` in numpy."""
        raise NotImplementedError

    def to_dict(self):
        """Serialisable spec."""
        return {"name": self.name}


def _scale(sigma, known_sd):
    """Noise scale per row: ``sigma``, widened by known measurement error when given.

    Plain arithmetic, so it serves numpy arrays and pytensor tensors alike.
    """
    return sigma if known_sd is None else (sigma**2 + known_sd**2) ** 0.5


class Normal(Likelihood):
    """``log y ~ Normal(mu, sigma)``; ``sigma ~ HalfNormal(0.1)``, i.e. noise up to ~20%."""

    name = "normal"
    priors = {"sigma": Prior("HalfNormal", sigma=0.1)}

    def create(self, name, mu, p, observed, shape, known_sd=None):  # noqa: D102
        import pymc as pm

        sigma = _scale(p["sigma"], known_sd)
        return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, shape=shape)

    def logpdf(self, log_y, mu, p, known_sd=None):  # noqa: D102
        return stats.norm.logpdf(log_y, mu, _scale(p["sigma"], known_sd))

    def draw(self, mu, p, rng):  # noqa: D102
        return rng.normal(mu, p["sigma"])


class StudentT(Likelihood):
    """``log y ~ StudentT(nu, mu, sigma)``: the robust analogue of a Huber-loss fit.

    ``nu ~ Gamma(2, 0.1)`` (Juárez and Steel 2010): mean 20, mass from 2 (heavy tails) to
    60 (practically normal), so the data decide how robust to be.
    """

    name = "student_t"
    priors = {
        "sigma": Prior("HalfNormal", sigma=0.1),
        "nu": Prior("Gamma", alpha=2.0, beta=0.1),
    }

    def create(self, name, mu, p, observed, shape, known_sd=None):  # noqa: D102
        import pymc as pm

        sigma = _scale(p["sigma"], known_sd)
        return pm.StudentT(name, nu=p["nu"], mu=mu, sigma=sigma, observed=observed, shape=shape)

    def logpdf(self, log_y, mu, p, known_sd=None):  # noqa: D102
        return stats.t.logpdf(log_y, p["nu"], mu, _scale(p["sigma"], known_sd))

    def draw(self, mu, p, rng):  # noqa: D102
        return mu + p["sigma"] * rng.standard_t(p["nu"], size=np.broadcast(mu, p["nu"]).shape)


LIKELIHOODS = {cls.name: cls for cls in (Normal, StudentT)}


def get_likelihood(likelihood):
    """Return a likelihood instance from its name (``"normal"``, ``"student_t"``)."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, dict):
        likelihood = likelihood["name"]
    if likelihood not in LIKELIHOODS:
        raise SpecError(
            f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}"
        )
    return LIKELIHOODS[likelihood]()
