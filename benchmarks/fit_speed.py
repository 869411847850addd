"""Wall time of the Chinchilla case-study fit versus the Huber/L-BFGS/bootstrap baseline.

Measures, on the 240-point Epoch data (4 chains x 1000 draws after 1000 tuning steps):

1. a fresh process (interpreter start, imports, compilation, sampling) with empty
   compilation caches;
2. a fresh process with warm caches (the previous run's);
3. a second fit of the same law on new data in the same process (a bootstrap resample of
   the rows), for numpyro (the default) and nutpie (compiled once, data swapped in);
4. a grouped fit, warm: the simulated six-corpus isoFLOP sweep of
   ``benchmarks/grouped_fits.py`` (528 runs), fitted again in the same process;
5. the baseline: grid of L-BFGS starts plus ``--bootstrap`` refits (4,000 by default).

The machine's speed drifts by 20-30% between minutes (it is a shared VM), so the
bayescale timings are medians over ``--repeat`` runs (each cold run gets new empty caches).
It ends with issue 19's targets beside each median, the baseline's ratio to it, and the
leapfrog steps per draw of each fit (goal: at most 127).

Usage::

    python benchmarks/fit_speed.py [--bootstrap 4000] [--sampler numpyro] [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from grouped_fits import simulated

from bayescale import sweeps

TARGETS = {
    "fresh process, empty caches": 5.0,
    "fresh process, warm caches": 2.0,
    "next fit on new data, same process": 1.0,
    "grouped six-corpus fit, warm, same process": 10.0,
}
"""Issue 19's speed targets, in seconds."""
STEPS_GOAL = 127


def load_data():
    """The case study's 240 runs: Epoch's Chinchilla data less Besiroglu et al.'s 5 dropped."""
    df = sweeps.load("epoch_chinchilla")
    return df.loc[~df["besiroglu_dropped"], ["N", "D", "loss"]].reset_index(drop=True)


def child(sampler):
    """One fit in this (fresh) process, printing its steps per draw; the parent times it."""
    import bayescale

    fit = bayescale.fit(load_data(), law="chinchilla", y="loss", random_seed=0, sampler=sampler)
    print(fit.diagnostics.mean_steps)


def fresh_process(sampler, env):
    """``(seconds, steps per draw)`` of a fresh process's fit."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child", sampler],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, float(done.stdout.split()[-1])


def cold_and_warm(sampler):
    """A fresh process with new empty caches, then a fresh process with those caches."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(
            os.environ,
            BAYESCALE_CACHE_DIR=cache,
            PYTENSOR_FLAGS=f"base_compiledir={cache}/pytensor",
        )
        return fresh_process(sampler, env), fresh_process(sampler, env)


def refit_times(sampler, repeat, df=None, **options):
    """First fit, then the median seconds and steps per draw of ``repeat`` fits on bootstrap resamples, in this process."""
    import bayescale

    df = load_data() if df is None else df
    kwargs = dict(law="chinchilla", y="loss", random_seed=0, sampler=sampler, **options)
    start = time.perf_counter()
    bayescale.fit(df, **kwargs)
    first = time.perf_counter() - start
    refits, steps = [], []
    for seed in range(1, repeat + 1):
        resample = df.sample(len(df), replace=True, random_state=seed)
        start = time.perf_counter()
        fit = bayescale.fit(resample, **kwargs)
        refits.append(time.perf_counter() - start)
        steps.append(fit.diagnostics.mean_steps)
    return first, statistics.median(refits), statistics.median(steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=4000)
    parser.add_argument("--sampler", default="numpyro")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from bayescale.evaluation.baselines import huber_fit

    runs = [cold_and_warm(args.sampler) for _ in range(args.repeat)]
    medians = {}
    for i, label in enumerate(("empty caches", "warm caches")):
        times = [r[i][0] for r in runs]
        medians[f"fresh process, {label}"] = (
            statistics.median(times),
            statistics.median(r[i][1] for r in runs),
        )
        listed = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"{args.sampler}: fresh process, {label}: median {statistics.median(times):5.1f} s ({listed})"
        )
    for sampler in ("numpyro", "nutpie"):
        first, second, steps = refit_times(sampler, args.repeat)
        print(
            f"{sampler}: in-process first fit {first:6.1f} s, next fits on new data "
            f"(median of {args.repeat}) {second:6.1f} s"
        )
        if sampler == args.sampler:
            medians["next fit on new data, same process"] = (second, steps)
    first, second, steps = refit_times(
        args.sampler, args.repeat, simulated(6, seed=6), group="group"
    )
    print(
        f"grouped six-corpus fit: first {first:6.1f} s, next (median of {args.repeat}) {second:6.1f} s"
    )
    medians["grouped six-corpus fit, warm, same process"] = (second, steps)
    start = time.perf_counter()
    base = huber_fit(load_data(), law="chinchilla", y="loss", n_bootstrap=args.bootstrap)
    baseline = time.perf_counter() - start
    print(
        f"baseline: {base.n_starts} L-BFGS starts + {args.bootstrap} bootstrap "
        f"refits: {baseline:6.1f} s"
    )
    print(f"\n{'target (issue 19)':44s} {'median':>8s} {'goal':>6s}      baseline / it  steps/draw")
    for label, goal in TARGETS.items():
        seconds, steps = medians[label]
        verdict = "met" if seconds <= goal else "NOT met"
        print(
            f"{label:44s} {seconds:7.1f}s {goal:5.0f}s {verdict:>7s} {baseline / seconds:9.1f}x"
            f"  {steps:6.0f} ({'met' if steps <= STEPS_GOAL else 'NOT met'}: <= {STEPS_GOAL})"
        )


if __name__ == "__main__":
    main()
