"""Loss along a training curve under any learning-rate schedule (Tissue et al. 2024)."""

import numpy as np
import pandas as pd
from scipy import signal

from bayescale.errors import DataError, SpecError
from bayescale.laws import ScalingLaw, reference_scale
from bayescale.priors import Prior


class LRAnnealing(ScalingLaw):
    r"""Loss at step ``s`` from the forward area ``S1`` and the annealing area ``S2``.

    .. math::

        L(s) = L_0 + A\,S_1^{-\alpha} - C\,S_2,
        \qquad S_1 = \sum_{i=1}^{s} \eta_i,
        \qquad S_2 = \sum_{i=1}^{s} m_i,\quad m_i = \lambda\,m_{i-1} + (\eta_{i-1} - \eta_i)

    (Tissue et al. 2024, Eq. 1 and the definitions of the two areas beside it; the decay
    factor is ``lambda = 0.999`` in the paper's fits). ``S1`` is the area under the
    learning-rate curve (how far training has pushed); ``S2`` accumulates the decreases of
    the learning rate with a momentum that lets a decrease act over ~1/(1 - lambda) steps,
    and is zero for a constant schedule. Compute both from a schedule with
    :func:`annealing_areas`, and a fitting table from several runs with
    :func:`annealing_table`.

    Log space. The minus sign means ``log L`` is not a log-sum-exp. It is written

    .. math::

        \log L = \underbrace{\operatorname{logsumexp}(\log L_0,\ \log a_{ref} - \alpha z_1)}
        _{\log P}\; + \log\!\big(1 - \phi\, z_2\, \sigma(\log L_0 - \log a_{ref} + \alpha z_1)\big)

    with ``z1 = log S1 - log S1_ref``, ``z2 = S2 / S2_ref`` and ``sigma(.) = L0 / P`` (the
    floor's share of the positive part), so ``C S2 / P = phi z2 L0 / P`` is evaluated without
    overflow at any ``S1``. ``S2_ref`` is *not* the data's centre, as for other inputs, but
    their largest ``S2`` rounded up to one significant figure (:meth:`log_reference`), so
    ``z2 <= 1`` on the fitted data. With ``phi < 1`` the annealing drop never exceeds the
    floor there: every prior draw, the initial point and every posterior draw give a
    positive loss on the fitted inputs, by construction rather than by rejection. (The law
    itself predicts a non-positive loss once ``C S2 >= L0 + A S1^-alpha``, i.e. for
    ``S2`` beyond ``S2_ref / phi``, ten times the fitted range at the prior mean; there
    the predicted log loss is NaN.)

    Parameters (free)
    -----------------
    L0
        Loss at infinite forward area, ``LogNormal(0.5, 0.6)``: median 1.65, 95% in
        [0.5, 5.3] nats. Pool it across runs (``group="run"``) to give each training curve
        its own level: see *Runs* below.
    a_ref
        Size of the power-law term at ``S1_ref`` (the geometric centre of the fitted
        ``S1``), ``LogNormal(-1, 1.5)``: median 0.37, 95% in [0.02, 7] nats.
    alpha
        Exponent of ``S1``, ``Beta(2, 3)``: mean 0.4, 95% in [0.07, 0.81]; bounded below 1
        as in ``chinchilla`` (it removes the ``L0``-exponent ridge).
    phi
        Annealing drop at the largest fitted annealing area, as a fraction of ``L0``:
        ``C S2_ref = phi L0``. ``Beta(2, 18)``: mean 0.1, 95% in [0.01, 0.26], i.e. a drop
        of 0.04-0.7 nats at ``L0 = 2.7``. Decaying the learning rate to 10% or to zero
        lowers language-model losses by about 0.05-0.3 nats in the paper's figures.

    ``A = a_ref * S1_ref**alpha`` and ``C = phi * L0 / S2_ref`` are reported as derived
    quantities (the paper's parameters, in the units of the learning rates given).

    Runs. The points of one training curve are not independent: they share the run's seed
    and data order (a level shift of about 1% between seeds) and neighbouring evaluations
    share slowly varying noise. Treating them as independent makes intervals far too
    narrow. Fit with ``group="run"`` and ``pooling={"L0": "pooled_centred"}`` (the other
    parameters ``"shared"``): each run gets its own floor, and a run never seen draws its
    floor from the population (:meth:`bayescale.ScalingFit.row_parameters`). Centred,
    because a run's points pin its level far more tightly than runs differ (measured in
    ``case_studies/lr_schedule_transfer.py``: 0 divergences centred, 1 non-centred). Thin
    each curve to a few dozen points far apart compared with the noise's correlation
    length (``annealing_table(..., max_points=)``), so that the remaining noise is close
    to the independent noise the likelihood assumes. In that case study, ignoring the runs
    lets the 90% intervals of an unseen WSD run cover 15% of its true curve (84% with the
    run effect).

    Prior predictive (``law.prior_predictive``, 4,000 draws at 20 steps from 1,000 to 20,000
    of a constant and a cosine-to-10% run, peak learning rate 3e-4 after 500 warmup steps:
    S1 in [0.23, 5.9], S2 in [0, 0.27]): median loss 2.3, 90% of draws in [0.87, 7.2] nats,
    none non-positive (checked in ``tests/test_law_lr_annealing.py``).

    References
    ----------
    Tissue, Wang and Wang (2024), "Scaling Law with Learning Rate Annealing",
    arXiv:2408.11029.
    """

    name = "lr_annealing"
    inputs = ("S1", "S2")
    linear_inputs = ("S2",)
    priors = {
        "L0": Prior("LogNormal", mu=0.5, sigma=0.6),
        "a_ref": Prior("LogNormal", mu=-1.0, sigma=1.5),
        "alpha": Prior("Beta", alpha=2.0, beta=3.0),
        "phi": Prior("Beta", alpha=2.0, beta=18.0),
    }
    citation = "Tissue et al. 2024, arXiv:2408.11029"

    def log_reference(self, inputs):
        """``S1``: the usual rounded geometric centre; ``S2``: its maximum, rounded up.

        The maximum makes ``z2 = S2 / S2_ref <= 1`` on the fitted data, which is what keeps
        the loss positive for every ``phi < 1`` (class docstring). All-zero ``S2`` (only
        constant schedules) gives ``S2_ref = 1``.
        """
        s2 = np.abs(np.asarray(inputs["S2"], float))
        top = float(s2.max()) if s2.size else 0.0
        if top > 0:
            scale = 10.0 ** np.floor(np.log10(top))
            top = float(np.ceil(top / scale * (1 - 1e-12)) * scale)
        return {
            "S1": reference_scale(np.asarray(inputs["S1"], float)),
            "S2": float(np.log(top)) if top > 0 else 0.0,
        }

    def log_mean(self, m, p, z):  # noqa: D102
        log_l0, log_a = m.log(p["L0"]), m.log(p["a_ref"]) - p["alpha"] * z["S1"]
        floor_share = m.sigmoid(log_l0 - log_a)
        return m.logsumexp([log_l0, log_a]) + m.log1p(-p["phi"] * z["S2"] * floor_share)

    def derived(self, m, p, log_ref):  # noqa: D102
        return {
            "A": p["a_ref"] * m.exp(p["alpha"] * log_ref["S1"]),
            "C": p["phi"] * p["L0"] * m.exp(-log_ref["S2"]),
        }


def lr_schedule(kind, steps, warmup, peak):
    """Learning rate of every step of a common schedule, after a linear warmup to ``peak``.

    ``"constant"``; ``"cosine"``: cosine decay to 10% of ``peak`` at the last step;
    ``"wsd"`` (warmup-stable-decay): ``peak`` until 80% of the steps, then linear decay to 0.
    For simulations and tests; real runs pass their logged schedule to
    :func:`annealing_areas`.
    """
    s = np.arange(1, steps + 1)
    flat = peak * np.minimum(s / warmup, 1.0)
    if kind == "constant":
        return flat
    if kind == "cosine":
        frac = np.clip((s - warmup) / (steps - warmup), 0.0, 1.0)
        return np.where(s <= warmup, flat, peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * frac))))
    if kind == "wsd":
        return np.where(s <= 0.8 * steps, flat, peak * (steps - s) / (0.2 * steps))
    raise SpecError(f"unknown schedule {kind!r}; expected constant, cosine or wsd")


def annealing_areas(lr, steps=None, decay=0.999, warmup=0):
    r"""Forward area ``S1`` and annealing area ``S2`` of a learning-rate schedule.

    ``lr[i - 1]`` is the learning rate ``eta_i`` of step ``i`` (steps count from 1), and

    .. math::

        S_1(s) = \sum_{i=1}^{s} \eta_i,\qquad
        S_2(s) = \sum_{i=1}^{s} m_i,\qquad
        m_i = \lambda\,m_{i-1} + (\eta_{i-1} - \eta_i),\quad m_i = 0 \text{ for } i \le w

    with ``lambda = decay`` and ``w = warmup``. During warmup the rate rises, which would
    make ``S2`` negative; the momentum therefore starts after warmup (the first counted
    change is from the peak, ``eta_w``, to ``eta_{w+1}``), while ``S1`` counts warmup's area.
    This is our reading of how warmup enters; ``warmup=0`` applies the formula to every step.

    Parameters
    ----------
    lr : array_like
        Learning rate of every step, 1-D, finite and >= 0.
    steps : array_like of int, optional
        Steps (1 to ``len(lr)``) at which to report the areas; default every step.
    decay : float
        Momentum decay ``lambda`` in [0, 1).
    warmup : int
        Number of warmup steps excluded from ``S2``.

    Returns
    -------
    pandas.DataFrame
        Columns ``step``, ``S1``, ``S2``.

    Raises
    ------
    DataError
        For a schedule that is not 1-D finite non-negative numbers, steps out of range,
        a decay outside [0, 1), or areas the law cannot use (``S1 = 0`` or ``S2 < 0`` at a
        requested step).
    """
    eta = np.asarray(lr, dtype=float)
    if eta.ndim != 1 or eta.size == 0:
        raise DataError(f"lr must be a 1-D array of per-step learning rates, got shape {eta.shape}")
    bad = np.flatnonzero(~np.isfinite(eta) | (eta < 0))
    if bad.size:
        raise DataError(
            f"lr has {bad.size} negative or non-finite values, first at step {bad[0] + 1} "
            f"({eta[bad[0]]!r}): learning rates must be finite and >= 0"
        )
    if not 0 <= decay < 1:
        raise DataError(f"decay must be in [0, 1) (the paper uses 0.999), got {decay!r}")
    if int(warmup) != warmup or not 0 <= warmup < eta.size:
        raise DataError(
            f"warmup must be a whole number of steps in [0, {eta.size}), got {warmup!r}"
        )
    steps = np.arange(1, eta.size + 1) if steps is None else np.asarray(steps)
    if steps.ndim != 1 or not np.all(np.isfinite(steps)) or np.any(steps != np.round(steps)):
        raise DataError(f"steps must be a 1-D array of whole step numbers, got {steps!r}")
    steps = steps.astype(np.int64)
    out = (steps < 1) | (steps > eta.size)
    if out.any():
        raise DataError(
            f"steps {steps[out][:5].tolist()} are outside 1..{eta.size} (the schedule's length)"
        )
    drops = np.zeros_like(eta)
    first = max(int(warmup), 1)  # index of step w + 1, the first whose change counts
    drops[first:] = eta[first - 1 : -1] - eta[first:]
    momentum = signal.lfilter([1.0], [1.0, -decay], drops)  # m_i = decay m_{i-1} + drop_i
    s1, s2 = np.cumsum(eta)[steps - 1], np.cumsum(momentum)[steps - 1]
    if np.any(s1 <= 0):
        raise DataError(
            f"S1 = 0 at steps {steps[s1 <= 0][:5].tolist()} (no learning-rate area yet): "
            "the law takes log S1, so use later steps"
        )
    negative = s2 < -1e-12 * max(float(eta.max()), 1e-300)
    if negative.any():
        raise DataError(
            f"S2 < 0 at steps {steps[negative][:5].tolist()}: the learning rate rose there; "
            "set warmup= to the number of warmup steps (re-warming schedules are outside "
            "the law)"
        )
    return pd.DataFrame({"step": steps, "S1": s1, "S2": np.maximum(s2, 0.0)})


def annealing_table(runs, decay=0.999, warmup=0, max_points=None, start=1):
    """Fitting table from several runs: ``run, step, S1, S2, loss``.

    Parameters
    ----------
    runs : mapping of run id to mapping
        Each run: ``"lr"`` (the learning rate of every step), ``"step"`` and ``"loss"``
        (its evaluated points), and optionally ``"warmup"`` (overrides ``warmup``).
    decay, warmup
        As in :func:`annealing_areas`.
    max_points : int, optional
        Keep at most this many points per run, as evenly spaced in step as the evaluated
        points allow: neighbouring points of one curve share noise, and a few dozen
        far-apart points carry nearly all of a curve's information (see
        :class:`LRAnnealing`).
    start : int
        Drop points before this step (e.g. the end of warmup).

    Returns
    -------
    pandas.DataFrame
        One row per kept point; ``run`` as strings, ready for ``bayescale.fit(...,
        group="run")``.
    """
    if max_points is not None and (int(max_points) != max_points or max_points < 2):
        raise DataError(f"max_points must be a whole number >= 2, got {max_points!r}")
    frames = []
    for run, spec in runs.items():
        missing = {"lr", "step", "loss"} - set(spec)
        if missing:
            raise DataError(f"run {run!r} lacks {sorted(missing)}: give lr, step and loss")
        step = np.asarray(spec["step"])
        loss = np.asarray(spec["loss"], float)
        if step.shape != loss.shape or step.ndim != 1:
            raise DataError(
                f"run {run!r}: step and loss must be 1-D of equal length, got shapes "
                f"{step.shape} and {loss.shape}"
            )
        keep = np.flatnonzero(step >= start)
        if not keep.size:
            raise DataError(f"run {run!r} has no evaluated points at or after step {start}")
        order = keep[np.argsort(step[keep], kind="stable")]
        if max_points is not None and order.size > max_points:
            targets = np.linspace(step[order[0]], step[order[-1]], int(max_points))
            picks = np.searchsorted(step[order], targets).clip(0, order.size - 1)
            order = order[np.unique(picks)]
        areas = annealing_areas(
            spec["lr"], step[order], decay=decay, warmup=spec.get("warmup", warmup)
        )
        frames.append(areas.assign(loss=loss[order], run=str(run)))
    return pd.concat(frames, ignore_index=True)[["run", "step", "S1", "S2", "loss"]]
