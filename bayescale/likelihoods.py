"""Observation models, written once for PyMC and for numpy.

Every model receives the law's mean as ``log_mu`` (laws are written in log space). Losses
use ``normal`` or ``student_t`` on ``log y``; accuracies in [0, 1] use ``beta`` (a mean and a
precision) or ``binomial`` (when the benchmark's item count is known).

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
    """Base class: an observation model with its own parameters and priors.

    Attributes
    ----------
    support : str
        Allowed range of the response (a key of :data:`bayescale.data.SUPPORTS`).
    known_sd : bool
        Whether per-row known errors of ``log y`` (``y_log_sd``) can be added.
    scale : str
        What the density is a density of; fits compare by LOO only on the same scale.
    """

    name: ClassVar[str] = ""
    priors: ClassVar[dict[str, Prior]] = {}
    support: ClassVar[str] = "positive"
    known_sd: ClassVar[bool] = True
    scale: ClassVar[str] = "log y"

    def observe(self, y):
        """The response as the model observes it (here ``log y``)."""
        return np.log(y)

    def create(self, name, mu, p, observed, shape, known_sd=None):
        """Add the observed random variable to the current PyMC model.

        ``mu`` is the law's log mean; ``known_sd`` (per row, optional) is added in
        quadrature to the noise scale.
        """
        raise NotImplementedError

    def logpdf(self, observed, mu, p, known_sd=None):
        """Pointwise log density of the observed values (draws broadcast against rows)."""
        raise NotImplementedError

    def draw(self, mu, p, rng, known_sd=None):
        """Draw new responses, in the response's own units, around log mean ``mu``."""
        raise NotImplementedError

    def to_dict(self):
        """Serialisable spec."""
        return {"name": self.name}


def in_quadrature(*sds):
    """``sqrt(sum of squares)`` of the standard deviations given, ignoring ``None``s.

    ``None`` when all are ``None``. Plain arithmetic, so it serves numpy arrays and
    pytensor tensors alike.
    """
    sds = [s for s in sds if s is not None]
    return sum(s**2 for s in sds) ** 0.5 if sds else None


def _scale(sigma, known_sd):
    """Noise scale per row: ``sigma``, widened by known measurement error when given."""
    return in_quadrature(sigma, known_sd)


class Normal(Likelihood):
    """``log y ~ Normal(mu, sigma)``; ``sigma ~ HalfNormal(0.1)``, i.e. noise up to ~20%."""

    name = "normal"
    priors = {"sigma": Prior("HalfNormal", sigma=0.1)}

    def create(self, name, mu, p, observed, shape, known_sd=None):  # noqa: D102
        import pymc as pm

        sigma = _scale(p["sigma"], known_sd)
        return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, shape=shape)

    def logpdf(self, observed, mu, p, known_sd=None):  # noqa: D102
        return stats.norm.logpdf(observed, mu, _scale(p["sigma"], known_sd))

    def draw(self, mu, p, rng, known_sd=None):  # noqa: D102
        return np.exp(rng.normal(mu, _scale(p["sigma"], known_sd)))


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

    def logpdf(self, observed, mu, p, known_sd=None):  # noqa: D102
        return stats.t.logpdf(observed, p["nu"], mu, _scale(p["sigma"], known_sd))

    def draw(self, mu, p, rng, known_sd=None):  # noqa: D102
        t = rng.standard_t(p["nu"], size=np.broadcast(mu, p["nu"]).shape)
        return np.exp(mu + _scale(p["sigma"], known_sd) * t)


class Beta(Likelihood):
    """``y ~ Beta(mu phi, (1 - mu) phi)`` for fractions in (0, 1), such as accuracies.

    The law's mean must stay inside (0, 1) (``downstream`` guarantees it). ``phi`` is the
    precision: the sd at mean ``mu`` is ``sqrt(mu (1 - mu) / (1 + phi))``.
    ``phi ~ LogNormal(log 300, 1.5)``: median 300 (sd 0.03 at mu = 0.5), 95% in [16, 5,700],
    from "models scatter by +-12 points around the curve" to "only the sampling noise of
    a few thousand benchmark items" (sd 0.007).
    """

    name = "beta"
    priors = {"phi": Prior("LogNormal", mu=float(np.log(300.0)), sigma=1.5)}
    support = "open_unit"
    known_sd = False
    scale = "y"

    def observe(self, y):  # noqa: D102
        return np.asarray(y, float)

    def create(self, name, mu, p, observed, shape, known_sd=None):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        mean = pt.exp(mu)
        return pm.Beta(
            name, alpha=mean * p["phi"], beta=(1 - mean) * p["phi"], observed=observed, shape=shape
        )

    def logpdf(self, observed, mu, p, known_sd=None):  # noqa: D102
        mean = np.exp(mu)
        return stats.beta.logpdf(observed, mean * p["phi"], (1 - mean) * p["phi"])

    def draw(self, mu, p, rng, known_sd=None):  # noqa: D102
        mean = np.exp(mu)
        return rng.beta(mean * p["phi"], (1 - mean) * p["phi"])


class Binomial(Likelihood):
    """``y n ~ Binomial(n, mu)``: accuracy on a benchmark of ``n`` items.

    Only the sampling noise of the items: right when the curve should explain the rest.
    When models scatter around the curve by more than that (different data, seeds,
    recipes), ``beta`` estimates the extra spread; :func:`bayescale.compare` decides.

    Parameters
    ----------
    n : int
        Number of items in the benchmark.
    """

    name = "binomial"
    priors = {}
    support = "unit"
    known_sd = False
    scale = "correct items"

    def __init__(self, n):
        if not (float(n).is_integer() and n >= 1):
            raise SpecError(f"binomial likelihood needs the item count n >= 1, got {n!r}")
        self.n = int(n)

    def observe(self, y):  # noqa: D102
        return np.round(np.asarray(y, float) * self.n)

    def create(self, name, mu, p, observed, shape, known_sd=None):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        return pm.Binomial(name, n=self.n, p=pt.exp(mu), observed=observed, shape=shape)

    def logpdf(self, observed, mu, p, known_sd=None):  # noqa: D102
        return stats.binom.logpmf(observed, self.n, np.exp(mu))

    def draw(self, mu, p, rng, known_sd=None):  # noqa: D102
        return rng.binomial(self.n, np.exp(mu)) / self.n

    def to_dict(self):  # noqa: D102
        return {"name": self.name, "n": self.n}


LIKELIHOODS = {cls.name: cls for cls in (Normal, StudentT, Beta, Binomial)}


def get_likelihood(likelihood):
    """Return a likelihood instance from its name, spec dict, or an instance.

    ``"normal"``, ``"student_t"`` and ``"beta"`` are names; ``Binomial(n=...)`` needs its
    item count, so pass an instance (or ``{"name": "binomial", "n": ...}``).
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    options = {}
    if isinstance(likelihood, dict):
        options = {k: v for k, v in likelihood.items() if k != "name"}
        likelihood = likelihood["name"]
    if likelihood not in LIKELIHOODS:
        raise SpecError(
            f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}"
        )
    try:
        return LIKELIHOODS[likelihood](**options)
    except TypeError as err:
        raise SpecError(f"likelihood {likelihood!r}: {err}") from err
