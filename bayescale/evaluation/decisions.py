r"""Decisions from a posterior: the compute-optimal allocation of a FLOP budget.

The question a scaling law is most often fitted to answer is how to split a budget ``C``
between model size ``N`` and training tokens ``D`` when ``C = k N D`` (``k`` FLOPs per
parameter per token, 6 by the usual forward+backward count). The answer is a function of
the law's parameters, so a posterior over the parameters is a posterior over the answer:
each draw gives its own ``N*``, ``D*``, tokens per parameter ``D*/N*`` and the loss there.
Quoting the optimum at the posterior median of the parameters instead would hide that
the answer at a budget 100x beyond the data is far less certain than the fit near it.

For Chinchilla's law the optimum has a closed form
(:meth:`~bayescale.models.chinchilla.Chinchilla.compute_optimal`):

.. math::

    N^* = G \left(\frac{C}{k}\right)^{a},\quad D^* = \frac{C}{k N^*},\quad
    G = \left(\frac{\alpha A}{\beta B}\right)^{1/(\alpha+\beta)},\quad
    a = \frac{\beta}{\alpha+\beta},\ b = \frac{\alpha}{\alpha+\beta},

so ``N* ∝ C^a`` and ``D* ∝ C^b`` along the frontier; ``isoflop`` (Approach 2 as a law)
has ``N* = G (C/k)^a`` with ``a`` its own parameter. Other laws in ``N`` and ``D``
(``kaplan``; ``data_constrained`` at a fixed unique-token budget ``U``) are minimised
numerically, draw by draw but vectorised across draws: the law's log mean along
``log D = log(C/k) - log N`` on a dense grid of ``log N``, then golden-section search
inside the grid cell that holds each draw's minimum.

The per-draw optimum at per-draw budgets (:func:`optimum`), the law's loss there
(:func:`law_log_loss`) and the drift beyond the data (:func:`drift_per_efold`,
:func:`log_budget_reach`) also serve the questions asked of the frontier: the budget that
reaches a target (:mod:`bayescale.evaluation.targets`) and the comparison of two recipes
(:mod:`bayescale.evaluation.versus`).
"""

import warnings
import zlib

import numpy as np
import pandas as pd

from bayescale import pooling as pooling_mod
from bayescale.arguments import check_probability, is_number
from bayescale.diagnostics import flag
from bayescale.errors import SpecError, UndefinedDrawsWarning
from bayescale.extrapolation import error, log_scale
from bayescale.laws import get_law, laws
from bayescale.ops import NUMPY
from bayescale.predictive import quantiles
from bayescale.result import check_fit

SUMMARIES = ("N_opt", "D_opt", "tokens_per_param", "loss_opt")
"""The quantities :func:`compute_optimal` summarises, in column order."""

GRID_POINTS = 241
"""Points of the ``log N`` grid of the numeric optimisation (0.1 nats apart over the range)."""

RATIO_RANGE = (1e-5, 1e7)
"""Tokens per parameter searched by the numeric optimisation: far beyond any published optimum
(Chinchilla's ~20, data-constrained answers of a few hundred); a minimum on its edge is
reported as undefined (NaN) for that draw rather than as a false optimum."""

CHUNK_CELLS = 2**21
"""Grid cells (pairs x grid points) the numeric optimisation evaluates at once (16 MB each)."""

GOLDEN_STEPS = 60
"""Golden-section steps inside one grid cell: 0.2 * 0.618**60 < 1e-13 in ``log N``."""


def compute_optimal(
    fit,
    C,
    ci=0.9,
    group=None,
    flops_per_token=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    r"""Posterior of the compute-optimal model size and data at FLOP budgets ``C``.

    For each posterior draw, ``N*`` minimises the law's mean loss subject to ``k N D = C``;
    the intervals are those of these per-draw answers, so they carry the parameters'
    uncertainty (and their correlations) into the decision.

    Chinchilla (closed form, per draw):
    ``N* = (alpha A / (beta B))^(1/(alpha+beta)) (C/k)^(beta/(alpha+beta))``,
    ``D* = C / (k N*)``; ``isoflop``: ``N* = G (C/k)^a``. Other ``N``-``D`` laws: numeric
    minimisation of ``log L`` over ``log N`` at fixed ``C`` (module docstring).

    Parameters
    ----------
    fit : ScalingFit
        A fit of a law with inputs ``N`` and ``D`` (and ``U`` for ``data_constrained``).
    C : float or array_like
        FLOP budgets, positive and finite.
    ci : float
        Probability of the central interval.
    group : str, optional
        For a grouped fit (required there): a fitted group's label answers for that group;
        any other label answers for a new group drawn from the population (one new-group
        draw per posterior draw, seeded by the fit's ``random_seed``), so its interval
        includes the spread between groups.
    flops_per_token : float, optional
        ``k`` in ``C = k N D``; default the fit's. A different count (Porian et al.'s
        attention and last-layer FLOPs) moves the answer, since ``N*`` scales as
        ``k^(-a)``.
    unique_tokens : float, optional
        ``U``, the unique tokens available, for laws with a ``U`` input (``data_constrained``);
        ``D*`` may then exceed ``U`` (repeated epochs).
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        The error of the law's shape beyond the fitted budgets, added to ``loss_opt`` as
        in :meth:`bayescale.ScalingFit.predict` (``N*`` and ``D*`` are the law's answers).

    Returns
    -------
    pandas.DataFrame
        One row per budget: ``C``; ``{q}_median``, ``{q}_lower``, ``{q}_upper`` for ``q`` in
        ``N_opt, D_opt, tokens_per_param, loss_opt`` (the law's mean loss at the optimum,
        with the extrapolation error);
        and ``reach = C / max fitted C`` (fitted ``C = k N D``, with ``flops_per_token`` where
        given, as the extrapolation error counts it): how many times beyond the largest
        fitted budget the answer extrapolates.

    Raises
    ------
    SpecError
        For a law without inputs ``N`` and ``D``, a budget that is not positive and finite,
        ``ci`` outside (0, 1), a missing group on a grouped fit or a group on an ungrouped
        one.
    """
    check_fit(fit)
    check_probability(ci, "ci")
    budgets = check_budgets(C)
    draws = optimal_draws(fit, budgets, group, flops_per_token, unique_tokens, extrapolation)
    out = {"C": budgets}
    for name in SUMMARIES:
        med, lo, hi = quantiles(draws[name], ci, axis=0)
        out |= {f"{name}_median": med, f"{name}_lower": lo, f"{name}_upper": hi}
    out["reach"] = budgets / fitted_compute(fit, flops_per_token).max()
    table = new_groups(pd.DataFrame(out), (fit, group))
    return flag(table, {fit.label: fit}, "compute-optimal allocation")


def frontier_exponents(fit, ci=0.9, group=None, C=None, unique_tokens=None):
    r"""Posterior of the frontier exponents ``a``, ``b`` in ``N* ∝ C^a``, ``D* ∝ C^b``.

    Per draw, the law's own :meth:`~bayescale.ScalingLaw.frontier_exponent`: Chinchilla
    ``a = beta/(alpha+beta)``; Kaplan ``a = alpha_D/(alpha_N+alpha_D)`` (the same
    derivation: ``d/dN`` of the law's base at fixed ``N D``); ``isoflop`` its parameter
    ``a``. Since ``N* D* = C/k``, ``b = 1 - a``.
    These are what "parameters and data should be scaled equally" (``a = b = 0.5``) is a
    claim about. For other laws the exponents vary with ``C``; they are the local log-log
    slopes ``d log N* / d log C`` at ``C`` (required then), by central differences.

    Parameters
    ----------
    fit, ci, group, unique_tokens
        As for :func:`compute_optimal`.
    C : float, optional
        Budget of the local slope, for laws without constant exponents.

    Returns
    -------
    pandas.DataFrame
        Rows ``a``, ``b``; columns ``median``, ``lower``, ``upper``.
    """
    check_fit(fit)
    check_probability(ci, "ci")
    a = exponent_draws(fit, group, C, unique_tokens)
    rows = {}
    for name, values in (("a", a), ("b", 1.0 - a)):
        med, lo, hi = quantiles(values, ci)
        rows[name] = {"median": med, "lower": lo, "upper": hi}
    table = pd.DataFrame.from_dict(rows, orient="index")
    return flag(new_groups(table, (fit, group)), {fit.label: fit}, "frontier exponents")


def optimal_draws(
    fit, C, group=None, flops_per_token=None, unique_tokens=None, extrapolation="calibrated"
):
    """Per-draw answers behind :func:`compute_optimal`: arrays of shape (draws, budgets).

    A closed form reads its coefficients (Chinchilla's ``A``, ``B``; ``isoflop``'s ``G``) from
    the law's ``derived`` of each draw's parameters (for an ungrouped fit, exactly the
    posterior's derived values), so that a group's, or a new group's, parameters go through
    the same formula.

    ``extrapolation`` is as in :func:`compute_optimal`.

    Returns
    -------
    dict of str to ndarray
        ``N_opt``, ``D_opt``, ``tokens_per_param``, ``loss_opt``.
    """
    law = fit.law
    k = resolve_flops(fit, flops_per_token)
    budgets = check_budgets(C)
    params = law_parameters(fit, group)
    extra = extra_inputs(law, unique_tokens)
    n_opt, d_opt = optimum(law, params, fit.log_ref, budgets, k, extra)
    column = {key: v[:, None] for key, v in params.items()}
    log_loss = law_log_loss(law, column, fit.log_ref, n_opt, d_opt, extra)
    scale = pd.DataFrame({"N": budgets / k, "D": np.ones_like(budgets)})  # N* D* = C / k
    rng = np.random.default_rng(fit.spec.random_seed)
    loss = np.exp(fit.evaluator_with(extrapolation).drifted(log_loss, scale, rng))
    return {"N_opt": n_opt, "D_opt": d_opt, "tokens_per_param": d_opt / n_opt, "loss_opt": loss}


def exponent_draws(fit, group=None, C=None, unique_tokens=None):
    """Per-draw ``a`` of ``N* ∝ C^a`` (``b = 1 - a``): shape (draws,)."""
    law = fit.law
    extra = extra_inputs(law, unique_tokens)
    params = law_parameters(fit, group)
    budgets = None if C is None else check_budgets(C)  # checked even where unused
    if budgets is not None and len(budgets) != 1:
        raise SpecError(f"C is the one budget where the local slope is taken, got {C!r}")
    exponent = law.frontier_exponent(params)
    if exponent is not None:
        return exponent
    if budgets is None:
        raise SpecError(
            f"law {law.name!r} has no constant frontier exponents; pass C= (a budget) for the "
            "local slope d log N*/d log C there"
        )
    step = 0.5  # log C: N* is smooth, and the golden-section error is ~1e-13 in log N
    n_opt, _ = numeric_optimum(
        law, params, fit.log_ref, budgets * np.exp([-step, step]), fit.spec.flops_per_token, extra
    )
    return (np.log(n_opt[:, 1]) - np.log(n_opt[:, 0])) / (2 * step)


def optimum(law, params, log_ref, C, flops_per_token, extra=None):
    """``(N*, D*)`` per draw: the law's closed form where it has one, else :func:`numeric_optimum`.

    ``params`` are law parameter draws of shape (draws,); ``C`` is shape (budgets,), the same
    budgets for every draw, or (draws, budgets), each draw its own (what a search for the
    budget that reaches a target needs). Returns arrays of shape (draws, budgets).
    """
    if _has_closed_form(law):
        full = params | law.derived(NUMPY, params, log_ref)
        return law.compute_optimal({key: v[:, None] for key, v in full.items()}, C, flops_per_token)
    return numeric_optimum(law, params, log_ref, C, flops_per_token, extra)


def law_log_loss(law, params, log_ref, N, D, extra=None):
    """``log`` of the law's mean at ``N``, ``D`` (and ``extra`` inputs), broadcast with ``params``.

    NaN (not an error) where an allocation is undefined, so one draw cannot sink the rest.
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        inputs = {"N": N, "D": D} | {k: np.full(np.shape(N), v) for k, v in (extra or {}).items()}
        return law.log_mean(NUMPY, params, law.z(inputs, log_ref))


def drift_per_efold(fit, extrapolation, n_draws):
    """Each draw's extrapolation drift per e-fold of reach, ``b + omega z``: shape (draws,).

    :func:`bayescale.extrapolation.error` at one row is ``(b + omega z) log r``. A search
    along budgets needs that error as a function of reach; one ``z`` per draw makes it a line
    in ``log r`` whose value at any single reach has the distribution that
    :meth:`~bayescale.ScalingFit.predict` adds there (and the same ``b``, from the same
    seeded stream as :func:`optimal_draws`). Zeros when ``extrapolation`` adds none.
    """
    rng = np.random.default_rng(fit.spec.random_seed).spawn(1)[0]
    slopes = fit.evaluator_with(extrapolation).drift_slopes((n_draws,), rng)
    if slopes is None:
        return np.zeros(n_draws)
    return error(*slopes, np.ones(1), rng)[:, 0]  # the error at log r = 1: the slope


def log_budget_reach(fit, C, flops_per_token):
    """``log`` of the reach of budgets ``C`` (any shape): ``N D = C / k`` over the fitted ``N D``.

    0 inside the fitted range, as :func:`bayescale.extrapolation.log_reach` of the rows
    :func:`optimal_draws` predicts at; the laws of ``N`` and ``D`` scale by ``N D``.
    """
    top = np.max(log_scale(fit.law, fit.data.frame))
    return np.maximum(np.log(np.asarray(C, float) / flops_per_token) - top, 0.0)


def numeric_optimum(law, params, log_ref, C, flops_per_token, extra=None):
    """``(N*, D*)`` minimising the law's mean at ``k N D = C``, per draw: shape (draws, budgets).

    A dense grid in ``log N`` finds each draw's best cell; golden-section search refines it
    inside the two cells around it, vectorised over every (draw, budget) pair at once, in
    chunks of :data:`CHUNK_CELLS` grid cells. Draws whose minimum lies on the
    edge of the searched range (:data:`RATIO_RANGE` of ``D/N``) have no interior optimum
    there and are NaN, with an :class:`~bayescale.errors.UndefinedDrawsWarning`.

    Parameters
    ----------
    law : ScalingLaw
        With inputs ``N``, ``D`` and those in ``extra``.
    params : dict of str to ndarray
        Law parameter draws, shape (draws,).
    log_ref : dict
        The fit's log reference scales.
    C : array_like
        Budgets: shape (budgets,), shared by every draw, or (draws, budgets).
    flops_per_token : float
    extra : dict of str to float, optional
        Fixed values of the law's other inputs (``U``).
    """
    n_draws = len(next(iter(params.values())))
    budgets = np.atleast_1d(np.asarray(C, float))
    budgets = np.broadcast_to(budgets, (n_draws, budgets.shape[-1]))
    # one element per (draw, budget) pair: that draw's parameters at that budget
    log_nd = np.log(budgets / flops_per_token).ravel()
    draw = np.repeat(np.arange(n_draws), budgets.shape[1])
    flat = {key: np.asarray(v, float)[draw] for key, v in params.items()}
    unit = np.linspace(0.0, 1.0, GRID_POINTS)
    log_n = np.empty(log_nd.size)
    step = max(CHUNK_CELLS // GRID_POINTS, 1)
    for start in range(0, log_nd.size, step):
        part = slice(start, start + step)
        col = {key: v[part, None] for key, v in flat.items()}
        nd = log_nd[part, None]

        def objective(x, col=col, nd=nd):
            value = law_log_loss(law, col, log_ref, np.exp(x), np.exp(nd - x), extra)
            return np.where(np.isfinite(value), value, np.inf)

        lo, hi = (0.5 * (nd - np.log(r)) for r in RATIO_RANGE[::-1])
        grid = lo + (hi - lo) * unit
        best = np.argmin(objective(grid), axis=1)[:, None]
        edge = (best == 0) | (best == GRID_POINTS - 1)
        left = np.take_along_axis(grid, np.clip(best - 1, 0, GRID_POINTS - 1), axis=1)
        right = np.take_along_axis(grid, np.clip(best + 1, 0, GRID_POINTS - 1), axis=1)
        log_n[part] = np.where(edge, np.nan, _golden(objective, left, right))[:, 0]
    n_opt = np.exp(log_n).reshape(budgets.shape)
    if undefined := int(np.isnan(n_opt).sum(axis=0).max()):
        warnings.warn(
            f"up to {undefined} of {n_draws} posterior draws have no optimum with tokens per "
            f"parameter in {RATIO_RANGE}; they are left out of the intervals",
            UndefinedDrawsWarning,
            stacklevel=2,
        )
    return n_opt, budgets / (flops_per_token * n_opt)


def _golden(f, left, right):
    """Golden-section minimum of ``f`` on ``[left, right]``, elementwise (unimodal there)."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = right - ratio * (right - left), left + ratio * (right - left)
    f1, f2 = f(x1), f(x2)
    for _ in range(GOLDEN_STEPS):
        lower = f1 < f2  # the minimum lies in [left, x2], else in [x1, right]
        right = np.where(lower, x2, right)
        left = np.where(lower, left, x1)
        x_new = np.where(lower, right - ratio * (right - left), left + ratio * (right - left))
        f_new = f(x_new)
        x1, x2 = np.where(lower, x_new, x2), np.where(lower, x1, x_new)
        f1, f2 = np.where(lower, f_new, f2), np.where(lower, f1, f_new)
    return (left + right) / 2.0


def group_label(fit, group, argument="group"):
    """``group=`` as ``fit`` labels its groups, or None for a fit without groups.

    Labels are text, as the fit and ``predict`` read a group column (a number is its text).
    A grouped fit needs a label, fitted or new; an ungrouped one refuses one. ``argument``
    is the keyword the messages name (``accuracy_group`` for an accuracy fit's group).
    """
    labels = fit.group_labels
    if not fit.spec.group:
        if group is not None:
            raise SpecError(f"{argument}={group!r} given, but this fit has no groups")
        return None
    if group is None:
        raise SpecError(
            f"this fit has groups ({fit.spec.group!r}: {labels}); pass {argument}= one of "
            "them, or a new label for a new group drawn from the population (where no "
            "parameter is 'separate')"
        )
    if not (isinstance(group, str) or is_number(group)):
        raise SpecError(f"pass {argument}= a text or number label, got {group!r}; groups: {labels}")
    return str(group)


def new_groups(table, *pairs):
    """``table``, with ``attrs["new_groups"]`` listing the labels its fits have not fitted.

    ``pairs`` are ``(fit, group)``: a label a fit has not seen is drawn from its population
    of groups (:func:`law_parameters`), as :meth:`~bayescale.ScalingFit.predict` lists
    such labels, so that a typo (``2.0`` for ``2``) shows.
    """
    new = [
        label
        for fit, group in pairs
        if (label := group_label(fit, group)) is not None and label not in fit.group_labels
    ]
    if new:
        table.attrs["new_groups"] = list(dict.fromkeys(new))
    return table


def law_parameters(fit, group=None, argument="group"):
    """Law parameter draws, shape (draws,), for the fit or one of its groups (or a new one).

    A new group's values are drawn from the population with the fit's ``random_seed`` and
    the label, so the same call gives the same answer and two new groups get draws of
    their own (with the seed alone, ``prob_beats`` of two new groups compared one set of
    draws with itself). ``argument`` as in :func:`group_label`.
    """
    group = group_label(fit, group, argument)
    if group is None:
        frame = pd.DataFrame(index=[0])
    else:
        labels = fit.group_labels
        new = [group] if group not in labels else []
        pooling_mod.refuse_new_groups(new, labels, fit.pooling, f" ({argument}={group!r})")
        frame = pd.DataFrame({fit.spec.group: [group]})
    label = () if group is None else (zlib.crc32(group.encode()),)
    rng = np.random.default_rng([fit.spec.random_seed, *label])
    rows = fit.evaluator.parameters(frame, rng)
    return {key: np.asarray(v, float)[..., 0] for key, v in rows.items()}


def row_compute(frame, flops_per_token):
    """``C = k N D`` of each row of a validated frame (columns ``N`` and ``D``)."""
    return flops_per_token * frame["N"].to_numpy(float) * frame["D"].to_numpy(float)


def fitted_compute(fit, flops_per_token=None):
    """``k N D`` of the fitted rows, with the fit's ``k`` or the one the budgets are counted with.

    A reach compares a budget with the fitted ones, so both count FLOPs alike: budgets
    counted with ``flops_per_token = 3`` are set against ``3 N D`` of the fitted runs, as
    the extrapolation error is (:func:`log_budget_reach`: ``N D = C / k``).
    """
    return row_compute(fit.data.frame, resolve_flops(fit, flops_per_token))


def _has_closed_form(law):
    """A closed form (``law.compute_optimal``) applies to laws in exactly ``N`` and ``D`` that offer one."""
    return hasattr(law, "compute_optimal") and set(law.inputs) == {"N", "D"}


def allocatable_laws():
    """Names of the registered laws a budget can be allocated under: in ``N``, ``D`` (and ``U``)."""
    return [name for name in laws() if {"N", "D"} <= set(get_law(name).inputs) <= {"N", "D", "U"}]


def extra_inputs(law, unique_tokens):
    """Fixed values of the law's inputs other than ``N`` and ``D``; SpecError if unsupported."""
    if not {"N", "D"} <= set(law.inputs):
        raise SpecError(
            f"law {law.name!r} has inputs {list(law.inputs)}, not model size N and tokens D: "
            f"a compute-optimal allocation needs a law in N and D ({', '.join(allocatable_laws())})"
        )
    other = set(law.inputs) - {"N", "D"}
    if other - {"U"}:
        raise SpecError(
            f"law {law.name!r} has inputs {sorted(other)} besides N and D; compute_optimal "
            "supports only U (unique tokens)"
        )
    if "U" not in other:
        if unique_tokens is not None:
            raise SpecError(f"law {law.name!r} has no unique-token input; drop unique_tokens=")
        return {}
    if unique_tokens is None:
        raise SpecError(
            f"law {law.name!r} depends on the unique tokens available; pass unique_tokens= (U)"
        )
    if not is_number(unique_tokens) or not np.isfinite(unique_tokens) or unique_tokens <= 0:
        raise SpecError(f"unique_tokens must be a positive number, got {unique_tokens!r}")
    return {"U": float(unique_tokens)}


def resolve_flops(fit, flops_per_token):
    """The fit's ``k``, or a positive finite override."""
    if flops_per_token is None:
        return fit.spec.flops_per_token
    if not is_number(flops_per_token) or not np.isfinite(flops_per_token) or flops_per_token <= 0:
        raise SpecError(f"flops_per_token must be a positive number, got {flops_per_token!r}")
    return float(flops_per_token)


def check_budgets(C):
    """``C`` as a 1-D float array of positive finite budgets, else a SpecError."""
    # None would read as NaN, True as a budget of 1 FLOP
    flags = C if isinstance(C, list | tuple | np.ndarray) else [C]
    if C is None or any(isinstance(c, bool | np.bool_) for c in flags):
        raise SpecError(f"C must be positive FLOP budgets, got {C!r}")
    try:
        budgets = np.atleast_1d(np.asarray(C, dtype=float))
    except (TypeError, ValueError, OverflowError):  # an int too large for a float: Overflow
        raise SpecError(f"C must be positive FLOP budgets, got {C!r}") from None
    if budgets.ndim != 1 or budgets.size == 0:
        raise SpecError(f"C must be a number or a 1-D list of budgets, got shape {budgets.shape}")
    if not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise SpecError(f"C must be positive and finite FLOP budgets, got {budgets.tolist()}")
    return budgets
