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

Dependent noise. Checkpoints of one training run are not independent draws around the
law: a run that is above the curve at one checkpoint is above it at the next.
``ou_normal`` models the noise of ``log y`` along a curve as an Ornstein-Uhlenbeck process
in ``log x`` (see :class:`OUNormal`); it needs each row's predecessor on its curve, the
*links* that :meth:`Likelihood.links` returns (``None`` for the independent models).
"""

import inspect
from typing import ClassVar

import numpy as np
from scipy import stats

from bayescale.arguments import is_number
from bayescale.errors import SpecError
from bayescale.priors import Prior

LIKELIHOODS: dict = {}
"""Every likelihood class by name, in definition order: defining a subclass with a
``name`` registers it, as scaling laws register themselves."""


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
    dependent : bool
        Whether rows of one curve share noise (then :meth:`links` says how).
    """

    name: ClassVar[str] = ""
    priors: ClassVar[dict[str, Prior]] = {}
    support: ClassVar[str] = "positive"
    known_sd: ClassVar[bool] = True
    scale: ClassVar[str] = "log y"
    dependent: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.name:
            return
        if cls.name in LIKELIHOODS and LIKELIHOODS[cls.name] is not cls:
            raise SpecError(f"a likelihood named {cls.name!r} is already registered")
        LIKELIHOODS[cls.name] = cls

    def observe(self, y):
        """The response as the model observes it (here ``log y``)."""
        return np.log(y)

    def log_y_jacobian(self, y):
        """What turns a log density on this likelihood's :attr:`scale` into one of ``log y``.

        ``log |d observed / d log y|``: 0 here; a density of ``y`` gains ``log y``, a mass
        of ``n y`` counts (spacing 1) ``log(n y)``. Backtests score every method on
        ``log y``, whatever its likelihood.
        """
        return np.zeros(np.shape(y))

    def links(self, law, frame, log_ref, groups, new=None):
        """Each row's predecessor on its curve, for models of dependent noise; else None.

        Parameters
        ----------
        law : ScalingLaw
        frame : DataFrame
            Validated fitted rows (law inputs by name).
        log_ref : dict
            The fit's log reference scales.
        groups : array of int, optional
            Group code per fitted row (rows of one group form one curve).
        new : tuple (DataFrame, array of int or None), optional
            Rows to predict and their group codes: then the predecessors are fitted rows.
        """
        return None

    def context(self, observed, log_mu, links):
        """What a row's density needs of the others, from :meth:`links` (None: nothing)."""
        return None

    def create(self, name, mu, p, observed, shape, known_sd=None, links=None):
        """Add the observed random variable to the current PyMC model.

        ``mu`` is the law's log mean; ``known_sd`` (per row, optional) is added in
        quadrature to the noise scale; ``links`` (tensors) are those of :meth:`links`.
        """
        raise NotImplementedError

    def logpdf(self, observed, mu, p, known_sd=None, context=None):
        """Pointwise log density of the observed values (draws broadcast against rows).

        For dependent noise, ``context`` (from :meth:`context`) makes it the density given
        the row's predecessor, so the terms sum to the joint density.
        """
        raise NotImplementedError

    def loo_logpdf(self, observed, mu, p, known_sd=None, links=None):
        """Log density of each fitted row given all the others, what PSIS-LOO needs.

        ``log p(y_i | y_-i, theta)`` per draw: PSIS-LOO reweights posterior draws by its
        inverse to approximate leaving row ``i`` out. For independent noise it is
        :meth:`logpdf`; models of dependent noise override it (``links`` as from
        :meth:`links`).
        """
        return self.logpdf(observed, mu, p, known_sd)

    def draw(self, mu, p, rng, known_sd=None, context=None):
        """Draw new responses, in the response's own units, around log mean ``mu``.

        ``context`` conditions dependent noise on the fitted rows (None: a new curve).
        """
        raise NotImplementedError

    def simulate(self, mu, p, rng, known_sd=None, links=None):
        """Draw a whole data set from the joint density (``links`` as from :meth:`links`).

        Unlike :meth:`draw`, rows of one curve are drawn together, each given the ones
        before it; for independent noise the two are the same.
        """
        return self.draw(mu, p, rng, known_sd)

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

    def create(self, name, mu, p, observed, shape, known_sd=None, links=None):  # noqa: D102
        import pymc as pm

        sigma = _scale(p["sigma"], known_sd)
        return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, shape=shape)

    def logpdf(self, observed, mu, p, known_sd=None, context=None):  # noqa: D102
        return stats.norm.logpdf(observed, mu, _scale(p["sigma"], known_sd))

    def draw(self, mu, p, rng, known_sd=None, context=None):  # noqa: D102
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

    def create(self, name, mu, p, observed, shape, known_sd=None, links=None):  # noqa: D102
        import pymc as pm

        sigma = _scale(p["sigma"], known_sd)
        return pm.StudentT(name, nu=p["nu"], mu=mu, sigma=sigma, observed=observed, shape=shape)

    def logpdf(self, observed, mu, p, known_sd=None, context=None):  # noqa: D102
        return stats.t.logpdf(observed, p["nu"], mu, _scale(p["sigma"], known_sd))

    def draw(self, mu, p, rng, known_sd=None, context=None):  # noqa: D102
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

    def log_y_jacobian(self, y):  # noqa: D102
        return np.log(np.asarray(y, float))

    def create(self, name, mu, p, observed, shape, known_sd=None, links=None):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        mean = pt.exp(mu)
        return pm.Beta(
            name, alpha=mean * p["phi"], beta=(1 - mean) * p["phi"], observed=observed, shape=shape
        )

    def logpdf(self, observed, mu, p, known_sd=None, context=None):  # noqa: D102
        mean = np.exp(mu)
        return stats.beta.logpdf(observed, mean * p["phi"], (1 - mean) * p["phi"])

    def draw(self, mu, p, rng, known_sd=None, context=None):  # noqa: D102
        # a mean that rounds to 0 or 1 (far beyond the data) is the limit's point mass
        # there; numpy's beta raised "a <= 0" on it
        mean = np.exp(mu)
        inside = (mean > 0) & (mean < 1)
        safe = np.where(inside, mean, 0.5)
        return np.where(inside, rng.beta(safe * p["phi"], (1 - safe) * p["phi"]), mean)


class Binomial(Likelihood):
    """``y n ~ Binomial(n, mu)``: accuracy on a benchmark of ``n`` items.

    The response is read as ``round(y n)`` correct items, so accuracies reported to a few
    decimals (MMLU's 14,042 items to 3 decimals: up to 7 items off) still count as counts.

    Only the sampling noise of the items: right when the curve should explain the rest.
    When models scatter around the curve by more than that (different data, seeds,
    recipes), ``beta`` estimates the extra spread. :func:`bayescale.compare` refuses to
    rank the two (a density of ``y`` against a mass of counts); subtracting ``log n`` from
    each Beta pointwise elpd puts both on the scale of counts, as
    ``case_studies/pythia_downstream.py`` does, or a backtest scores both on held-out runs
    (its ``lpd`` is a density of ``log y`` for every likelihood: :meth:`log_y_jacobian`).

    Parameters
    ----------
    n : int
        Number of items in the benchmark.
    """

    name = "binomial"
    priors = {}
    support = "unit"
    known_sd = False

    def __init__(self, n):
        if not (is_number(n) and float(n).is_integer() and n >= 1):
            raise SpecError(f"binomial likelihood needs the item count n >= 1, got {n!r}")
        self.n = int(n)

    @property
    def scale(self):
        """Masses of counts out of ``n``: fits with another ``n`` are of other observations."""
        return f"correct items of {self.n}"

    def observe(self, y):  # noqa: D102
        return np.round(np.asarray(y, float) * self.n)

    def log_y_jacobian(self, y):  # noqa: D102
        return np.log(self.n * np.asarray(y, float))

    def create(self, name, mu, p, observed, shape, known_sd=None, links=None):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        return pm.Binomial(name, n=self.n, p=pt.exp(mu), observed=observed, shape=shape)

    def logpdf(self, observed, mu, p, known_sd=None, context=None):  # noqa: D102
        return stats.binom.logpmf(observed, self.n, np.exp(mu))

    def draw(self, mu, p, rng, known_sd=None, context=None):  # noqa: D102
        return rng.binomial(self.n, np.exp(mu)) / self.n

    def to_dict(self):  # noqa: D102
        return {"name": self.name, "n": self.n}


class OUNormal(Likelihood):
    r"""``log y`` = law + Ornstein-Uhlenbeck noise along ``log x`` within each curve.

    .. math::

        \log y_i = \mu_i + e_i,\qquad
        \operatorname{Cov}(e_i, e_j) = \sigma^2 \exp(-|z_i - z_j| / \ell)

    for rows ``i, j`` on the same curve (one curve, or one per group of a grouped fit) and
    independent across curves; ``z`` is the log of input ``along``. It is Markov, so the
    density factorises along each curve sorted by ``z``: the first point is
    ``Normal(mu, sigma)`` and each next one, a gap ``g`` later, is
    ``Normal(mu_i + phi (log y_prev - mu_prev), sigma sqrt(1 - phi^2))`` with
    ``phi = exp(-g / ell)``. A prediction of ``kind="observed"`` continues the fitted
    curve: it is conditioned on the residual of the fitted point just before it, which
    matters for a few ``ell`` beyond the data and fades after.

    LOO. The joint density does not factorise into independent terms, so the pointwise
    log-likelihood kept for PSIS-LOO is each point's density given every other point of
    its curve (:meth:`loo_logpdf`), as Bürkner, Gabry and Vehtari (2021) do for
    non-factorised normal models; summing the predecessor conditionals instead would
    make PSIS-LOO estimate neither leave-one-out nor leave-future-out. Leaving one
    checkpoint out of a curve asks how well the fit *interpolates* it from its
    neighbours; how well a fit extrapolates is what :func:`bayescale.backtest` measures.

    Why. Checkpoints of one run share their errors (evaluation set, data order, learning-
    rate phase): on the Revisiting-NSL image-classification curves the residuals of BNSL
    fits with independent noise had lag-1 autocorrelation 0.37 (median over 72 curves),
    and treating 70 such points as independent made the curve's posterior too sure.

    Parameters (free)
    -----------------
    sigma
        Stationary sd of the noise of ``log y``, ``HalfNormal(0.1)`` as for ``normal``.
    ell
        Correlation length in units of ``log x``, ``LogNormal(log 0.2, 0.75)``: median 0.2
        (errors decorrelate over a 22% step in ``x``), 95% in [0.05, 0.87]: from almost
        independent checkpoints to drifts over a factor of 2.4. Longer drifts are the
        law's to explain: the noise's level is then pinned only by its slow pull back to
        the law, so the law's level and ``ell`` form a funnel. With
        ``LogNormal(log 0.3, 1)`` a simulated 80-point curve gave 13 divergences of
        4,000 at target_accept 0.95; with this prior, none.

    Sampling. Use ``target_accept=0.95``: at 0.8 the same curve gave 40 divergences.

    Parameters
    ----------
    along : str, optional
        The law input that orders a curve (default: the law's only input). Rows of one
        curve must have distinct values of it.

    References
    ----------
    Bürkner, Gabry and Vehtari (2021), "Efficient leave-one-out cross-validation for
    Bayesian non-factorized normal and Student-t models", Computational Statistics 36,
    1243-1261, arXiv:1810.10559.
    """

    name = "ou_normal"
    priors = {
        "sigma": Prior("HalfNormal", sigma=0.1),
        "ell": Prior("LogNormal", mu=float(np.log(0.2)), sigma=0.75),
    }
    known_sd = False
    dependent = True

    def __init__(self, along=None):
        self.along = along

    def to_dict(self):  # noqa: D102
        return {"name": self.name, "along": self.along}

    def _along(self, law):
        if self.along is None and len(law.inputs) == 1:
            return law.inputs[0]
        if self.along not in law.inputs or self.along in law.linear_inputs:
            raise SpecError(
                f"ou_normal: along={self.along!r} must name one of law {law.name!r}'s "
                f"log-scale inputs {[k for k in law.inputs if k not in law.linear_inputs]}"
            )
        return self.along

    def links(self, law, frame, log_ref, groups, new=None):  # noqa: D102
        along = self._along(law)
        z = law.z(frame, log_ref)[along]
        curve = np.zeros(len(z), np.int64) if groups is None else np.asarray(groups)
        if new is None:
            order = np.lexsort((z, curve))
            same = curve[order][1:] == curve[order][:-1]
            step = np.diff(z[order])
            if np.any(same & (step == 0)):
                i = int(np.flatnonzero(same & (step == 0))[0])
                a, b = order[i], order[i + 1]
                raise SpecError(
                    f"ou_normal: rows {frame.index[a]} and {frame.index[b]} (positions {a} and "
                    f"{b} in the table) share input {along} = "
                    f"{frame[along].iloc[order[i]]:g} on one curve; noise correlated along "
                    f"{along!r} needs one observation per value (average repeats, or pass "
                    "group= to make them separate curves)"
                )
            targets, sources = order[1:][same], order[:-1][same]
            zn, prev = z, np.full(len(z), -1, np.int64)
            prev[targets] = sources
        else:
            new_frame, new_groups = new
            zn = law.z(new_frame, log_ref)[along]
            new_curve = np.zeros(len(zn), np.int64) if new_groups is None else new_groups
            prev = np.full(len(zn), -1, np.int64)
            for c in np.unique(new_curve):
                rows, fitted = np.flatnonzero(new_curve == c), np.flatnonzero(curve == c)
                fitted = fitted[np.argsort(z[fitted])]
                at = np.searchsorted(z[fitted], zn[rows], side="right") - 1
                prev[rows[at >= 0]] = fitted[at[at >= 0]]
        gap = np.where(prev >= 0, zn - z[np.maximum(prev, 0)], 0.0)
        if new is not None and (at_fitted := np.flatnonzero((prev >= 0) & (gap == 0))).size:
            i = int(at_fitted[0])
            raise SpecError(
                f"ou_normal: new row {new_frame.index[i]} (position {i}) has input {along} = "
                f"{new_frame[along].iloc[i]:g}, a value fitted on its curve, where the "
                "correlated noise is the fitted observation itself (zero spread); observed "
                f"predictions and predictive densities need other values of {along} "
                "(kind='mean' works anywhere)"
            )
        return {"prev": np.maximum(prev, 0), "has_prev": (prev >= 0).astype(float), "gap": gap}

    def context(self, observed, log_mu, links):  # noqa: D102
        prev = links["prev"]
        residual = (observed[prev] - log_mu[..., prev]) * links["has_prev"]
        return {"residual": residual, "has_prev": links["has_prev"], "gap": links["gap"]}

    def _moments(self, exp, mu, p, context):
        """Conditional mean and sd given the predecessor's residual (``exp`` of either)."""
        if context is None:
            return mu, p["sigma"]
        phi = exp(-context["gap"] / p["ell"]) * context["has_prev"]
        return mu + phi * context["residual"], p["sigma"] * (1.0 - phi**2) ** 0.5

    def create(self, name, mu, p, observed, shape, known_sd=None, links=None):  # noqa: D102
        import pymc as pm
        import pytensor.tensor as pt

        mean, sd = self._moments(pt.exp, mu, p, self.context(observed, mu, links))
        return pm.Normal(name, mu=mean, sigma=sd, observed=observed, shape=shape)

    def logpdf(self, observed, mu, p, known_sd=None, context=None):  # noqa: D102
        mean, sd = self._moments(np.exp, mu, p, context)
        return stats.norm.logpdf(observed, mean, sd)

    def loo_logpdf(self, observed, mu, p, known_sd=None, links=None):
        """``log p(y_i | y_-i)``: the process is Markov, so only the two neighbours count.

        Row ``i`` appears in its own conditional (gap ``g_a`` after its predecessor) and in
        its successor's (gap ``g_b``); collecting the terms in ``e_i = log y_i - mu_i``
        gives a normal with precision ``(1 / (1 - phi_a^2) + phi_b^2 / (1 - phi_b^2)) /
        sigma^2`` and mean ``(phi_a e_prev / (1 - phi_a^2) + phi_b e_next / (1 - phi_b^2))
        / (sigma^2 precision)``, where ``phi = exp(-g / ell)`` and a missing neighbour has
        ``phi = 0``. These are the diagonal of the precision matrix and the conditional
        mean of the multivariate normal given the other rows (Bürkner, Gabry and Vehtari 2021).
        """
        prev, has_prev = links["prev"], links["has_prev"]
        successors = np.flatnonzero(has_prev)
        nxt, has_next, gap_next = np.zeros_like(prev), np.zeros_like(has_prev), np.zeros(len(prev))
        nxt[prev[successors]] = successors
        has_next[prev[successors]] = 1.0
        gap_next[prev[successors]] = links["gap"][successors]
        phi_a = np.exp(-links["gap"] / p["ell"]) * has_prev
        phi_b = np.exp(-gap_next / p["ell"]) * has_next
        e = observed - mu
        weight_a, weight_b = phi_a / (1.0 - phi_a**2), phi_b / (1.0 - phi_b**2)
        precision = (1.0 / (1.0 - phi_a**2) + phi_b * weight_b) / p["sigma"] ** 2
        pull = weight_a * e[..., prev] + weight_b * e[..., nxt]  # weight 0: no neighbour
        return stats.norm.logpdf(e, pull / (p["sigma"] ** 2 * precision), precision**-0.5)

    def draw(self, mu, p, rng, known_sd=None, context=None):  # noqa: D102
        mean, sd = self._moments(np.exp, mu, p, context)
        return np.exp(rng.normal(mean, sd))

    def simulate(self, mu, p, rng, known_sd=None, links=None):
        """One data set (``mu`` of shape (rows,)): each curve drawn point by point.

        A standard normal per row is drawn up front; the first point of each curve takes
        the stationary ``Normal(0, sigma)``, then rows whose predecessor is filled are
        filled from their conditional, so a curve of ``n`` points takes ``n`` steps.
        """
        mu = np.asarray(mu, float)
        innovation = rng.standard_normal(len(mu))
        noise = np.where(links["has_prev"] == 0, p["sigma"] * innovation, np.nan)
        for _ in range(len(mu)):
            ready = np.isnan(noise) & ~np.isnan(noise[links["prev"]])
            mean, sd = self._moments(np.exp, 0.0, p, {"residual": noise[links["prev"]], **links})
            noise[ready] = (mean + sd * innovation)[ready]
        return np.exp(mu + noise)


def likelihood_names(options=True):
    """Names of the registered likelihoods, in definition order.

    ``options=False`` keeps those that can be chosen by name alone (``binomial`` needs its
    item count), as the command line offers them.
    """
    return [
        name
        for name, cls in LIKELIHOODS.items()
        if options
        or all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
        )
    ]


def get_likelihood(likelihood):
    """Return a likelihood instance from its name, spec dict, or an instance.

    ``"normal"``, ``"student_t"`` and ``"beta"`` are names; ``Binomial(n=...)`` needs its
    item count, so pass an instance (or ``{"name": "binomial", "n": ...}``).
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    options = {}
    if isinstance(likelihood, dict):
        if "name" not in likelihood:
            raise SpecError(f"a likelihood given as a dict needs its 'name', got {likelihood!r}")
        options = {k: v for k, v in likelihood.items() if k != "name"}
        likelihood = likelihood["name"]
    if not isinstance(likelihood, str) or likelihood not in LIKELIHOODS:
        raise SpecError(
            f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}"
        )
    try:
        return LIKELIHOODS[likelihood](**options)
    except TypeError as err:
        raise SpecError(f"likelihood {likelihood!r}: {err}") from err
