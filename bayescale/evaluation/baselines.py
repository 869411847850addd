"""The field's standard fit, beside the Bayesian one: Huber loss + L-BFGS + bootstrap.

Hoffmann et al. (2022, Approach 3) and Besiroglu et al. (2024) minimise the Huber loss
(``delta = 1e-3``) of log residuals, *summed* over runs, with L-BFGS from a grid of starting
points, and take intervals from bootstrap refits. The sum matters: minimising the mean with
default tolerances stops early (Besiroglu et al.'s finding, reproduced in our notes).

The fit works for any law in the catalogue: parameters are optimised on an unconstrained
scale chosen from each prior's support (log for positive, logit for the unit interval), and
the start grid is built from prior quantiles, so no law needs hand-written starting values.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from bayescale import data as data_mod
from bayescale.arguments import seeded
from bayescale.extrapolation import NESTED_MIN_ROWS
from bayescale.laws import get_law
from bayescale.ops import NUMPY, jax_namespace
from bayescale.predictive import Evaluator, check_kind, quantiles

GRID_QUANTILES = (0.1, 0.35, 0.65, 0.9)
MIN_GROUP_ROWS = NESTED_MIN_ROWS // 2
"""Fewest runs a group needs for its own baseline fit (half the fewest the extrapolation
benchmark's cuts fit); a group with fewer, or one not fitted at all, gets the fit of every
run, the only curve the field's method has for it."""


@dataclass(frozen=True)
class BaselineFit:
    """Point estimate and bootstrap draws of the Huber/L-BFGS fit.

    It follows the :class:`~bayescale.predictive.Predictive` protocol, so backtests score
    it like a posterior.

    Attributes
    ----------
    law : ScalingLaw
    point : dict of str to float
        Free and derived parameters at the optimum.
    objective : float
        Summed Huber loss at the optimum.
    bootstrap : pandas.DataFrame
        One row per bootstrap refit (free and derived parameters); empty if none.
    log_ref : dict
    y : str
        Response column.
    inputs : dict
        Law input -> column, as for :func:`bayescale.fit`.
    flops_per_token : float
    delta : float
        Huber threshold.
    n_starts, n_bootstrap : int
        L-BFGS starting points and bootstrap refits.
    """

    law: object
    point: dict
    objective: float
    bootstrap: pd.DataFrame
    log_ref: dict
    y: str
    inputs: dict
    flops_per_token: float
    delta: float
    n_starts: int
    n_bootstrap: int

    converged = None
    """An optimiser, not a sampler: there is no convergence check to pass."""

    def summary(self, ci=0.9):
        """Point estimate with bootstrap percentile intervals and standard errors."""
        rows = {}
        for name, value in self.point.items():
            row = {"estimate": value}
            if len(self.bootstrap):
                draws = self.bootstrap[name].to_numpy()
                _, row["lower"], row["upper"] = quantiles(draws, ci)
                row["se"] = float(np.std(draws, ddof=1))
            rows[name] = row
        return pd.DataFrame(rows).T

    def predict(self, new_data, ci=0.9):
        """Point prediction (``median`` column) and bootstrap percentile interval."""
        frame, draws = self.predictive_draws(new_data)
        out = frame.assign(median=self._point(frame))
        if draws is not None:
            _, out["lower"], out["upper"] = quantiles(draws, ci)
        return out

    def predictive_draws(self, new_data, kind="observed", random_seed=None):
        """Bootstrap draws of the law at new inputs: ``(frame, draws)``, draws (refits, rows).

        This is the field's whole notion of predictive uncertainty: the spread of refitted
        curves, with no observation noise, so ``kind`` changes nothing (it is checked and
        accepted to follow the :class:`~bayescale.predictive.Predictive` protocol), and
        nothing is random. ``draws`` is ``None`` without bootstrap refits.
        """
        check_kind(kind)
        frame = self._frame(new_data)
        if not len(self.bootstrap):
            return frame, None
        boot = {k: self.bootstrap[k].to_numpy() for k in self.law.parameters}
        return frame, np.exp(Evaluator(self.law, self.log_ref, boot).log_mean(frame))

    def log_predictive_density(self, data):
        """Log density of held-out ``log y`` under a normal fitted to the bootstrap draws.

        The bootstrap gives a cloud of curves, not a density; a normal with the cloud's
        mean and sd is the most charitable density it implies. NaN without bootstrap refits.
        """
        df = data_mod.read_table(data)
        frame, draws = self.predictive_draws(df)
        log_y = np.log(data_mod.numeric_column(df, self.y, "held-out response"))  # frame's rows
        if draws is None:
            return np.full(len(frame), np.nan)
        log_draws = np.log(draws)
        return stats.norm.logpdf(
            log_y, np.mean(log_draws, axis=0), np.std(log_draws, axis=0, ddof=1)
        )

    def _frame(self, new_data):
        return data_mod.prepare(
            new_data, self.law, None, inputs=self.inputs, flops_per_token=self.flops_per_token
        ).frame

    def _point(self, frame):
        point = {k: np.asarray(self.point[k]) for k in self.law.parameters}
        return np.exp(Evaluator(self.law, self.log_ref, point).log_mean(frame)[0])


@dataclass(frozen=True)
class GroupedBaselineFit:
    """The field's fit of a sweep of several groups: each group fitted on its own.

    The field has no hierarchical model: each corpus (family, recipe) gets its own Huber
    fit. Pooling every group into one curve would score a baseline nobody uses. Rows of a
    group without its own fit are predicted by ``pooled``, the fit of every run.

    Attributes
    ----------
    group : str
        Group column.
    fits : dict
        Group label -> :class:`BaselineFit` of that group's runs.
    pooled : BaselineFit
        Fit of every run, for groups with fewer than :data:`MIN_GROUP_ROWS` runs and for
        labels the fit has not seen.
    """

    group: str
    fits: dict
    pooled: BaselineFit

    converged = None
    """An optimiser, not a sampler: there is no convergence check to pass."""

    def predictive_draws(self, new_data, kind="observed", random_seed=None):
        """Bootstrap draws, each row's from its group's fit (as :meth:`BaselineFit.predictive_draws`)."""
        df = data_mod.read_table(new_data)
        frames, draws = [], None
        for rows, fit in self._by_fit(df):
            frame, part = fit.predictive_draws(df.iloc[rows], kind, random_seed)
            frames.append(frame.set_axis(rows))
            if part is not None:
                draws = np.empty((len(part), len(df))) if draws is None else draws
                draws[:, rows] = part
        frame = pd.concat(frames).sort_index().set_axis(df.index)
        return frame, draws

    def log_predictive_density(self, data):
        """Each row's density under its group's fit (as :meth:`BaselineFit.log_predictive_density`)."""
        df = data_mod.read_table(data)
        out = np.empty(len(df))
        for rows, fit in self._by_fit(df):
            out[rows] = fit.log_predictive_density(df.iloc[rows])
        return out

    def _by_fit(self, df):
        """``(row positions, fit)``: each group's rows with its own fit, or else ``pooled``."""
        labels = data_mod.group_labels(df, self.group).to_numpy()
        for label in dict.fromkeys(labels):
            yield np.flatnonzero(labels == label), self.fits.get(label, self.pooled)


class _Objective:
    """Weighted sum of Huber losses of log residuals, with its exact gradient (JAX).

    Bootstrap refits reuse the one compiled function: a resample is a vector of
    multinomial counts used as weights, so every refit has the same shapes.
    """

    def __init__(self, law, priors, z, log_y, delta):
        import jax
        import jax.numpy as jnp

        m = jax_namespace()
        self.law, self.priors = law, priors

        def loss(theta, weights):
            p = {k: priors[k].to_constrained(m, theta[i]) for i, k in enumerate(law.parameters)}
            r = law.log_mean(m, p, z) - log_y
            a = jnp.abs(r)
            return jnp.sum(weights * jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)))

        self._value_and_grad = jax.jit(jax.value_and_grad(loss))
        self.ones = np.ones(len(log_y))

    def params(self, theta):
        """Constrained parameters (numpy) at the unconstrained vector ``theta``."""
        return {
            k: self.priors[k].to_constrained(NUMPY, t)
            for k, t in zip(self.law.parameters, theta, strict=True)
        }

    def _fun(self, theta, weights):
        value, grad = self._value_and_grad(theta, weights)
        value, grad = float(value), np.asarray(grad, dtype=float)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(grad)
        return value, grad

    def minimise(self, theta0, weights=None, tight=False):
        """L-BFGS-B from ``theta0``; ``tight`` for the final polish (Besiroglu et al.)."""
        options = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12} if tight else {}
        w = self.ones if weights is None else weights
        return optimize.minimize(
            self._fun,
            np.asarray(theta0, float),
            args=(w,),
            jac=True,
            method="L-BFGS-B",
            options=options,
        )


def start_grid(law, priors, quantiles=GRID_QUANTILES):
    """Cartesian grid of unconstrained starts at prior quantiles of each parameter."""
    axes = [
        priors[k].to_unconstrained(NUMPY, priors[k].scipy().ppf(np.asarray(quantiles)))
        for k in law.parameters
    ]
    return np.array(list(itertools.product(*axes)))


def huber_fit(
    data,
    law="chinchilla",
    y="loss",
    *,
    inputs=None,
    group=None,
    flops_per_token=6.0,
    delta=1e-3,
    grid=None,
    n_bootstrap=0,
    random_seed=0,
):
    """Huber-loss fit with L-BFGS from a grid of starts, plus bootstrap refits.

    Parameters
    ----------
    data, law, y, inputs, flops_per_token
        As in :func:`bayescale.fit`.
    group : str, optional
        Column of group labels: each group with :data:`MIN_GROUP_ROWS` runs or more is
        fitted on its own, as the field fits each corpus (:class:`GroupedBaselineFit`).
    delta : float
        Huber threshold on log residuals (1e-3 as in Hoffmann et al. and Besiroglu et al.).
    grid : array_like, optional
        Starting points on the unconstrained scale, one row per start; default
        :func:`start_grid` (4 prior quantiles per parameter).
    n_bootstrap : int
        Bootstrap refits (rows resampled with replacement, each refit started at the
        full-data optimum). Besiroglu et al. used 4,000.
    random_seed : int

    Returns
    -------
    BaselineFit, or GroupedBaselineFit with ``group``
    """
    options = {
        "law": law,
        "y": y,
        "inputs": inputs,
        "flops_per_token": flops_per_token,
        "delta": delta,
        "grid": grid,
        "n_bootstrap": n_bootstrap,
        "random_seed": random_seed,
    }
    if group is None:
        return _huber_fit(data, **options)
    df = data_mod.read_table(data)
    labels = data_mod.group_labels(df, group).to_numpy()
    by_group = {label: rows for label, rows in df.groupby(labels, sort=True)}
    fits = {
        label: _huber_fit(rows, **options)
        for label, rows in by_group.items()
        if len(rows) >= MIN_GROUP_ROWS
    }
    return GroupedBaselineFit(group=group, fits=fits, pooled=_huber_fit(df, **options))


def _huber_fit(data, law, y, inputs, flops_per_token, delta, grid, n_bootstrap, random_seed):
    """:func:`huber_fit` of one set of runs."""
    law = get_law(law)
    fitdata = data_mod.prepare(
        data, law, y, inputs=inputs, flops_per_token=flops_per_token, n_params=len(law.priors)
    )
    log_ref = law.log_reference(fitdata.frame)
    z = law.z(fitdata.frame, log_ref)
    objective = _Objective(law, law.priors, z, np.log(fitdata.y_values()), delta)
    starts = start_grid(law, law.priors) if grid is None else np.atleast_2d(grid)
    best = min((objective.minimise(t) for t in starts), key=lambda r: r.fun)
    best = objective.minimise(best.x, tight=True)

    def natural(theta):
        p = objective.params(theta)
        return {**p, **{k: float(v) for k, v in law.derived(NUMPY, p, log_ref).items()}}

    rng = seeded(random_seed)
    n = len(fitdata.frame)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(float)
    boots = [natural(objective.minimise(best.x, weights=w, tight=True).x) for w in counts]
    return BaselineFit(
        law=law,
        point={k: float(v) for k, v in natural(best.x).items()},
        objective=float(best.fun),
        bootstrap=pd.DataFrame(boots),
        log_ref=log_ref,
        y=y,
        inputs=dict(inputs or {}),
        flops_per_token=flops_per_token,
        delta=delta,
        n_starts=len(starts),
        n_bootstrap=n_bootstrap,
    )
