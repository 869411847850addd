"""Convergence and leapfrog steps of default fits without groups, on every real sweep.

A user with one sweep fits it without ``group=``; a grouped sweep's groups are each such a
sweep. This script fits the Chinchilla law at default settings (4 chains x 1000 draws
after 1000 tuning steps) to Epoch's 245 Chinchilla runs (normal and Student-t
likelihoods), to the (Mis)Fitting backtest's 79 fitted runs (the best learning rate per
model and data size, N <= 6e8: :mod:`case_studies.backtests`), and to every group of the
real grouped sweeps of :mod:`grouped_fits` alone, except the Open-Athena sets, whose groups
are single isoFLOP budgets (one compute level cannot separate the N and D terms). One row
per fit, as in :mod:`grouped_fits`; then the median steps per draw and how many fits pass
every convergence check.

Usage::

    python benchmarks/single_fits.py [--draws 1000] [--no-warm]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from grouped_fits import REAL, measure

from bayescale import sweeps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "case_studies"))
import backtests  # the case study's selection of the (Mis)Fitting runs

PER_GROUP = tuple(name for name in REAL if not name.startswith("open_athena"))


def cases():
    """``(name, frame, fit options)`` of every fit, real data only where it is present."""
    if sweeps.SWEEPS["epoch_chinchilla"].available():
        epoch = sweeps.load("epoch_chinchilla")
        yield "epoch_chinchilla", epoch, {}
        yield "epoch_chinchilla student_t", epoch, {"likelihood": "student_t"}
    if sweeps.SWEEPS["misfitting"].available():
        runs, split = backtests.misfitting(sweeps.data_root())
        yield "misfitting backtest", runs[runs["N"] <= split["N"]], {}
    for name in PER_GROUP:
        if sweeps.SWEEPS[name].available():
            df = sweeps.load(name)
            for label, rows in df.groupby("group"):
                yield f"{name} {label}", rows, {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--no-warm", action="store_true", help="time the first fit only")
    args = parser.parse_args()
    rows = []
    for name, df, options in cases():
        row = measure(name, df, args.draws, not args.no_warm, group=None, **options)
        rows.append({k: v for k, v in row.items() if k not in ("groups", "centring")})
        print(pd.DataFrame([rows[-1]]).to_string(index=False, header=len(rows) == 1), flush=True)
    steps = np.median([r["steps_per_draw"] for r in rows])
    print(f"\nmedian {steps:.0f} leapfrog steps per draw over {len(rows)} fits")
    print(f"{sum(r['ok'] for r in rows)} of {len(rows)} fits pass every convergence check")


if __name__ == "__main__":
    main()
