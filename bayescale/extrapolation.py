"""Extrapolation error: how far a prediction reaches, and the error the law's shape adds there.

A posterior is honest about a law's parameters *given the law*; beyond the fitted runs the
law's shape itself drifts, and nothing inside one sweep says by how much. bayescale learns
the size of that drift from the field's real sweeps (``case_studies/extrapolation_calibration.py``
backtests every sweep in ``../shared/data`` at several cuts) and adds it to every
prediction beyond the fitted range.

Reach. A row's reach is its scale over the largest fitted scale, floored at 1::

    reach = max(1, s_row / max(s_fitted)),   s = product of the law's scale_inputs

(``N * D`` for the laws of parameters and tokens, proportional to compute at a fixed FLOP
rule; ``x`` for 1-D learning curves). Rows inside the fitted range have reach 1. Laws
without scale inputs (of a loss, of a schedule) have no reach (NaN) and no extrapolation
error.

The error model. On ``log y``, a prediction at reach ``r`` gets

    delta_i = (b + omega z_i) log(r_i),   b ~ Normal(0, tau),   z_i ~ Normal(0, 1)
    log tau ~ Normal(mu + gamma x + psi g, sigma)
    x = log(s_edge / REFERENCE_SPREAD),   g = log(g_edge / REFERENCE_SLOPE)

``b`` is a drift slope shared by every row of one prediction (a law whose exponent is off
by ``b`` misses by ``b log r``, the more the further it reaches); ``omega`` is the scatter
of single runs around that drift, also growing with reach; ``tau`` is a sweep's drift
scale and ``mu, sigma`` its spread over sweeps, so a new sweep gets the population's
spread, not its average. ``s_edge`` is the fit's predictive spread of ``log y`` at its
largest fitted scale: a sweep whose runs scatter little about a well-pinned law drifts
less beyond them, by ``gamma``. ``g_edge``, for 1-D laws only, is how fast the law's median
still falls there, in ``log y`` per e-fold of reach: a curve that has flattened has less
left to bend than one still falling fast, by ``psi`` (both are a fit's :class:`Edge`,
:attr:`bayescale.predictive.Evaluator.edge`). Zero inside the data.
:class:`ExtrapolationError` holds posterior draws of ``(mu, sigma, omega, gamma, psi)``;
:func:`default` is the one fitted to the real sweeps, shipped as
``extrapolation_error.json`` beside this module, and :func:`bayescale.recalibrate` fits
the same model to a user's own backtests.

Drift persists. For sweeps over model size and tokens, a backtest inside a sweep's own runs
(fit up to a third of its largest scale, predict the rest) drifts the same way as the
extrapolation beyond them: over the benchmark's 32 such pairs of 8 sources, the two slopes
correlate at 0.66, with the same sign in 78% (for 70 pairs of 1-D learning curves, -0.11
and 23%; ``case_studies/extrapolation_calibration.py drift``).
:class:`DriftPersistence` carries a nested backtest's slope ``b_n`` over::

    b = k b_n + r,   r ~ Normal(0, tau),   log tau ~ Normal(mu, sigma)

so the prediction's median moves by ``k b_n log r`` and its drift scale is what is left.
:func:`persistence` is its posterior, shipped as ``drift_persistence.json``;
:func:`bayescale.sweep_error` applies it.

The default. ``extrapolation="calibrated"`` (every prediction's default) resolves per fit
(:func:`resolve`): for a law over ``N`` and ``D``, the fit's own backtest carried over
(:attr:`bayescale.ScalingFit.own_extrapolation`, one more fit, paid on the first
prediction beyond the data and kept in saved fits), falling back to the population where
the sweep cannot be backtested; for 1-D laws, the population. ``"population"`` always
takes the population; ``"none"`` adds nothing.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from bayescale.errors import SpecError
from bayescale.ops import NUMPY

__all__ = [
    "Deferred",
    "DriftPersistence",
    "Edge",
    "ExtrapolationError",
    "carried_slope",
    "default",
    "error",
    "log_reach",
    "persistence",
    "persists",
    "resolve",
    "sloped",
]

SHIPPED = Path(__file__).with_name("extrapolation_error.json")
"""The calibration fitted by ``case_studies/extrapolation_calibration.py``."""
SHIPPED_PERSISTENCE = Path(__file__).with_name("drift_persistence.json")
"""The :class:`DriftPersistence` fitted by the same script."""
UNCONVERGED_BACKTEST = "the backtest's fit did not converge"
"""What an error learnt from a sweep's own backtest adds to its ``source`` when that
backtest's refit failed its convergence checks (read back by
:meth:`bayescale.ScalingFit.own_backtest_failure`)."""
NESTED_MIN_ROWS = 20
"""Fewest runs a nested backtest's fit may keep for its slope to be carried over: the fewest
the benchmark's cuts over ``N`` and ``D`` fitted, so the fewest :func:`persistence` was
learnt from."""
REFERENCE_SPREAD = 0.02
"""The edge spread (predictive spread of ``log y`` at a sweep's largest fitted scale, half
its central 68% interval) at which :class:`ExtrapolationError`'s ``mu`` is the mean ``log``
drift scale: a typical sweep's, so ``mu`` and ``gamma`` are nearly uncorrelated."""
EDGE_SPREADS = (5e-4, 0.2)
"""The edge spreads the shipped population was learnt over (its 196 records: 0.00047 to
0.21): a fit's own is clipped to them, so the covariate is never extrapolated (a fit of
noiseless simulated data would otherwise get almost no drift)."""
REFERENCE_SLOPE = 0.15
"""The edge slope (fall of a 1-D law's median ``log y`` per e-fold of reach beyond its data)
at which ``psi`` adds nothing: about the median of the benchmark's 158 learning-curve
records (0.16), so ``mu`` stays the drift scale of a typical curve, and of sweeps over ``N``
and ``D``, which have no edge slope."""
EDGE_SLOPES = (2e-3, 2.0)
"""The edge slopes the shipped population was learnt over (0.002 to 1.9); a fit's own is
clipped to them."""
CHOICES = ("calibrated", "population", "none")
"""The names ``extrapolation=`` takes (besides an :class:`ExtrapolationError`)."""


@dataclass(frozen=True)
class Edge:
    """A fit at the edge of its data: the covariates its drift scale grows with.

    Attributes
    ----------
    log_spread : float, optional
        ``log`` of the predictive spread of ``log y`` (half the central 68% interval) at
        the largest fitted scale.
    log_slope : float, optional
        ``log`` of how fast the median law falls there, ``|d log y / d log reach|`` over
        the first e-fold beyond the data; 1-D laws only (over ``N`` and ``D`` the way
        beyond is not one direction).

    None or NaN (a law undefined at the edge for every draw) takes the reference value,
    where the covariate adds nothing; a value is clipped to the range the shipped
    population was learnt over (:data:`EDGE_SPREADS`, :data:`EDGE_SLOPES`), so the
    covariates are never extrapolated.
    """

    log_spread: float = None
    log_slope: float = None

    def _used(self):
        """``{name: (clipped log value or None, log reference)}``: what the covariates take."""
        return {
            "spread": (_clipped(self.log_spread, EDGE_SPREADS), np.log(REFERENCE_SPREAD)),
            "slope": (_clipped(self.log_slope, EDGE_SLOPES), np.log(REFERENCE_SLOPE)),
        }

    def covariates(self):
        """``(x, g)``: ``log`` of the clipped spread and slope over their reference values."""
        return tuple(0.0 if v is None else v - ref for v, ref in self._used().values())

    def describe(self):
        """``"an edge spread of 0.011 and an edge slope of 0.12"`` (as clipped; "" if none)."""
        used = self._used().items()
        return " and ".join(
            f"an edge {k} of {np.exp(v):.2g}" for k, (v, _) in used if v is not None
        )


def _clipped(log_value, bounds):
    """``log_value`` clipped to ``bounds``; None where unknown (None or NaN)."""
    if log_value is None or np.isnan(log_value):
        return None
    return float(np.clip(log_value, *np.log(bounds)))


def log_scale(law, frame):
    """``log`` of each row's scale (the product of ``law.scale_inputs``); None if it has none."""
    if not law.scale_inputs:
        return None
    return sum(np.log(np.asarray(frame[k], float)) for k in law.scale_inputs)


def log_reach(law, frame, fitted):
    """``log`` of each row's reach beyond the fitted rows: 0 inside, NaN for a law without scale.

    Parameters
    ----------
    law : ScalingLaw
    frame, fitted : pandas.DataFrame
        Validated inputs of the rows predicted and of the rows fitted.

    Returns
    -------
    ndarray, shape (rows,)
    """
    rows = log_scale(law, frame)
    if rows is None:
        return np.full(len(frame), np.nan)
    return np.maximum(rows - np.max(log_scale(law, fitted)), 0.0)


def sloped(law):
    """Whether a law's fits have an edge slope (:class:`Edge`): laws of one scale input."""
    return len(law.scale_inputs) == 1


def persists(law):
    """Whether a nested backtest's drift slope carries over to the extrapolation (:class:`DriftPersistence`).

    True for laws of two or more scale inputs (sweeps over ``N`` and ``D``), where the
    benchmark shows it; a 1-D learning curve's nested slope says nothing of its drift beyond.
    """
    return len(law.scale_inputs) > 1


class _Draws:
    """Posterior draws of a few scalars, saved as JSON: the shared part of the error models.

    Subclasses are frozen dataclasses naming their draws in ``KEYS`` (the calibrated ones
    in ``PARAMETERS``, those that must not be negative in ``NONNEGATIVE``) and a ``source``
    label.
    """

    PARAMETERS = ()
    KEYS = ()
    NONNEGATIVE = ()

    def __post_init__(self):
        arrays = {k: np.asarray(getattr(self, k), float) for k in self.KEYS}
        shape = arrays[self.KEYS[0]].shape
        if len(shape) != 1 or not shape[0] or any(a.shape != shape for a in arrays.values()):
            raise SpecError(
                f"a {type(self).__name__} needs equal-length 1-D draws of {', '.join(self.KEYS)}"
            )
        if not all(np.isfinite(a).all() for a in arrays.values()) or any(
            (arrays[k] < 0).any() for k in self.NONNEGATIVE
        ):
            raise SpecError(
                f"a {type(self).__name__} needs finite draws, and "
                f"{' and '.join(self.NONNEGATIVE)} >= 0"
            )
        for k, a in arrays.items():
            object.__setattr__(self, k, a)

    def _taus(self, n, rng, edge=None):
        """``n`` draws of a new sweep's drift scale ``tau``, with the posterior draw each used.

        ``edge``: the sweep's :class:`Edge`, where the model has those covariates
        (:class:`ExtrapolationError`); None takes the reference values.
        """
        pick = rng.integers(len(self.mu), size=n)
        log_tau = self.mu[pick] + self.sigma[pick] * rng.standard_normal(n)
        return np.exp(log_tau + self._shift(pick, edge or Edge())), pick

    def _shift(self, pick, edge):
        """What the edge covariates add to ``log tau`` (nothing, unless a model says otherwise)."""
        return 0.0

    def sd_quantiles(self, reach, probs=(0.05, 0.5, 0.95), n=20000, seed=0, edge=None):
        """Quantiles of a new sweep's (residual) error sd on ``log y`` at ``reach``: ``sqrt(tau^2 + omega^2) log r``.

        ``edge`` as in :meth:`_taus`.
        """
        tau, pick = self._taus(n, np.random.default_rng(seed), edge)
        return np.quantile(np.hypot(tau, self.omega[pick]) * np.log(reach), probs)

    def thinned(self, step):
        """Every ``step``-th draw (the shipped files keep a quarter of the calibration's)."""
        return type(self)(**{k: getattr(self, k)[::step] for k in self.KEYS}, source=self.source)

    def to_dict(self):
        """JSON-ready form (what :meth:`from_dict` and the shipped files hold)."""
        return {
            "source": self.source,
            **{k: np.round(getattr(self, k), 6).tolist() for k in self.KEYS},
        }

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in cls.KEYS if k in d}, source=d.get("source", ""))

    def save(self, path):
        """Write :meth:`to_dict` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()) + "\n")

    @classmethod
    def read(cls, path):
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class ExtrapolationError(_Draws):
    """Posterior draws of the error model: ``log tau ~ Normal(mu + gamma x + psi g, sigma)`` and ``omega``.

    ``(x, g)`` are a sweep's :class:`Edge` covariates: ``log`` of its predictive spread of
    ``log y`` at the edge of its data over :data:`REFERENCE_SPREAD`, and of its law's edge
    slope over :data:`REFERENCE_SLOPE` (1-D laws; 0 over ``N`` and ``D``).

    Attributes
    ----------
    mu, sigma : ndarray, shape (draws,)
        Mean and sd of ``log tau`` (a sweep's drift scale per e-fold of reach) over sweeps
        whose edge spread is the reference one.
    omega : ndarray, shape (draws,)
        Scatter of single runs around the drift, per e-fold of reach.
    source : str
        Where the draws come from (the shipped calibration, or a user's backtests).
    slope : ndarray, shape (draws,), optional
        Centre of the drift slope ``b`` (zeros unless a sweep's own backtest moved it,
        :meth:`DriftPersistence.given`).
    gamma : ndarray, shape (draws,), optional
        How ``log tau`` grows with ``log`` of the edge spread (zeros: it does not).
    psi : ndarray, shape (draws,), optional
        How ``log tau`` grows with ``log`` of the edge slope (zeros: it does not).
    """

    mu: np.ndarray
    sigma: np.ndarray
    omega: np.ndarray
    source: str = ""
    slope: np.ndarray = None
    gamma: np.ndarray = None
    psi: np.ndarray = None

    PARAMETERS = ("mu", "sigma", "omega", "gamma", "psi")
    KEYS = (*PARAMETERS, "slope")
    NONNEGATIVE = ("sigma", "omega")
    OPTIONAL = ("gamma", "psi", "slope")
    """Keys that default to zeros (and are left out of the JSON where they are)."""

    def __post_init__(self):
        for k in self.OPTIONAL:
            if getattr(self, k) is None:
                object.__setattr__(self, k, np.zeros(np.shape(self.mu)))
        super().__post_init__()

    def _shift(self, pick, edge):
        x, g = edge.covariates()
        return self.gamma[pick] * x + self.psi[pick] * g

    def draw(self, n, rng, edge=None):
        """``n`` draws of a new sweep's drift slope ``b`` and run scatter ``omega``.

        ``edge``: the sweep's :class:`Edge` (:attr:`bayescale.predictive.Evaluator.edge`);
        None takes the reference values.
        """
        tau, pick = self._taus(n, rng, edge)
        return self.slope[pick] + tau * rng.standard_normal(n), self.omega[pick]

    def describe(self, edge):
        """:attr:`source`, and the edge covariates the drift scale was set at where they matter."""
        edge = edge or Edge()
        used = Edge(
            edge.log_spread if self.gamma.any() else None,
            edge.log_slope if self.psi.any() else None,
        )
        at = used.describe()
        return f"{self.source}, at {at}" if at else self.source

    def given(self, log_reach, error, spread, n=4000, random_seed=0, edge=None):
        """One sweep's error model given its own backtest: ``tau`` drawn from the population, weighed by the backtest.

        A new sweep's drift scale ``tau`` is a draw from ``log tau ~ Normal(mu, sigma)``
        (shifted by its :class:`Edge` covariates, ``edge``);
        the errors of a backtest nested inside the sweep's runs (fitted below a cut,
        predicted up to the largest run) say whether this sweep drifts little or much.
        The population draws are weighed by the backtest's likelihood under the model
        (:func:`record_log_likelihood`, the errors taken about ``slope``) and resampled: a
        sweep whose nested errors are small gets a smaller ``tau``, one whose errors are
        large a larger one, and a backtest that says little leaves the population's spread.

        Parameters
        ----------
        log_reach, error, spread : ndarray, shape (rows,)
            The backtest's held-out rows: ``log`` reach beyond the nested fit, ``log y``
            minus the nested fit's predictive median, and its predictive spread (half the
            central 68% interval), as :func:`bayescale.evaluation.calibration.record_table`
            gives them. Rows at reach 1 carry no evidence and are ignored.
        n : int
            Draws of the result.
        random_seed : int
        edge : Edge, optional
            As in :meth:`draw`: the sweep's own, which sets its prior drift scale.

        Returns
        -------
        ExtrapolationError
            With ``sigma = 0``: ``mu`` holds draws of this sweep's ``log tau``.
        """
        u, e, s = (np.asarray(a, float) for a in (log_reach, error, spread))
        keep = u > 0
        rng = np.random.default_rng(random_seed)
        tau, pick = self._taus(n, rng, edge)
        omega, slope = self.omega[pick], self.slope[pick]
        u, e, s = u[keep], e[keep], s[keep]
        v = s**2 + omega[:, None] ** 2 * u**2
        e = e - slope[:, None] * u
        sums = [np.sum(x / v, axis=1) for x in (u * u, u * e, e * e)]
        log_w = record_log_likelihood(NUMPY, tau**2, *sums, np.log(v).sum(axis=1))
        w = np.exp(log_w - log_w.max())
        chosen = rng.choice(n, n, p=w / w.sum())
        label = f"{self.source}, given a backtest of {int(keep.sum())} rows"
        return ExtrapolationError(
            np.log(tau[chosen]), np.zeros(n), omega[chosen], label, slope=slope[chosen]
        )

    def to_dict(self):
        """JSON-ready form; :data:`OPTIONAL` keys only where they are not all zeros."""
        d = super().to_dict()
        for k in self.OPTIONAL:
            if not getattr(self, k).any():
                del d[k]
        return d


@dataclass(frozen=True)
class DriftPersistence(_Draws):
    """Posterior draws of how much of a nested backtest's drift carries over beyond the data.

    ``b = k b_n + r``: the drift slope beyond a sweep's runs is ``k`` times the slope
    ``b_n`` of a backtest nested inside them, plus a residual ``r ~ Normal(0, tau)`` with
    ``log tau ~ Normal(mu, sigma)`` over sweeps; ``omega`` as in
    :class:`ExtrapolationError`. ``b_n`` is only estimated (``b_hat`` with standard error
    ``se``, :func:`bayescale.evaluation.calibration.nested_slope`), and nested slopes
    spread over sweeps as ``Normal(0, nu)``, so an uncertain estimate is shrunk:
    ``b_n | b_hat ~ Normal(lam b_hat, lam se^2)``, ``lam = nu^2 / (nu^2 + se^2)``.
    Fitted by :func:`bayescale.evaluation.calibration.calibrate` to records that carry
    their nested backtest's slope.

    Attributes
    ----------
    k : ndarray, shape (draws,)
        Share of the nested slope that persists (0: none, 1: all of it).
    nu : ndarray, shape (draws,)
        Spread of nested slopes over sweeps.
    mu, sigma, omega : ndarray, shape (draws,)
        Of the residual drift, as in :class:`ExtrapolationError`.
    source : str
    """

    k: np.ndarray
    nu: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    omega: np.ndarray
    source: str = ""

    PARAMETERS = KEYS = ("k", "nu", "mu", "sigma", "omega")
    NONNEGATIVE = ("nu", "sigma", "omega")

    def given(self, slope, se, n=4000, random_seed=0):
        """One sweep's :class:`ExtrapolationError` from its nested backtest's slope.

        Per draw, the drift slope is centred on ``k lam b_hat`` with scale
        ``sqrt(tau^2 + k^2 lam se^2)``: a new sweep's residual drift and what is left
        unknown of its nested slope.

        Parameters
        ----------
        slope, se : float
            ``b_hat`` and its standard error
            (:func:`bayescale.evaluation.calibration.nested_slope`).
        n, random_seed : int

        Returns
        -------
        ExtrapolationError
            With ``sigma = 0``.
        """
        if not (np.isfinite(slope) and np.isfinite(se) and se >= 0):
            raise SpecError(f"a nested slope needs finite values and se >= 0, got {slope}, {se}")
        rng = np.random.default_rng(random_seed)
        tau, pick = self._taus(n, rng)
        centre, variance = carried_slope(self.k[pick], self.nu[pick], slope, se)
        label = f"{self.source}, given a backtest of slope {slope:+.4f} (se {se:.4f})"
        return ExtrapolationError(
            np.log(np.sqrt(tau**2 + variance)), np.zeros(n), self.omega[pick], label, slope=centre
        )


def carried_slope(k, nu, slope, se):
    """Centre and extra variance of the drift slope a nested slope ``b_hat`` (``se``) implies.

    ``(k lam b_hat, k^2 lam se^2)`` with ``lam = nu^2 / (nu^2 + se^2)``
    (:class:`DriftPersistence`). Arithmetic only, so numpy draws
    (:meth:`DriftPersistence.given`) and pytensor variables (the calibration's PyMC model)
    both broadcast through it.
    """
    lam = nu**2 / (nu**2 + se**2)
    return k * lam * slope, k**2 * lam * se**2


def error(b, omega, log_reach, rng):
    """The error on ``log y``, ``(b + omega z) log r``, for draws ``b, omega`` at rows of ``log r``.

    Shape ``(*b.shape, rows)``; ``z`` is drawn per draw and row from ``rng``.
    """
    z = rng.standard_normal((*b.shape, len(log_reach)))
    return (b[..., None] + omega[..., None] * z) * log_reach


def record_log_likelihood(ns, tau2, a, g, quad, log_det):
    """``log`` density of one backtest's errors with its drift slope integrated out.

    A record's errors ``e`` at ``u = log r`` are ``Normal(0, V + tau^2 u u')`` with
    ``V = diag(v)``, ``v = s^2 + omega^2 u^2`` (``s`` the predictive spread). A rank-one
    update gives the density from the record's sums ``a = sum(u^2 / v)``,
    ``g = sum(u e / v)``, ``quad = sum(e^2 / v)`` and ``log_det = sum(log v)``. ``ns`` is
    :data:`bayescale.ops.NUMPY` (:meth:`ExtrapolationError.given`) or
    :data:`bayescale.ops.PYTENSOR` (the calibration's PyMC model); arguments broadcast.
    """
    return -0.5 * (quad - tau2 * g**2 / (1 + tau2 * a) + log_det + ns.log1p(tau2 * a))


@cache
def default():
    """The shipped calibration (:data:`SHIPPED`), read once."""
    return ExtrapolationError.read(SHIPPED)


@cache
def persistence():
    """The shipped :class:`DriftPersistence` (:data:`SHIPPED_PERSISTENCE`), read once."""
    return DriftPersistence.read(SHIPPED_PERSISTENCE)


@dataclass(frozen=True)
class Deferred:
    """An extrapolation error computed on its first draw: a fit's own backtest (one refit).

    What ``extrapolation="calibrated"`` gives an evaluator for a law over ``N`` and ``D``,
    so that predictions inside the data, and code that only asks whether there is
    extrapolation error, never pay for the refit. ``compute`` returns the
    :class:`ExtrapolationError` (and caches it: :attr:`bayescale.ScalingFit.own_extrapolation`).
    """

    compute: object

    def draw(self, n, rng, edge=None):
        """:meth:`ExtrapolationError.draw` of the computed error."""
        return self.compute().draw(n, rng, edge)

    def describe(self, edge):
        """:meth:`ExtrapolationError.describe` of the computed error."""
        return self.compute().describe(edge)


def resolve(extrapolation, own=None):
    """The extrapolation error an ``extrapolation=`` argument names, or None.

    ``"calibrated"`` (the default everywhere): ``own``, a fit's own backtest carried over
    (a :class:`Deferred`, for laws over ``N`` and ``D``), or the shipped population where
    there is none; ``"population"``: the shipped population (:func:`default`); ``"none"``:
    no extrapolation error; an :class:`ExtrapolationError` (e.g. from
    :func:`bayescale.recalibrate` or :func:`bayescale.sweep_error`) is used as given.
    """
    if isinstance(extrapolation, ExtrapolationError):
        return extrapolation
    if isinstance(extrapolation, str) and extrapolation in CHOICES:
        return {
            "calibrated": own or default(),
            "population": default(),
            "none": None,
        }[extrapolation]
    if isinstance(extrapolation, DriftPersistence):  # its repr lists every posterior draw
        raise SpecError(
            "extrapolation= takes an ExtrapolationError; a DriftPersistence (from "
            "recalibrate(..., persistence=True)) goes to bayescale.sweep_error(fit, "
            "extrapolation=...), which returns one"
        )
    raise SpecError(
        f"extrapolation must be one of {', '.join(map(repr, CHOICES))} or an "
        f"ExtrapolationError, got {extrapolation!r}"
    )
