"""Convergence and speed of default grouped fits on every real multi-group sweep.

For each real sweep with groups in ``../shared/data`` (:mod:`bayescale.sweeps`) and for
the simulated sweeps of :data:`SIMULATED`, fits the Chinchilla law with
``bayescale.fit(df, law="chinchilla", group="group")`` at default settings (4 chains x 1000
draws after 1000 tuning steps; ``E, a_ref, b_ref`` separate per group and the exponents
``"pooled"``, :func:`bayescale.pooling.resolve`) and prints one row per sweep:
groups, rows, divergences, max r-hat, min bulk ESS, share of draws at the maximum tree
depth, mean leapfrog steps per draw, the centring chosen per parameter, and wall time
(warm compile cache: each sweep is fitted twice and the second fit is timed).

Usage::

    python benchmarks/grouped_fits.py [--only NAME ...] [--draws 1000] [--no-warm] [--sampler nutpie]
        [--seed 0]
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayescale
from bayescale import sweeps
from bayescale.engine.sample import SAMPLERS
from bayescale.models.chinchilla import Chinchilla

REAL = (
    "porian_owt2",
    "porian_rw",
    "gemstones",
    "gemstones_350b",
    "misfitting",
    "open_athena_epochai_chinchilla",
    "open_athena_ml_scalefit",
    "open_athena_llama_3",
    "open_athena_misfitting",
    "pythia_lambada",
)
"""Real sweeps with groups, Chinchilla-type inputs and a cross-entropy-like loss."""
OPEN_ATHENA = [n for n in REAL if n.startswith("open_athena_")]


def open_athena_by_source():
    """The four Open-Athena isoFLOP sets as one sweep, grouped by source (each its own loss)."""
    frames = [sweeps.load(n).assign(group=n.removeprefix("open_athena_")) for n in OPEN_ATHENA]
    return pd.concat(frames, ignore_index=True)


def _corpus(rng):
    """One corpus's law: floors 1.7-2.3, exponents 0.34/0.37 +- 0.03, coefficients +-30%."""
    return {
        "E": rng.uniform(1.7, 2.3),
        "A": 482 * np.exp(rng.normal(0, 0.3)),
        "B": 2085 * np.exp(rng.normal(0, 0.3)),
        "alpha": 0.34 + rng.normal(0, 0.03),
        "beta": 0.37 + rng.normal(0, 0.03),
    }


def _runs(p, N, D, label, rng, noise):
    loss = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    loss = loss * np.exp(rng.normal(0, noise, len(N)))
    return pd.DataFrame({"N": N, "D": D, "loss": loss, "group": label})


def simulated(groups, seed=0, noise=0.0036, budgets=None, sizes=11):
    """An isoFLOP sweep of ``groups`` corpora: by default 8 budgets to 4.8e19 FLOPs, 11 sizes each.

    Each corpus has its own law (:func:`_corpus`); ``sizes`` model sizes per budget span
    6x either side of the corpus's compute-optimal size. Noise sd 0.0036 in log loss, as
    measured on the real 6-corpus sweep of issue 19, where every corpus pins its own
    exponents to about +-0.01.
    """
    budgets = np.geomspace(1e17, 4.8e19, 8) if budgets is None else np.asarray(budgets)
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        p = _corpus(rng)
        n_opt, _ = Chinchilla.compute_optimal(p, budgets)
        for C, n in zip(budgets, n_opt, strict=True):
            spread = np.linspace(-np.log(6), np.log(6), sizes)
            N = n * np.exp(spread + rng.uniform(-0.05, 0.05, sizes))
            rows.append(_runs(p, N, C / (6 * N), f"corpus{g}", rng, noise))
    return pd.concat(rows, ignore_index=True)


def overtrained(groups, seed=0, noise=0.005):
    """Small models of ``groups`` corpora at 0.25-32x Chinchilla's 20 tokens per parameter.

    Four sizes (2e7-2e8 parameters) at eight token multiples each: the shape of issue 20's
    sweep C (3 corpora, 95 runs), where over-training, not compute, is what varies.
    """
    rng = np.random.default_rng(seed)
    multiples = 20 * 2.0 ** np.arange(-2, 6)
    rows = []
    for g in range(groups):
        p = _corpus(rng)
        for n in (2e7, 5e7, 1e8, 2e8):
            N = np.full(len(multiples), n)
            rows.append(_runs(p, N, multiples * N, f"corpus{g}", rng, noise))
    return pd.concat(rows, ignore_index=True)


SIMULATED = {
    **{f"sim{g}": (lambda g=g: simulated(g, seed=g)) for g in (2, 4, 6, 10)},
    "ladders3": lambda: simulated(
        3, seed=3, noise=0.005, budgets=[1e18, 3e18, 1e19, 3e19], sizes=10
    ),
    "overtrained3": lambda: overtrained(3, seed=3),
}
"""Simulated sweeps by name: isoFLOP sweeps of 2-10 corpora (issue 19's 6-corpus shape),
issue 20's sweep B (3 corpora, 4 isoFLOP ladders to 3e19 FLOPs, 120 runs) and sweep C."""


def measure(name, df, draws, warm, group="group", **options):
    """One row of the table: a default fit of ``df`` by ``group`` (timed warm if ``warm``).

    ``group=None`` fits ``df`` as one sweep; ``options`` go to :func:`bayescale.fit`.
    """
    kwargs = {"law": "chinchilla", "group": group, "draws": draws, **options}
    columns = ["N", "D", "loss", *([group] if group else [])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # reported in the row
        start = time.perf_counter()
        fit = bayescale.fit(df[columns], **kwargs)
        seconds = time.perf_counter() - start
        if warm:
            start = time.perf_counter()
            fit = bayescale.fit(df[columns], **kwargs)
            seconds = time.perf_counter() - start
    d = fit.diagnostics
    forms = {
        "pooled_centred": "c",
        "pooled_noncentred": "n",
        "pooled_partial": "p",
        "separate": "s",
        "shared": "=",
    }
    return {
        "sweep": name,
        "groups": len(fit.group_labels),
        "rows": len(df),
        "divergences": d.divergences,
        "max_r_hat": round(d.max_r_hat, 4),
        "min_ess_bulk": round(d.min_ess_bulk),
        "at_max_depth": round(d.max_depth_share, 3),
        "steps_per_draw": round(d.mean_steps),
        "centring": "".join(forms.get(m, "?") for m in fit.pooling.values()),
        "seconds": round(seconds, 1),
        "ok": d.ok,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="sweep names (real or SIMULATED)")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--no-warm", action="store_true", help="time the first fit only")
    parser.add_argument("--sampler", default="numpyro", choices=SAMPLERS)
    parser.add_argument("--seed", type=int, default=0, help="random_seed of every fit")
    args = parser.parse_args()
    cases = dict(SIMULATED)
    cases.update({n: (lambda n=n: sweeps.load(n)) for n in REAL if sweeps.SWEEPS[n].available()})
    if all(sweeps.SWEEPS[n].available() for n in OPEN_ATHENA):
        cases["open_athena_by_source"] = open_athena_by_source
    names = args.only or list(cases)
    rows = []
    for name in names:
        rows.append(
            measure(
                name,
                cases[name](),
                args.draws,
                not args.no_warm,
                sampler=args.sampler,
                random_seed=args.seed,
            )
        )
        print(pd.DataFrame([rows[-1]]).to_string(index=False, header=len(rows) == 1), flush=True)
    print("\ncentring: one letter per parameter (E, a_ref, b_ref, alpha, beta): c centred, n not")
    print("p: conditionally non-centred on each group's own estimate (bayescale.engine.geometry)")
    print("s: separate per group (the terms sampled at each group's centre), = shared")
    print(f"{sum(r['ok'] for r in rows)} of {len(rows)} sweeps pass every convergence check")


if __name__ == "__main__":
    main()
