"""Evaluate a fitted model in numpy over parameter draws: the one place that does it.

Fitting (the pointwise log-likelihood stored for LOO), :class:`~bayescale.ScalingFit`'s
predictions and predictive densities, two-stage prediction, simulation-based calibration
and the Huber baseline's bootstrap curves all ask the same questions of a law, a
likelihood and draws of their parameters: each row's parameters (its group's, or a new
group's from the population), the law's log mean there, the noise around it, draws of new
observations and the density of observed ones. :class:`Evaluator` answers them for draws
of any leading shape: ``(draws,)`` pooled over chains, ``(chain, draw)`` as sampled,
``(refits,)`` of a bootstrap, or ``()`` for one true parameter set.

:class:`Predictive` is the protocol every fitted method follows (a fit, an average of
fits, the baseline), so backtests, averages and decisions call them alike.
"""

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np
from scipy import special

from bayescale import pooling as pooling_mod
from bayescale.data import FitData, row_labels
from bayescale.errors import SpecError
from bayescale.extrapolation import Edge, error, log_reach, log_scale, sloped
from bayescale.likelihoods import in_quadrature
from bayescale.ops import NUMPY

ROW_CHUNK = 2048
"""Rows evaluated at once, so dense prediction grids never hold every draw at once."""

KINDS = ("mean", "observed")


class Predictive(Protocol):
    """What any fitted method offers to backtests, averages and decisions.

    Attributes
    ----------
    converged : bool or None
        Whether every sampler behind it passed its convergence checks (``None`` for an
        optimiser, which has none).
    """

    converged: bool | None

    def predictive_draws(self, new_data, kind="observed", random_seed=None, **options):
        """``(frame, draws)``: validated inputs and draws of shape (draws, rows).

        Bayesian methods take ``extrapolation=`` (:mod:`bayescale.extrapolation`).
        """

    def log_predictive_density(self, data, **options):
        """Log predictive density of held-out rows' response, per row."""


def quantiles(draws, ci, axis=0):
    """Median and central ``ci`` interval along ``axis``: every interval bayescale gives.

    Equal-tailed, as the posterior summary's intervals are. NaN draws (where a law is
    undefined) are left out. Infinite draws (a value beyond float64, e.g. a law far outside
    its fitted range) count as the largest float: interpolating between two infinities
    would give NaN. A quantile that lands on them is infinite again.
    """
    tail = (1.0 - ci) / 2.0
    big = np.finfo(float).max
    draws = np.clip(draws, -big, big)
    with warnings.catch_warnings():  # all-NaN slices stay NaN, reported by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(draws, [tail, 0.5, 1.0 - tail], axis=axis)
    lo, med, hi = np.where(np.abs(q) == big, np.copysign(np.inf, q), q)
    return med, lo, hi


def median_and_spread(log_draws, axis=0):
    """Median and predictive spread (half the central 68% interval) of draws of ``log y``.

    The spread is what the extrapolation-error model measures every held-out row's error
    against (:func:`bayescale.evaluation.calibration.summarise_draws`) and a sweep's
    drift scale grows with (:attr:`Evaluator.edge`): one sd, for a normal.
    """
    med, lo, hi = quantiles(log_draws, 0.6827, axis)
    return med, (hi - lo) / 2


def fitted_links(law, likelihood, fitdata, log_ref, labels=()):
    """:meth:`~bayescale.likelihoods.Likelihood.links` of the fitted rows (curves = groups)."""
    codes = fitdata.codes(labels) if fitdata.group else None
    return likelihood.links(law, fitdata.frame, log_ref, codes)


def check_kind(kind):
    """``kind`` if it is one of :data:`KINDS`, else a :class:`SpecError`."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise SpecError(f"kind must be 'mean' or 'observed', got {kind!r}")
    return kind


@dataclass(frozen=True)
class Evaluator:
    """A law and likelihood with draws of their parameters, evaluated at rows of inputs.

    Attributes
    ----------
    law : ScalingLaw
    log_ref : dict of str to float
        Log reference scale of each input.
    draws : dict of str to ndarray
        Draws by parameter name, with the same leading shape; a grouped parameter has one
        more axis, the group. Pooled parameters need their ``_mu`` and ``_tau`` to predict
        a new group.
    likelihood : Likelihood, optional
        Needed for observations and densities (not for the law's mean).
    pooling : dict of str to str, optional
        Per law parameter; default every parameter shared.
    priors : dict of str to Prior
        Priors of pooled parameters: their transforms map a new group's draws.
    group : str, optional
        Group column of the rows evaluated; ``labels`` are the fitted groups in order.
    labels : tuple of str
    fitted : FitData, optional
        The fitted rows: what dependent noise at new rows is conditioned on, the rows
        of :meth:`fitted_log_likelihood`, and what a new row's reach is measured from.
    extrapolation : ExtrapolationError, optional
        Drift of the law's shape added to ``log`` of the mean at rows beyond the fitted
        range (:mod:`bayescale.extrapolation`); None adds nothing.
    """

    law: object
    log_ref: dict
    draws: dict
    likelihood: object = None
    pooling: dict | None = None
    priors: dict = field(default_factory=dict)
    group: str | None = None
    labels: tuple = ()
    fitted: FitData | None = None
    extrapolation: object = None

    @property
    def _pooling(self):
        return self.pooling or dict.fromkeys(self.law.parameters, "shared")

    def _codes(self, frame):
        return FitData(frame, self.law.inputs, "", self.group).codes(self.labels)

    def parameters(self, frame, rng=None):
        """Law parameter draws for each row of ``frame``: arrays of shape (*draws, rows).

        Rows of a group seen in the fit use its draws; rows of a new group use the
        population distribution (one new-group draw per parameter draw and label, from
        ``rng``).
        """
        names = self.law.parameters
        if not self.group:
            return {k: pooling_mod.per_row(self.draws[k], "shared", None) for k in names}
        codes = self._codes(frame)
        labels = frame[self.group]
        new_labels = sorted(set(labels[codes < 0]))
        where = f" at {row_labels(frame.index, codes < 0)}"
        modes = {k: self._pooling[k] for k in names}
        pooling_mod.refuse_new_groups(new_labels, self.labels, modes, where)
        out = {}
        for k in names:
            mode = modes[k]
            rows = pooling_mod.per_row(self.draws[k], mode, np.maximum(codes, 0))
            for label in new_labels:
                new = pooling_mod.new_group_draws(k, self.priors.get(k), mode, self.draws, rng)
                rows = np.where((labels == label).to_numpy(), new[..., None], rows)
            lead = self.draws[k].shape[: -1 if mode != "shared" else None]
            out[k] = np.broadcast_to(rows, (*lead, len(frame)))
        return out

    def log_mean(self, frame, rng=None):
        """``log`` of the law's mean at validated inputs ``frame``: shape (*draws, rows)."""
        return self.law.log_mean(NUMPY, self.parameters(frame, rng), self._z(frame))

    def _z(self, frame):
        return {k: v[None, :] for k, v in self.law.z(frame, self.log_ref).items()}

    def noise_parameters(self, index=slice(None)):
        """The likelihood's parameter draws (``draws[index]``), broadcast against rows."""
        return {k: self.draws[k][index, None] for k in self.likelihood.priors}

    @cached_property
    def fitted_log_mean(self):
        """``log`` of the law's mean at the fitted rows (no new groups, so no rng)."""
        return self.log_mean(self.fitted.frame)

    def noise_context(self, frame):
        """Dependent noise at new rows, conditioned on the fitted rows; None if independent.

        For ``ou_normal`` each new row continues its curve (its group's, or the single
        curve) from the residual of the fitted point just before it. Each row gets its
        marginal: draws at two new rows are not correlated with each other, and a row
        between two fitted points ignores the later one (wider than the exact bridge).
        """
        if not self.likelihood.dependent:
            return None
        codes = new = None
        if self.group:
            codes = self.fitted.codes(self.labels)
            new = self._codes(frame)
        links = self.likelihood.links(
            self.law, self.fitted.frame, self.log_ref, codes, new=(frame, new)
        )
        observed = self.likelihood.observe(self.fitted.y_values())
        return self.likelihood.context(observed, self.fitted_log_mean, links)

    def predictive_chunks(self, frame, kind, rng):
        """``(chunk, draws)`` per :data:`ROW_CHUNK` rows of ``frame``, in response units.

        ``kind="mean"``: the law's value; ``"observed"``: a new observation, with the
        likelihood's noise, the noise of noisy inputs and, for dependent noise, the fitted
        curve's residuals (:meth:`noise_context`).
        """
        check_kind(kind)
        lik = self.noise_parameters() if kind == "observed" else None
        slopes = None
        drift_rng = rng.spawn(1)[0]  # rng's own stream, hence rows inside the data, unchanged
        beyond = self.beyond(frame)
        for start in range(0, len(frame), ROW_CHUNK):
            chunk = frame.iloc[start : start + ROW_CHUNK]
            p, z = self.parameters(chunk, rng), self._z(chunk)
            with np.errstate(invalid="ignore"):
                log_mu = self.law.log_mean(NUMPY, p, z)
                if slopes is None and beyond:  # one drift per draw, shared by every chunk
                    slopes = self.drift_slopes(log_mu.shape[:-1], drift_rng)
                log_mu = log_mu + self.drift(slopes, chunk, drift_rng)
                if kind == "observed":
                    noise = self.law.input_log_sd(NUMPY, p, z)
                    context = self.noise_context(chunk)
                    values = self.likelihood.draw(log_mu, lik, rng, known_sd=noise, context=context)
                else:
                    values = np.exp(log_mu)
            yield chunk, values

    @property
    def extrapolates(self):
        """Whether rows beyond the fitted range get extrapolation error.

        Only for laws with scale inputs and responses modelled on the log scale (a loss):
        the error was learnt on ``log loss``, not on accuracies in (0, 1).
        """
        positive = self.likelihood is None or self.likelihood.support == "positive"
        return self.extrapolation is not None and bool(self.law.scale_inputs) and positive

    def beyond(self, frame):
        """Whether any row of ``frame`` gets extrapolation error (reach above 1).

        Only then are drift slopes drawn: a deferred error (a fit's own backtest) is
        never computed for predictions inside the data.
        """
        return self.extrapolates and bool((log_reach(self.law, frame, self.fitted.frame) > 0).any())

    def reach(self, frame):
        """Each row's reach beyond the fitted rows (:func:`bayescale.extrapolation.log_reach`)."""
        return np.exp(log_reach(self.law, frame, self.fitted.frame))

    def drift_slopes(self, shape, rng):
        """``(b, omega)`` of :attr:`extrapolation`, one per draw (``shape``); None if none."""
        if not self.extrapolates:
            return None
        b, omega = self.extrapolation.draw(int(np.prod(shape)), rng, self.edge)
        return b.reshape(shape), omega.reshape(shape)

    @cached_property
    def edge(self):
        """The fit at the edge of its data (:class:`~bayescale.extrapolation.Edge`).

        At the fitted run of largest scale: ``log`` of the predictive spread of ``log y``
        of a new observation (the law's mean's without a likelihood), without
        extrapolation error, and for dependent noise a new curve's (not conditioned on
        the fitted residuals, which would pin it); and, for a law of one scale input,
        ``log`` of how far the median law falls over the next e-fold of that input. The
        covariates a sweep's drift scale grows with (``gamma`` and ``psi`` of
        :class:`~bayescale.extrapolation.ExtrapolationError`). Drawn with a fixed seed, so
        every prediction of one fit uses the same values.
        """
        scale = log_scale(self.law, self.fitted.frame)
        edge = self.fitted.frame.iloc[[int(np.argmax(scale))]]
        rng = np.random.default_rng(0)
        p, z = self.parameters(edge, rng), self._z(edge)
        log_y = self.law.log_mean(NUMPY, p, z)
        log_slope = None
        if sloped(self.law):
            ahead = edge.assign(**{k: edge[k] * np.e for k in self.law.scale_inputs})
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no slope
                ahead_y = self.law.log_mean(NUMPY, p, self._z(ahead))
                log_slope = float(np.log(np.abs(np.nanmedian(log_y) - np.nanmedian(ahead_y))))
        if self.likelihood is not None:
            noise = self.law.input_log_sd(NUMPY, p, z)
            values = self.likelihood.draw(log_y, self.noise_parameters(), rng, known_sd=noise)
            log_y = np.log(values)
        _, spread = median_and_spread(log_y.reshape(-1))
        return Edge(float(np.log(spread)), log_slope)

    def drift(self, slopes, frame, rng):
        """Extrapolation error on ``log`` of the mean at ``frame``'s rows, shape (*draws, rows).

        :func:`bayescale.extrapolation.error` of ``slopes`` (:meth:`drift_slopes`): ``b``
        shared by the rows of one draw, ``z`` drawn per row and draw; 0 when ``slopes``
        is None.
        """
        if slopes is None:
            return 0.0
        return error(*slopes, log_reach(self.law, frame, self.fitted.frame), rng)

    def drifted(self, log_mu, frame, rng):
        """``log_mu`` (draws by rows of ``frame``) plus its extrapolation error, in one batch.

        The error's draws come from a child of ``rng`` (``rng.spawn``), so what ``rng``
        draws next, and hence every row inside the data, is unchanged.
        """
        drift_rng = rng.spawn(1)[0]
        if not self.beyond(frame):
            return log_mu
        slopes = self.drift_slopes(log_mu.shape[:-1], drift_rng)
        return log_mu + self.drift(slopes, frame, drift_rng)

    def log_density(self, frame, y, rng):
        """``log mean_s p(y_i | theta_s)`` per row, over the draws for which the law is defined.

        NaN at rows where the law is undefined for every draw.

        On the likelihood's observed scale (``log y`` for losses): the quantity LOO
        estimates in-sample and backtests score out of sample.
        """
        p, z = self.parameters(frame, rng), self._z(frame)
        with np.errstate(invalid="ignore"):
            log_mu = self.drifted(self.law.log_mean(NUMPY, p, z), frame, rng)
            noise = self.law.input_log_sd(NUMPY, p, z)
            observed = self.likelihood.observe(y)[None, :]
            context = self.noise_context(frame)
            logpdf = self.likelihood.logpdf(
                observed, log_mu, self.noise_parameters(), known_sd=noise, context=context
            )
        defined = np.isfinite(log_mu)  # draws for which the law is undefined are left out
        logpdf = np.where(defined, logpdf, -np.inf)
        count = defined.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = special.logsumexp(logpdf, axis=0) - np.log(count)
        return np.where(count > 0, out, np.nan)  # rows where no draw is defined stay NaN

    def _fitted_terms(self):
        """Parameters, log mean, known sd and links at the fitted rows (unexpanded inputs)."""
        fitted = self.fitted
        codes = fitted.codes(self.labels) if fitted.group else None
        rows = {
            k: pooling_mod.per_row(self.draws[k], self._pooling[k], codes)
            for k in self.law.parameters
        }
        z = self.law.z(fitted.frame, self.log_ref)
        log_mu = self.law.log_mean(NUMPY, rows, z)
        known_sd = in_quadrature(fitted.known_sd(), self.law.input_log_sd(NUMPY, rows, z))
        links = fitted_links(self.law, self.likelihood, fitted, self.log_ref, self.labels)
        return log_mu, known_sd, links

    def fitted_log_likelihood(self, observed=None):
        """Log density of each fitted row given the others (PSIS-LOO's terms), per draw.

        ``observed`` replaces the fitted response (on the observed scale), as SBC scores
        the data it simulated.
        """
        log_mu, known_sd, links = self._fitted_terms()
        if observed is None:
            observed = self.likelihood.observe(self.fitted.y_values())
        lik = {k: np.asarray(self.draws[k])[..., None] for k in self.likelihood.priors}
        return self.likelihood.loo_logpdf(observed, log_mu, lik, known_sd, links=links)

    def simulate(self, rng):
        """One data set at the fitted rows, drawn from the joint density (for SBC).

        Returns the response in its own units; use with draws of shape ``()``.
        """
        log_mu, known_sd, links = self._fitted_terms()
        return self.likelihood.simulate(log_mu, self.draws, rng, known_sd, links=links)
