"""Throughput of a batch of fits: a serial loop against ``bayescale.fit_many`` on local Dask workers.

Fits ``--fits`` (40) Chinchilla laws, each to its own simulated 90-run sweep
(:func:`bayescale.simulate.chinchilla_sweep` with seeds 0, 1, ...), at 4 chains x 1000
draws after 1000 tuning steps (``--chains``, ``--draws`` and ``--tune`` shrink them):

1. serial: ``bayescale.fit`` one task after another in this process, after an untimed
   warm-up fit (imports done, compiled program in memory);
2. ``fit_many`` on a new local cluster of each ``--workers`` count (single-threaded worker
   processes, as ``fit_many`` starts them): the cluster's start, the batch on its fresh
   workers (each worker's first fit imports bayescale and loads the compiled program from
   the disk cache), then the same batch again on the now warm workers.

Reported per configuration, as medians over ``--repeats``: wall times, fits per minute
end to end (cluster start + fresh batch: what one ``fit_many(tasks)`` call gives) and
warm (the rate a long batch settles at), and the peak resident memory of each worker
(``resource.getrusage`` in the worker: its high-water mark over the batches). The
overhead per task is the warm 1-worker batch's time per fit minus the serial time per
fit: shipping the data, scheduling, and the fit's trip as a saved-fit file. Every
batch's posteriors are checked bit-identical to the serial fits.

The machine is often shared and its speed drifts between minutes: compare rows of one
run, and take repeats.

Usage::

    python benchmarks/batch_throughput.py [--fits 40] [--repeats 3] [--workers 1 2]
        [--chains 4] [--draws 1000] [--tune 1000]
"""

import argparse
import os
import resource
import statistics
import time
import warnings

from distributed import Client, LocalCluster

import bayescale
from bayescale.simulate import chinchilla_sweep


def make_tasks(n, settings):
    return [
        {
            "data": chinchilla_sweep(random_seed=seed)[["N", "D", "loss"]],
            "law": "chinchilla",
            "random_seed": seed,
            **settings,
        }
        for seed in range(n)
    ]


def peak_rss_mib():
    """Peak resident memory of the calling process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def identical(fits, reference):
    return all(a.posterior.identical(b.posterior) for a, b in zip(fits, reference, strict=True))


def serial(tasks):
    bayescale.fit(**tasks[0])  # warm-up, untimed
    start = time.perf_counter()
    fits = [bayescale.fit(**task) for task in tasks]
    return time.perf_counter() - start, fits


def on_cluster(tasks, workers, reference):
    """Start, fresh batch and warm batch seconds, peak MiB per worker, bit-identical."""
    start = time.perf_counter()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        times = [time.perf_counter() - start]
        same = True
        for _ in ("fresh", "warm"):
            start = time.perf_counter()
            fits = bayescale.fit_many(tasks, client=client, progress=False)
            times.append(time.perf_counter() - start)
            same &= identical(fits, reference)
        memory = list(client.run(peak_rss_mib).values())
    return (*times, memory, same)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    args = parser.parse_args()
    warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # short check runs
    settings = {"chains": args.chains, "draws": args.draws, "tune": args.tune}
    tasks = make_tasks(args.fits, settings)
    n = len(tasks)

    runs = [serial(tasks) for _ in range(args.repeats)]
    serial_s = statistics.median(t for t, _ in runs)
    reference = runs[0][1]
    print(
        f"{n} Chinchilla fits of 90 runs, {args.chains} chains x {args.draws} draws "
        f"(+{args.tune} tune), {os.cpu_count()} CPUs, medians of {args.repeats} repeat(s)"
    )
    print(
        f"{'':18}{'start s':>9}{'batch s':>9}{'fits/min':>10}{'warm s':>9}"
        f"{'warm fits/min':>15}{'peak MiB/proc':>15}  identical"
    )
    print(
        f"{'serial':18}{'':>9}{serial_s:9.1f}{60 * n / serial_s:10.1f}{'':>9}{'':>15}"
        f"{peak_rss_mib():15.0f}  (reference)"
    )
    warm_one = None
    for workers in args.workers:
        results = [on_cluster(tasks, workers, reference) for _ in range(args.repeats)]
        start_s, fresh_s, warm_s = (statistics.median(r[i] for r in results) for i in range(3))
        memory = statistics.median(max(r[3]) for r in results)
        same = all(r[4] for r in results)
        if workers == 1:
            warm_one = warm_s
        label = f"fit_many {workers} worker{'s' * (workers > 1)}"
        print(
            f"{label:18}{start_s:9.1f}{fresh_s:9.1f}{60 * n / (start_s + fresh_s):10.1f}"
            f"{warm_s:9.1f}{60 * n / warm_s:15.1f}{memory:15.0f}  {same}"
        )
    print("fits/min: end to end (start + batch on fresh workers); warm: the same batch again")
    if warm_one is not None:
        overhead = (warm_one - serial_s) / n
        print(f"overhead per task (warm 1 worker - serial, per fit): {1000 * overhead:.0f} ms")


if __name__ == "__main__":
    main()
