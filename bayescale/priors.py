"""Priors as small, serialisable objects.

``Prior("Beta", alpha=3, beta=5)`` names a PyMC distribution and its parameters. The same
object builds the PyMC random variable, gives the matching scipy distribution (quantiles for
baseline start grids, fast numpy prior draws without compiling a graph), and round-trips
through a dict so saved fits record exactly what was assumed. A deliberately small set of
distributions is supported; each is listed with its scipy twin so both sides agree.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from bayescale.arguments import is_number
from bayescale.errors import SpecError

# name -> (parameter names, parameters that must be > 0, support, scipy constructor)
_DISTRIBUTIONS = {
    "Normal": (("mu", "sigma"), ("sigma",), "real", lambda mu, sigma: stats.norm(mu, sigma)),
    "StudentT": (
        ("nu", "mu", "sigma"),
        ("nu", "sigma"),
        "real",
        lambda nu, mu, sigma: stats.t(nu, mu, sigma),
    ),
    "LogNormal": (
        ("mu", "sigma"),
        ("sigma",),
        "positive",
        lambda mu, sigma: stats.lognorm(s=sigma, scale=np.exp(mu)),
    ),
    "HalfNormal": (("sigma",), ("sigma",), "positive", lambda sigma: stats.halfnorm(scale=sigma)),
    "Gamma": (
        ("alpha", "beta"),
        ("alpha", "beta"),
        "positive",
        lambda alpha, beta: stats.gamma(alpha, scale=1.0 / beta),
    ),
    "Exponential": (("lam",), ("lam",), "positive", lambda lam: stats.expon(scale=1.0 / lam)),
    "Beta": (
        ("alpha", "beta"),
        ("alpha", "beta"),
        "unit",
        lambda alpha, beta: stats.beta(alpha, beta),
    ),
    "Uniform": (
        ("lower", "upper"),
        (),
        "interval",
        lambda lower, upper: stats.uniform(lower, upper - lower),
    ),
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution for one scaling-law parameter.

    Parameters
    ----------
    dist : str
        PyMC distribution name; one of ``Prior.supported()``.
    **params : float
        The distribution's parameters, by PyMC's names (``mu``, ``sigma``, ``alpha``, ...).

    Examples
    --------
    >>> Prior("Beta", alpha=3, beta=5).scipy().mean()
    0.375
    """

    dist: str
    params: dict = field(default_factory=dict)

    def __init__(self, dist, **params):
        if not isinstance(dist, str) or dist not in _DISTRIBUTIONS:
            raise SpecError(
                f"unknown prior distribution {dist!r}; supported: {', '.join(_DISTRIBUTIONS)}"
            )
        names, positive, _, _ = _DISTRIBUTIONS[dist]
        if set(params) != set(names):
            raise SpecError(
                f"Prior({dist!r}) takes parameters {names}, got {tuple(sorted(params))}"
            )
        clean = {}
        for key in names:
            value = params[key]
            try:  # an int beyond float64 (2**1024) is not finite either
                finite = is_number(value) and bool(np.isfinite(float(value)))
            except OverflowError:
                finite = False
            if not finite:
                raise SpecError(f"Prior({dist!r}): {key}={value!r} must be a finite number")
            if key in positive and value <= 0:
                raise SpecError(f"Prior({dist!r}): {key}={value!r} must be > 0")
            clean[key] = float(value)
        if dist == "Uniform" and clean["upper"] <= clean["lower"]:
            raise SpecError(f"Prior('Uniform'): upper={clean['upper']} must exceed lower")
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "params", clean)

    @staticmethod
    def supported():
        """Names of the supported distributions."""
        return tuple(_DISTRIBUTIONS)

    @staticmethod
    def parameter_names(dist):
        """The parameters of distribution ``dist``, in PyMC's order (``("mu", "sigma")``)."""
        if dist not in _DISTRIBUTIONS:
            raise SpecError(
                f"unknown prior distribution {dist!r}; supported: {', '.join(_DISTRIBUTIONS)}"
            )
        return tuple(_DISTRIBUTIONS[dist][0])

    @property
    def support(self):
        """``"real"``, ``"positive"``, ``"unit"`` (0, 1) or ``"interval"`` (lower, upper)."""
        return _DISTRIBUTIONS[self.dist][2]

    @property
    def bounds(self):
        """Lowest and highest value the prior allows, ``(-inf, inf)`` on the real line."""
        if self.support == "interval":
            return self.params["lower"], self.params["upper"]
        return {"real": (-np.inf, np.inf), "positive": (0.0, np.inf), "unit": (0.0, 1.0)}[
            self.support
        ]

    def scipy(self):
        """The frozen scipy distribution with the same density."""
        return _DISTRIBUTIONS[self.dist][3](**self.params)

    def to_unconstrained(self, m, value):
        """Map a value in the support to the real line (log, logit, or identity).

        ``m`` is a math namespace from :mod:`bayescale.ops`; this is the scale on which
        baselines optimise and pooled parameters get their group offsets.
        """
        if self.support == "positive":
            return m.log(value)
        if self.support == "unit":
            return m.log(value) - m.log1p(-value)
        if self.support == "interval":
            lo, hi = self.params["lower"], self.params["upper"]
            frac = (value - lo) / (hi - lo)
            return m.log(frac) - m.log1p(-frac)
        return value

    def to_constrained(self, m, theta):
        """Inverse of :meth:`to_unconstrained`."""
        if self.support == "positive":
            return m.exp(theta)
        if self.support == "unit":
            return m.sigmoid(theta)
        if self.support == "interval":
            lo, hi = self.params["lower"], self.params["upper"]
            return lo + (hi - lo) * m.sigmoid(theta)
        return theta

    def logp(self, value):
        """PyMC's log density of ``value`` (a tensor) under this prior."""
        import pymc as pm

        return pm.logp(getattr(pm, self.dist).dist(**self.params), value)

    def create(self, name, **kwargs):
        """Create the PyMC random variable ``name`` inside the current model context."""
        import pymc as pm  # lazily: a fit from a cached program never builds a model

        return getattr(pm, self.dist)(name, **self.params, **kwargs)

    def to_dict(self):
        """Plain-dict form, the inverse of :meth:`from_dict`."""
        return {"dist": self.dist, **self.params}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a prior from :meth:`to_dict` output."""
        d = dict(d)
        return cls(d.pop("dist"), **d)

    def __repr__(self):
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"Prior({self.dist!r}, {args})"
