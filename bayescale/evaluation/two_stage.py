"""Two-stage prediction: a loss law's posterior pushed through a loss-to-accuracy law.

Gadre et al. (2024) and the OLMo ladders (Bhagia et al. 2024) predict a new model's
benchmark accuracy in two steps: its loss from a scaling law in ``N``, ``D`` (or ``C``),
then accuracy from that loss. Feeding the *point* estimate of the loss into the second
step hides the first step's uncertainty. Here every posterior draw of the loss is pushed
through a posterior draw of the downstream law, so accuracy intervals carry both.

The two fits are independent posteriors, so their draws are paired at random (a seeded
permutation, or resampling with replacement when the draw counts differ): the joint draws
then sample the product of the two posteriors.
"""

import numpy as np

from bayescale.arguments import check_probability, seeded
from bayescale.data import read_table
from bayescale.diagnostics import flag
from bayescale.errors import SpecError
from bayescale.ops import NUMPY
from bayescale.predictive import check_kind, quantiles
from bayescale.result import check_fit, warn_undefined


def check_fits(upstream_fit, downstream_fit):
    """SpecError unless a loss fit and a fit of a law of that loss alone, as chaining needs."""
    check_fit(upstream_fit, "upstream_fit")
    check_fit(downstream_fit, "downstream_fit")
    down = downstream_fit.law
    if len(down.inputs) != 1 or down.inputs[0] not in down.linear_inputs:
        raise SpecError(
            f"downstream_fit's law {down.name!r} takes inputs {list(down.inputs)}; chaining "
            "needs a law of the loss alone, seen linearly (e.g. 'downstream')"
        )
    if upstream_fit.likelihood.support != "positive":
        raise SpecError(
            f"upstream_fit models {upstream_fit.data.y!r} with a {upstream_fit.likelihood.name}"
            " likelihood, not a loss: fit the upstream law to a loss with 'normal' or "
            "'student_t'"
        )


def pair_draws(n_up, n_down, rng):
    """Indices pairing draws of two independent posteriors: ``max(n_up, n_down)`` joint draws.

    A seeded permutation of the larger set; the smaller is resampled with replacement.
    """
    n = max(n_up, n_down)

    def pick(count):
        return rng.permutation(count) if count == n else rng.choice(count, n, replace=True)

    return pick(n_up), pick(n_down)


def chained_draws(
    upstream_fit,
    downstream_fit,
    new_data,
    kind="mean",
    random_seed=None,
    extrapolation="calibrated",
):
    """Joint posterior draws of the loss and the accuracy at new inputs.

    Parameters
    ----------
    upstream_fit : ScalingFit
        A loss law (``chinchilla``, ``power_law``...) fitted with a loss likelihood.
    downstream_fit : ScalingFit
        A law of the loss alone (``downstream``) fitted to accuracies.
    new_data : DataFrame or dict of arrays
        The upstream law's inputs (named as in its fit), and the downstream fit's group
        column if it was grouped.
    kind : {"mean", "observed"}
        ``"mean"``: the law's loss, then the downstream law's mean accuracy at it.
        ``"observed"``: a new model's loss (the upstream noise added), then its measured
        accuracy (the downstream noise added): what one evaluation of a new model shows.
    random_seed : int, optional
        Seed for the pairing and the noise draws (default: the upstream fit's seed).
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        The upstream loss's error beyond its fitted range, as in
        :meth:`bayescale.ScalingFit.predict`; it flows on into the accuracy.

    Returns
    -------
    frame : pandas.DataFrame
        The validated upstream inputs.
    loss, acc : ndarray
        Draws of shape (draws, rows).
    """
    check_fits(upstream_fit, downstream_fit)
    check_kind(kind)
    table = read_table(new_data)  # a dict of arrays too
    frame = upstream_fit.spec.prediction_frame(table)
    rng = seeded(upstream_fit.spec.random_seed if random_seed is None else random_seed)

    up, down = upstream_fit.evaluator_with(extrapolation), downstream_fit.evaluator
    log_loss = up.drifted(up.log_mean(frame, rng), frame, rng)
    group = downstream_fit.spec.group
    if group is not None and group not in table.columns:
        raise SpecError(
            f"downstream_fit is grouped by {group!r}: new_data needs that column as well"
        )
    down_frame = table[[group]].astype(str) if group else frame
    p_down = down.parameters(down_frame, rng)

    i_up, i_down = pair_draws(len(log_loss), len(p_down[downstream_fit.law.parameters[0]]), rng)
    log_loss = log_loss[i_up]
    if kind == "observed":
        loss = upstream_fit.likelihood.draw(log_loss, up.noise_parameters(i_up), rng)
    else:
        loss = np.exp(log_loss)
    name = downstream_fit.law.inputs[0]
    z = {name: loss * np.exp(-downstream_fit.log_ref[name])}
    p = {k: v[i_down] for k, v in p_down.items()}
    with np.errstate(invalid="ignore"):  # loss_to_loss: a loss below a draw's E_x
        log_acc = downstream_fit.law.log_mean(NUMPY, p, z)
    warn_undefined(log_acc, frame.index)  # as predict does: intervals use the rest
    if kind == "observed":
        acc = downstream_fit.likelihood.draw(log_acc, down.noise_parameters(i_down), rng)
    else:
        acc = np.exp(log_acc)
    return frame, loss, acc


def predict_chained(
    upstream_fit,
    downstream_fit,
    new_data,
    ci=0.9,
    kind="mean",
    random_seed=None,
    extrapolation="calibrated",
):
    """Predict accuracy at new inputs through a loss law and a loss-to-accuracy law.

    Parameters
    ----------
    upstream_fit, downstream_fit, new_data, kind, random_seed, extrapolation
        As in :func:`chained_draws`.
    ci : float
        Probability of the central (equal-tailed) intervals.

    Returns
    -------
    pandas.DataFrame
        The upstream inputs; ``loss_median, loss_lower, loss_upper``; the accuracy's
        ``median, lower, upper``; and ``p_loss_outside``, the share of loss draws outside
        the range of losses the downstream law was fitted on (how much of the accuracy
        prediction rests on extrapolating the downstream law, not only the upstream one);
        ``reach``, how far the upstream law extrapolates (:mod:`bayescale.extrapolation`);
        where it does, ``attrs["extrapolation"]`` names the loss's extrapolation error.

    Examples
    --------
    >>> predict_chained(loss_fit, acc_fit, {"x": [6.9e9, 1.2e10]}, ci=0.9)  # doctest: +SKIP
    """
    check_probability(ci, "ci")
    frame, loss, acc = chained_draws(
        upstream_fit, downstream_fit, new_data, kind, random_seed, extrapolation
    )
    fitted = downstream_fit.data.frame[downstream_fit.law.inputs[0]]
    outside = (loss < fitted.min()) | (loss > fitted.max())
    l_med, l_lo, l_hi = quantiles(loss, ci, axis=0)
    med, lo, hi = quantiles(acc, ci, axis=0)
    table = frame.assign(
        loss_median=l_med,
        loss_lower=l_lo,
        loss_upper=l_hi,
        median=med,
        lower=lo,
        upper=hi,
        p_loss_outside=outside.mean(axis=0),
        reach=upstream_fit.evaluator.reach(frame),
    )
    if note := upstream_fit.extrapolation_note(table["reach"], extrapolation):
        table.attrs["extrapolation"] = f"the loss's: {note}"
    fits = {f"upstream {upstream_fit.label}": upstream_fit}
    fits[f"downstream {downstream_fit.label}"] = downstream_fit
    return flag(table, fits, "two-stage prediction")
