"""Simulated scaling sweeps with known truth, for the demo, tests and calibration checks."""

import numpy as np
import pandas as pd

from bayescale.arguments import check_count, seeded
from bayescale.data import numeric_column
from bayescale.errors import SpecError
from bayescale.laws import get_law
from bayescale.models.chinchilla import Chinchilla

CHINCHILLA_TRUTH = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}
"""Besiroglu et al. (2024)'s replication of Chinchilla, rounded: a realistic truth."""


def chinchilla_loss(params, N, D):
    """Noise-free Chinchilla loss ``E + A/N^alpha + B/D^beta`` (numpy)."""
    return (
        params["E"]
        + params["A"] / np.power(N, params["alpha"])
        + params["B"] / np.power(D, params["beta"])
    )


def chinchilla_sweep(
    random_seed=0,
    params=None,
    budgets=None,
    sizes_per_budget=10,
    noise=0.01,
    flops_per_token=6.0,
):
    """An isoFLOP sweep like Hoffmann et al.'s Approach 2/3 design.

    At each compute budget, ``sizes_per_budget`` model sizes are spread log-uniformly
    (with jitter) over 1/8x to 8x the true compute-optimal size; tokens follow from
    ``D = C / (k N)``. Losses get multiplicative log-normal noise of scale ``noise``
    (0.01, i.e. about 1%: the seed-to-seed spread of final LLM losses; the Chinchilla
    reconstruction's residual scale is 0.007).

    Parameters
    ----------
    random_seed : int
    params : dict, optional
        ``E, A, B, alpha, beta``; default :data:`CHINCHILLA_TRUTH`.
    budgets : array_like, optional
        FLOP budgets; default 9 budgets from 6e18 to 3e21 (Chinchilla's isoFLOP range).
    sizes_per_budget : int
    noise : float
        Standard deviation of log-loss noise.
    flops_per_token : float

    Returns
    -------
    pandas.DataFrame
        Columns ``N, D, C, loss`` and ``true_loss``.
    """
    rng = seeded(random_seed)
    params = _checked_params(CHINCHILLA_TRUTH if params is None else params, CHINCHILLA_TRUTH)
    budgets = np.geomspace(6e18, 3e21, 9) if budgets is None else np.asarray(budgets, float)
    if budgets.ndim != 1 or not len(budgets) or not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise SpecError(f"budgets must be positive FLOP counts, got {budgets!r}")
    if not (np.isfinite(flops_per_token) and flops_per_token > 0):
        raise SpecError(f"flops_per_token must be a positive number, got {flops_per_token!r}")
    check_count(sizes_per_budget, "sizes_per_budget")
    _check_noise(noise)
    n_opt, _ = Chinchilla.compute_optimal(params, budgets, flops_per_token)
    offsets = np.linspace(-np.log(8), np.log(8), sizes_per_budget)
    rows = []
    for C, n_star in zip(budgets, n_opt, strict=True):
        jitter = rng.uniform(-0.1, 0.1, sizes_per_budget)
        N = n_star * np.exp(offsets + jitter)
        rows.append(pd.DataFrame({"N": N, "D": C / (flops_per_token * N), "C": C}))
    df = pd.concat(rows, ignore_index=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["true_loss"] = chinchilla_loss(params, df["N"], df["D"])
    _check_loss(df["true_loss"], "chinchilla", params)
    df["loss"] = df["true_loss"] * np.exp(rng.normal(0.0, noise, len(df)))
    return df


def from_law(law, params, inputs, noise=0.01, random_seed=0):
    """Simulate observations of any law at given free parameters.

    Parameters
    ----------
    law : ScalingLaw
    params : dict
        Free parameters of ``law`` (reference-scale parameterisation).
    inputs : dict of str to array_like
        Raw inputs; the reference scales are computed from them as a fit would.
    noise : float
        Standard deviation of multiplicative log-normal noise.
    random_seed : int

    Returns
    -------
    pandas.DataFrame
        Inputs, ``true_loss`` and ``loss``.
    """
    law = get_law(law)
    params = _checked_params(params, law.parameters)
    if missing := [k for k in law.inputs if k not in inputs]:
        raise SpecError(f"inputs lack {missing} of law {law.name!r} (inputs {list(law.inputs)})")
    _check_noise(noise)
    rng = seeded(random_seed)
    df = pd.DataFrame({k: np.asarray(v, float) for k, v in inputs.items()})
    for k in law.inputs:
        numeric_column(df, k, f"input {k}", law.input_support(k))
    log_ref = law.log_reference(df)
    with np.errstate(invalid="ignore", divide="ignore"):
        df["true_loss"] = law.mean(params, {k: df[k].to_numpy() for k in law.inputs}, log_ref)
    _check_loss(df["true_loss"], law.name, params)
    df["loss"] = df["true_loss"] * np.exp(rng.normal(0.0, noise, len(df)))
    return df


def _checked_params(params, names):
    """``params`` as a dict with exactly the keys ``names`` (a clear error else)."""
    params = dict(params)
    missing, extra = [k for k in names if k not in params], [k for k in params if k not in names]
    if missing or extra:
        raise SpecError(
            f"params must give exactly {list(names)}; missing {missing}, unknown {extra}"
        )
    return params


def _check_loss(loss, name, params):
    if not np.all(np.isfinite(loss) & (loss > 0)):
        raise SpecError(
            f"law {name!r} at {params} gives no finite positive loss at some inputs: "
            "check the parameters against the law's parameter ranges (its priors)"
        )


def _check_noise(noise):
    if not (np.isfinite(noise) and noise >= 0):
        raise SpecError(f"noise (sd of log loss) must be a number >= 0, got {noise!r}")
