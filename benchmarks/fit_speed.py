"""Wall time of the Chinchilla case-study fit versus the Huber/L-BFGS/bootstrap baseline.

Measures, on the 240-point Epoch data (4 chains x 1000 draws after 1000 tuning steps):

1. a fresh process (interpreter start, imports, compilation, sampling) with empty
   compilation caches;
2. a fresh process with warm caches (the previous run's);
3. a second fit of the same law on new data in the same process (a bootstrap resample of
   the rows), for numpyro (the default) and nutpie (compiled once, data swapped in);
4. the baseline: grid of L-BFGS starts plus ``--bootstrap`` refits (4,000 by default).

The machine's speed drifts by 20-30% between minutes (it is a shared VM), so the
bayescale timings are medians over ``--repeat`` runs (each cold run gets new empty caches).

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

from bayescale import sweeps


def load_data():
    """The case study's 240 runs: Epoch's Chinchilla data less Besiroglu et al.'s 5 dropped."""
    df = sweeps.load("epoch_chinchilla")
    return df.loc[~df["besiroglu_dropped"], ["N", "D", "loss"]].reset_index(drop=True)


def child(sampler):
    """One fit in this (fresh) process; the parent times the whole process."""
    import bayescale

    bayescale.fit(load_data(), law="chinchilla", y="loss", random_seed=0, sampler=sampler)


def fresh_process(sampler, env):
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--child", sampler],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def cold_and_warm(sampler):
    """A fresh process with new empty caches, then a fresh process with those caches."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(
            os.environ,
            BAYESCALE_CACHE_DIR=cache,
            PYTENSOR_FLAGS=f"base_compiledir={cache}/pytensor",
        )
        return fresh_process(sampler, env), fresh_process(sampler, env)


def refit_times(sampler, repeat):
    """First fit, then the median of ``repeat`` fits on bootstrap resamples, in this process."""
    import bayescale

    df = load_data()
    kwargs = dict(law="chinchilla", y="loss", random_seed=0, sampler=sampler)
    start = time.perf_counter()
    bayescale.fit(df, **kwargs)
    first = time.perf_counter() - start
    refits = []
    for seed in range(1, repeat + 1):
        resample = df.sample(len(df), replace=True, random_state=seed)
        start = time.perf_counter()
        bayescale.fit(resample, **kwargs)
        refits.append(time.perf_counter() - start)
    return first, statistics.median(refits)


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
    cold, warm = (statistics.median(times) for times in zip(*runs, strict=True))
    for label, times in (
        ("empty caches", [r[0] for r in runs]),
        ("warm caches", [r[1] for r in runs]),
    ):
        listed = ", ".join(f"{t:.1f}" for t in times)
        print(
            f"{args.sampler}: fresh process, {label}: median {statistics.median(times):5.1f} s ({listed})"
        )
    for sampler in ("numpyro", "nutpie"):
        first, second = refit_times(sampler, args.repeat)
        print(
            f"{sampler}: in-process first fit {first:6.1f} s, next fits on new data "
            f"(median of {args.repeat}) {second:6.1f} s"
        )
    start = time.perf_counter()
    base = huber_fit(load_data(), law="chinchilla", y="loss", n_bootstrap=args.bootstrap)
    baseline = time.perf_counter() - start
    print(
        f"baseline: {base.n_starts} L-BFGS starts + {args.bootstrap} bootstrap "
        f"refits: {baseline:6.1f} s"
    )
    print(
        f"ratio baseline / bayescale (fresh process, empty caches, median): {baseline / cold:5.1f}x"
    )
    print(
        f"ratio baseline / bayescale (fresh process, warm caches, median):  {baseline / warm:5.1f}x"
    )


if __name__ == "__main__":
    main()
