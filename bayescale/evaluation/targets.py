r"""Targets: the compute (and the model and data) needed to reach a target loss, as a posterior.

The question "how much compute until the loss is 2.0?" inverts the compute-optimal loss
curve ``L*(C)`` of :mod:`bayescale.evaluation.decisions`: per posterior draw, the smallest
budget ``C`` with ``L*(C) <= target``. Along the optimal allocation ``L*`` falls
monotonically to the law's asymptote (for Chinchilla ``L*(C) = E + K (C/k)^{-\alpha\beta/
(\alpha+\beta)}``, so ``C = k (K / (target - E))^{(\alpha+\beta)/(\alpha\beta)}`` in closed
form); draws whose asymptote is at or above the target have no answer at any budget, and
their share, ``p_unreachable``, is part of the answer rather than a hole in it.

With a fixed model size ``N`` the same search runs over tokens: ``C = k N D``, and the
asymptote is the law with unlimited data at that ``N`` (``E + A N^{-\alpha}`` for Chinchilla).

Extrapolation error. Beyond the fitted budgets the calibrated drift of
:mod:`bayescale.extrapolation` multiplies each draw's loss by ``exp(s log r(C))``, with ``r``
the reach and ``s = b + omega z`` one slope per draw
(:func:`~bayescale.evaluation.decisions.drift_per_efold`): at any single budget that is
exactly the error :meth:`~bayescale.ScalingFit.predict` adds. So the equation solved per draw
is ``log L*(C) + s log r(C) = log target``. For ``s <= 0`` the left side still falls
monotonically; for ``s > 0`` it falls, then may rise again once the law flattens (it is
convex in ``log C`` for Chinchilla and Kaplan), so it can cross the target twice or not at
all. The search therefore scans a log-``C`` grid (:data:`SEARCH_STEP` apart, over
:data:`TARGET_SEARCH` around the fitted budgets) for each draw's *first* downward crossing,
the smallest budget that reaches the target, and refines it with a bracketed root finder
(Chandrupatla's, :func:`scipy.optimize.elementwise.find_root`). Draws with no crossing in
the range although their asymptote is below the target (a positive drift outpacing the
law's decline, or a target within a hair of the asymptote) are counted in
``p_out_of_range``. Which draws are unreachable is decided by the law alone: the drift is
an error of the law's shape at finite reach, not evidence that the asymptote can be beaten.
"""

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import elementwise

from bayescale.arguments import check_probability, is_number
from bayescale.diagnostics import flag
from bayescale.errors import SpecError, UndefinedDrawsWarning
from bayescale.evaluation.decisions import (
    check_budgets,
    drift_per_efold,
    extra_inputs,
    fitted_compute,
    law_log_loss,
    law_parameters,
    log_budget_reach,
    new_groups,
    optimum,
    resolve_flops,
)
from bayescale.evaluation.two_stage import check_fits, pair_draws
from bayescale.predictive import quantiles
from bayescale.result import check_fit

TARGET_SEARCH = (1e-3, 1e9)
"""Budgets searched for a target, as factors on the smallest and the largest fitted budget:
from far below any run (a target the smallest runs already beat) to a billion times the
largest (beyond any budget a plan is made for)."""

SEARCH_STEP = 1.0
"""Nats of ``log C`` between the points of the grid that brackets each draw's answer (a
drifted curve that dips below the target for less than this is missed: counted out of
range)."""

FAR = 1e300
"""``N`` and ``D`` at which a law's value stands for its asymptote: its limit to within
``A * FAR**-alpha`` (``1e-15 A`` for ``alpha = 0.05``). Finite, since ``data_constrained``
needs ``log(D / U)`` to be a number."""

TARGET_SUMMARIES = ("C", "N", "D", "reach")
"""The per-draw quantities :func:`compute_for_target` summarises, in column order."""


def compute_for_target(
    fit,
    loss,
    ci=0.9,
    group=None,
    fixed_N=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """Posterior of the compute needed to reach target losses, and the allocation there.

    Per draw, the smallest budget ``C`` whose loss (at the compute-optimal allocation, or with
    ``N = fixed_N``) reaches the target, extrapolation error included (module docstring).
    A draw that never reaches the target (its asymptote is above it, or it is not reached
    within :data:`TARGET_SEARCH`) needs more than any budget: it counts as infinite ``C``,
    ``D`` (and ``N`` at the optimal allocation) in the median and interval, so an infinite
    upper end says that more than the interval's upper tail of the posterior does not get
    there, rather than an interval over the draws that do passing for a sure answer.
    ``p_unreachable`` and ``p_out_of_range`` say how many draws do not. A draw whose loss is
    at or below the target already at the smallest budget searched needs less than any
    budget searched: it counts as 0 (``p_below_range`` of them), so a lower end of 0 says
    the runs you have, or smaller ones, already get there.

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law with inputs ``N`` and ``D`` (and ``U`` for ``data_constrained``).
    loss : float or array_like
        Target losses, positive and finite.
    ci : float
        Probability of the central interval.
    group : str, optional
        As for :func:`~bayescale.evaluation.decisions.compute_optimal`: a fitted group, or a
        new label for a new group drawn from the population.
    fixed_N : float, optional
        Model size held fixed: the answer is then the tokens ``D`` (and ``C = k N D``) needed.
    flops_per_token : float, optional
        ``k`` in ``C = k N D``; default the fit's.
    unique_tokens : float, optional
        ``U`` for laws with a unique-token input.
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        The drift added beyond the fitted budgets (module docstring); ``"none"``: the law alone.

    Returns
    -------
    pandas.DataFrame
        One row per target: ``loss``; ``{q}_median``, ``{q}_lower``, ``{q}_upper`` for ``q``
        in ``C, N, D, reach`` (``reach = C / max fitted C``, fitted ``C = k N D`` with the
        ``k`` of the budgets: how far beyond the data the answer lies; with ``fixed_N`` the ``N``
        columns are that value); ``p_unreachable``: the share of draws whose asymptote is at
        or above the target; ``p_out_of_range``: the share of the others with no answer in
        :data:`TARGET_SEARCH`; ``p_below_range``: the share that reach the target at its
        smallest budget already.

    Raises
    ------
    SpecError
        For a target that is not a positive finite loss, ``fixed_N`` that is not a positive
        number, and the bad arguments :func:`~bayescale.evaluation.decisions.compute_optimal`
        refuses.
    """
    check_fit(fit)
    check_probability(ci, "ci")
    targets = _check_losses(loss)
    draws = target_draws(
        fit, targets, group, fixed_N, flops_per_token, unique_tokens, extrapolation
    )
    out = {"loss": targets} | summarise(draws, ci, fixed_N)
    table = new_groups(pd.DataFrame(out), (fit, group))
    return flag(table, {fit.label: fit}, "compute for a target")


def summarise(draws, ci, fixed_N=None):
    """Median and interval of :data:`TARGET_SUMMARIES`, and the shares with no answer.

    A draw that never reaches its target counts as infinite ``C``, ``D`` (and ``N``, unless
    it is fixed) in the quantiles, one that reaches it below the searched budgets as 0
    (:func:`compute_for_target`).
    """
    out = {}
    never = draws["unreachable"] | draws["out_of_range"]
    for name in TARGET_SUMMARIES:
        values = draws[name]
        if name == "N" and fixed_N is not None:  # the answer's N, reached or not
            values = np.full(values.shape, float(fixed_N))
        else:
            values = np.where(never, np.inf, np.where(draws["below_range"], 0.0, values))
        med, lo, hi = quantiles(values, ci, axis=0)
        out |= {f"{name}_median": med, f"{name}_lower": lo, f"{name}_upper": hi}
    out["p_unreachable"] = draws["unreachable"].mean(axis=0)
    out["p_out_of_range"] = draws["out_of_range"].mean(axis=0)
    out["p_below_range"] = draws["below_range"].mean(axis=0)
    return out


def compute_for_accuracy(
    loss_fit,
    accuracy_fit,
    accuracy,
    ci=0.9,
    group=None,
    accuracy_group=None,
    fixed_N=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """Posterior of the compute needed to reach target accuracies, through the loss.

    The two-stage path (:mod:`bayescale.evaluation.two_stage`) run backwards: each draw of
    the accuracy law (``downstream``) gives the loss at which its mean reaches the target
    (its inverse, ``loss_for``), and the paired draw of the loss law the smallest budget
    that reaches that loss (:func:`compute_for_target`, extrapolation error included). The
    two posteriors' draws are paired at random, as
    :func:`~bayescale.evaluation.two_stage.predict_chained` pairs them, so the interval
    carries both laws' uncertainty.

    Parameters
    ----------
    loss_fit : ScalingFit
        A loss law in ``N`` and ``D``, as for :func:`compute_for_target`.
    accuracy_fit : ScalingFit
        A law of accuracy in that loss (``downstream``).
    accuracy : float or array_like
        Target accuracies in (0, 1).
    ci, group, fixed_N, flops_per_token, unique_tokens, extrapolation
        As for :func:`compute_for_target` (``group``: of ``loss_fit``).
    accuracy_group : str, optional
        For a grouped ``accuracy_fit``: a fitted group, or a new label.

    Returns
    -------
    pandas.DataFrame
        One row per target: ``accuracy``; median and interval of ``loss`` (the loss needed:
        ``-inf`` where the target is beyond the accuracy law's ceiling, as no loss reaches it,
        and ``+inf`` at or below chance, as any loss does; so a harder target never needs a
        higher loss, and ``-inf`` sits where ``C`` is infinite) and of ``C``, ``N``,
        ``D``, ``reach`` as :func:`compute_for_target` gives them; ``p_unreachable``, the
        share of draws whose target lies beyond the ceiling or whose loss needed lies below
        the loss law's asymptote; ``p_out_of_range``; and ``p_chance``, the share at or below
        chance (reached with no compute: ``C = N = D = 0``).
    """
    check_probability(ci, "ci")
    check_fits(loss_fit, accuracy_fit)
    targets = _check_accuracies(accuracy)
    law = accuracy_fit.law
    if not hasattr(law, "loss_for"):
        raise SpecError(
            f"accuracy_fit's law {law.name!r} cannot be inverted to the loss a target needs; "
            "use 'downstream'"
        )
    p_acc = law_parameters(accuracy_fit, accuracy_group, "accuracy_group")
    curve = LossCurve.of(loss_fit, group, flops_per_token, unique_tokens, extrapolation, fixed_N)
    rng = np.random.default_rng(loss_fit.spec.random_seed)
    i_loss, i_acc = pair_draws(len(curve.slope), len(next(iter(p_acc.values()))), rng)
    column = {k: v[i_acc, None] for k, v in p_acc.items()}
    needed = law.loss_for(column, accuracy_fit.log_ref, targets[None, :])
    chance = np.isinf(needed)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_targets = np.where(chance, np.nan, np.log(needed))
    draws = solve(curve.draws(i_loss), log_targets)
    draws["unreachable"] &= ~chance
    for name in ("C", "N", "D", "reach"):
        if name != "N" or fixed_N is None:
            draws[name] = np.where(chance, 0.0, draws[name])
    out = {"accuracy": targets}
    med, lo, hi = quantiles(np.where(np.isnan(needed), -np.inf, needed), ci, axis=0)
    out |= {"loss_median": med, "loss_lower": lo, "loss_upper": hi}
    out |= summarise(draws, ci, fixed_N) | {"p_chance": chance.mean(axis=0)}
    fits = {f"loss: {loss_fit.label}": loss_fit, f"accuracy: {accuracy_fit.label}": accuracy_fit}
    table = new_groups(pd.DataFrame(out), (loss_fit, group), (accuracy_fit, accuracy_group))
    return flag(table, fits, "compute for a target accuracy")


def target_draws(
    fit,
    loss,
    group=None,
    fixed_N=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """Per-draw answers behind :func:`compute_for_target`: arrays of shape (draws, targets).

    Returns
    -------
    dict of str to ndarray
        ``C``, ``N``, ``D``, ``reach`` (NaN where a draw has no answer) and the boolean
        ``unreachable``, ``below_range`` (the target met at the smallest budget searched)
        and ``out_of_range`` (not met within the budgets searched).
    """
    targets = _check_losses(loss)
    curve = LossCurve.of(fit, group, flops_per_token, unique_tokens, extrapolation, fixed_N)
    return solve(curve, np.broadcast_to(np.log(targets), (len(curve.slope), len(targets))))


def solve(curve, log_targets):
    """Each draw's smallest budget whose drifted loss on ``curve`` reaches its own target.

    ``log_targets`` has shape (draws, targets): one target per draw of ``curve`` (NaN: none,
    counted unreachable). Returns what :func:`target_draws` returns.
    """
    fitted = fitted_compute(curve.fit, curve.k)
    log_grid = search_grid(fitted.min() * TARGET_SEARCH[0], fitted.max() * TARGET_SEARCH[1])
    # f = log loss - log target on the grid, (draws, targets, grid); its first fall to <= 0
    f = curve.on_grid(log_grid, quiet=True)[:, None, :] - log_targets[..., None]
    with np.errstate(invalid="ignore"):
        unreachable = ~(curve.log_floor(log_grid)[:, None] < log_targets)  # NaN targets too
    down = (f[..., :-1] > 0) & (f[..., 1:] <= 0) & ~unreachable[..., None]
    draw, _ = np.indices(unreachable.shape)
    args = [a[draw].ravel() for a in curve.arguments()] + [np.ravel(log_targets)]
    log_c = first_crossing(
        down.reshape(-1, down.shape[-1]),
        log_grid,
        lambda x, *a: curve.log_loss(x, *a[:-1]) - a[-1],
        args,
    ).reshape(unreachable.shape)
    c = np.exp(log_c)
    n, d = curve.allocation_at(log_c)
    below = ~unreachable & (f[..., 0] <= 0)  # met at the smallest budget searched already
    return {
        "C": c,
        "N": n,
        "D": d,
        "reach": c / fitted.max(),
        "unreachable": unreachable,
        "below_range": below,
        "out_of_range": ~unreachable & ~below & np.isnan(log_c),
    }


@dataclass(frozen=True)
class LossCurve:
    """One fit's drifted mean loss as a function of the budget, per draw, along an allocation.

    The allocation is the compute-optimal one, or ``N = fixed_n`` with ``D = C / (k N)``.
    :meth:`on_grid` evaluates every draw at shared budgets; :meth:`log_loss` evaluates
    elementwise (each element its own draw's parameters and budget), the form a vectorised
    root finder needs.

    Attributes
    ----------
    fit : ScalingFit
    params : dict of str to ndarray
        Law parameter draws, shape (draws,), of the fit or of one group.
    slope : ndarray, shape (draws,)
        Each draw's drift per e-fold of reach (zeros without extrapolation error).
    k : float
        FLOPs per parameter per token.
    extra : dict of str to float
        Fixed values of the law's other inputs (``U``).
    fixed_n : float or None
    """

    fit: object
    params: dict
    slope: np.ndarray
    k: float
    extra: dict
    fixed_n: float | None = None

    @classmethod
    def of(cls, fit, group, flops_per_token, unique_tokens, extrapolation, fixed_n=None):
        """The curve of ``fit`` (or its ``group``), with arguments checked as everywhere."""
        extra = extra_inputs(fit.law, unique_tokens)
        k = resolve_flops(fit, flops_per_token)
        if fixed_n is not None and (not is_number(fixed_n) or not 0 < fixed_n < np.inf):
            raise SpecError(f"fixed_N must be a positive number of parameters, got {fixed_n!r}")
        params = law_parameters(fit, group)
        slope = drift_per_efold(fit, extrapolation, len(next(iter(params.values()))))
        return cls(fit, params, slope, k, extra, None if fixed_n is None else float(fixed_n))

    def draws(self, index):
        """The same curve over the draws ``index``, in that order (paired with another fit's)."""
        params = {key: v[index] for key, v in self.params.items()}
        return dataclasses.replace(self, params=params, slope=self.slope[index])

    def arguments(self):
        """Per-draw arrays that :meth:`log_loss` takes after the budget: the slope, the params."""
        return (self.slope, *self.params.values())

    def _allocation(self, params, C):
        """``(N, D)`` at budgets ``C`` of shape (1, budgets) shared or (draws, 1) per draw."""
        if self.fixed_n is None:
            return optimum(self.fit.law, params, self.fit.log_ref, C, self.k, self.extra)
        n = np.full(np.shape(C), self.fixed_n)
        return n, C / (self.k * n)

    def _log_loss(self, params, slope, C):
        n, d = self._allocation(params, C)
        column = {key: v[:, None] for key, v in params.items()}
        log_loss = law_log_loss(self.fit.law, column, self.fit.log_ref, n, d, self.extra)
        return log_loss + slope[:, None] * log_budget_reach(self.fit, C, self.k)

    def on_grid(self, log_grid, quiet=False):
        """Drifted ``log`` loss of every draw at budgets ``exp(log_grid)``: (draws, grid).

        ``quiet``: no :class:`~bayescale.errors.UndefinedDrawsWarning` for budgets without an
        optimum (NaN), for a search range the caller chose rather than the user.
        """
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore", UndefinedDrawsWarning)
            return self._log_loss(self.params, self.slope, np.exp(log_grid)[None, :])

    def log_loss(self, log_c, slope, *params):
        """Drifted ``log`` loss elementwise, the form a vectorised root finder calls.

        Element ``i`` is at budget ``exp(log_c[i])`` with the drift ``slope[i]`` and the
        parameters ``params[j][i]`` (in :attr:`params` order); all broadcast together.
        """
        shape = np.broadcast_shapes(np.shape(log_c), *(np.shape(p) for p in (slope, *params)))
        flat = [np.broadcast_to(a, shape).ravel() for a in (log_c, slope, *params)]
        values = dict(zip(self.params, flat[2:], strict=True))
        return self._log_loss(values, flat[1], np.exp(flat[0])[:, None])[:, 0].reshape(shape)

    def allocation_at(self, log_c):
        """``(N, D)`` of each draw (rows of ``log_c``, shape (draws, m)) at its own budget."""
        shape = np.shape(log_c)
        params = {key: np.repeat(v, shape[1]) for key, v in self.params.items()}
        defined = np.isfinite(log_c.ravel())
        n, d = np.full(log_c.size, np.nan), np.full(log_c.size, np.nan)
        if defined.any():
            chosen = {key: v[defined] for key, v in params.items()}
            found = self._allocation(chosen, np.exp(log_c.ravel()[defined])[:, None])
            n[defined], d[defined] = (v[:, 0] for v in found)
        return n.reshape(shape), d.reshape(shape)

    def log_floor(self, log_grid):
        """``log`` of the least loss each draw's law alone reaches along the allocation: (draws,).

        The least of: the law with unlimited parameters and data (:data:`FAR`; for
        Chinchilla ``E``), or with unlimited data at the fixed ``N``; the law at the
        allocation of a budget of :data:`FAR` FLOPs; and its least value over the budgets
        ``exp(log_grid)``. Any one alone misleads for some law: ``isoflop``'s loss along
        its optimal path falls to 0, while at ``N = D`` far off that path its parabola
        explodes; at a fixed ``N`` it falls, then rises again; and a law without a closed
        form has no optimum to find at a budget of ``1e300`` (NaN, ignored here).
        """
        column = {key: v[:, None] for key, v in self.params.items()}
        n = np.full(1, FAR if self.fixed_n is None else self.fixed_n)
        far = law_log_loss(self.fit.law, column, self.fit.log_ref, n, np.full(1, FAR), self.extra)
        no_drift = np.zeros_like(self.slope)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedDrawsWarning)
            path = self._log_loss(self.params, no_drift, np.full((1, 1), FAR))
            grid = self._log_loss(self.params, no_drift, np.exp(log_grid)[None, :])
        return np.fmin.reduce(np.concatenate([far, path, grid], axis=1), axis=1)


def search_grid(lo, hi):
    """``log C`` from ``lo`` to ``hi`` (budgets, ``lo < hi``), at most :data:`SEARCH_STEP` apart."""
    points = max(int(np.ceil(np.log(hi / lo) / SEARCH_STEP)) + 1, 3)
    return np.linspace(np.log(lo), np.log(hi), points)


def first_crossing(change, log_grid, f, args):
    """Each row's first crossing of zero by ``f``, in ``log C``: shape (rows,), NaN if none.

    Parameters
    ----------
    change : ndarray of bool, shape (rows, grid - 1)
        The grid cells ``[log_grid[i], log_grid[i + 1]]`` over which the row's ``f`` crosses
        zero the way the caller asks for; the first such cell is refined.
    log_grid : ndarray, shape (grid,)
    f : callable
        ``f(x, *args)`` elementwise, as :func:`scipy.optimize.elementwise.find_root` calls it.
    args : list of ndarray, shape (rows,)
        Each row's arguments of ``f``.
    """
    out = np.full(len(change), np.nan)
    rows = np.flatnonzero(change.any(axis=1))
    if not rows.size:
        return out
    cell = np.argmax(change[rows], axis=1)
    with warnings.catch_warnings():  # an undefined allocation inside a cell stays NaN
        warnings.simplefilter("ignore", UndefinedDrawsWarning)
        found = elementwise.find_root(
            f, (log_grid[cell], log_grid[cell + 1]), args=tuple(a[rows] for a in args)
        )
    out[rows] = np.where(found.success, found.x, np.nan)
    return out


def _check_accuracies(accuracy):
    """``accuracy`` as a 1-D float array of targets in (0, 1), else a SpecError."""
    try:
        values = np.atleast_1d(np.asarray(accuracy, dtype=float))
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.ndim != 1 or not values.size or not np.all((values > 0) & (values < 1)):
        raise SpecError(
            f"accuracy must be target accuracies in (0, 1) (a number or a 1-D list), "
            f"got {accuracy!r}"
        )
    return values


def _check_losses(loss):
    """``loss`` as a 1-D float array of positive finite target losses, else a SpecError."""
    try:
        return check_budgets(loss)
    except SpecError:
        raise SpecError(
            f"loss must be positive and finite target losses (a number or a 1-D list), got {loss!r}"
        ) from None
