"""Wall time of the Chinchilla case-study fit versus the Huber/L-BFGS/bootstrap baseline.

Measures, on the 240-point Epoch data (4 chains x 1000 draws after 1000 tuning steps):

1. a fresh process (interpreter start, imports, compilation, sampling) with empty
   compilation caches;
2. a fresh process with warm caches (the previous run's);
3. a second fit of the same law on new data in the same process (a bootstrap resample of
   the rows), for numpyro (the default) and nutpie (compiled once, data swapped in);
4. the baseline: grid of L-BFGS starts plus ``--bootstrap`` refits (4,000 by default).

Usage::

    python benchmarks/fit_speed.py [--bootstrap 4000] [--sampler numpyro]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "case_studies"))

from chinchilla_replication import INPUTS, load_data  # noqa: E402


def child(sampler):
    """One fit in this (fresh) process; the parent times the whole process."""
    import bayescale

    bayescale.fit(
        load_data(), law="chinchilla", y="loss", inputs=INPUTS, random_seed=0, sampler=sampler
    )


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


def refit_times(sampler):
    """First fit, then a second fit on a bootstrap resample, in this process."""
    import bayescale

    df = load_data()
    kwargs = dict(law="chinchilla", y="loss", inputs=INPUTS, random_seed=0, sampler=sampler)
    start = time.perf_counter()
    bayescale.fit(df, **kwargs)
    first = time.perf_counter() - start
    resample = df.sample(len(df), replace=True, random_state=1)
    start = time.perf_counter()
    bayescale.fit(resample, **kwargs)
    return first, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=4000)
    parser.add_argument("--sampler", default="numpyro")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from bayescale.baselines import huber_fit

    with tempfile.TemporaryDirectory() as cache:
        env = dict(
            os.environ,
            BAYESCALE_CACHE_DIR=cache,
            PYTENSOR_FLAGS=f"base_compiledir={cache}/pytensor",
        )
        cold = fresh_process(args.sampler, env)
        warm = fresh_process(args.sampler, env)
    print(f"{args.sampler}: fresh process, empty caches: {cold:6.1f} s")
    print(f"{args.sampler}: fresh process, warm caches:  {warm:6.1f} s")
    for sampler in ("numpyro", "nutpie"):
        first, second = refit_times(sampler)
        print(
            f"{sampler}: in-process first fit {first:6.1f} s, second fit on new data "
            f"{second:6.1f} s"
        )
    start = time.perf_counter()
    base = huber_fit(
        load_data(), law="chinchilla", y="loss", inputs=INPUTS, n_bootstrap=args.bootstrap
    )
    baseline = time.perf_counter() - start
    print(
        f"baseline: {base.settings['n_starts']} L-BFGS starts + {args.bootstrap} bootstrap "
        f"refits: {baseline:6.1f} s"
    )
    print(f"ratio baseline / bayescale (fresh process, empty caches): {baseline / cold:5.1f}x")
    print(f"ratio baseline / bayescale (fresh process, warm caches):  {baseline / warm:5.1f}x")


if __name__ == "__main__":
    main()
