"""How often does a recovery fit fail the convergence checks, over many seeds.

The slow lane's recovery tests require every fit to pass r-hat <= 1.01 with no
divergences. On ridge-shaped posteriors (broken power laws) that holds or fails with the
random stream, so a change of sampler driver can flip a test without changing the rate.
This script measures the rate: the one-break BNSL design of
``tests/test_law_broken_power_law.py::test_recovery_one_visible_break`` (40 points, noise
0.01, 4 chains x 1000 draws after 1000 tuning steps), refitted for ``--seeds`` seeds.

Usage::

    python benchmarks/convergence_rates.py [--seeds 20] [--draws 1000] [--tune 1000]
"""

import argparse
import warnings

import bayescale
from bayescale.testing import one_break_curve  # the recovery test's own design


def one_break_fit(seed, draws, tune):
    """The recovery test's data and fit for ``seed``; returns its diagnostics."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # counted below
        fit = bayescale.fit(
            one_break_curve(seed),
            law="broken_power_law",
            random_seed=seed,
            draws=draws,
            tune=tune,
        )
        return fit.diagnostics


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    args = parser.parse_args()
    rows = [one_break_fit(seed, args.draws, args.tune) for seed in range(args.seeds)]
    for seed, d in enumerate(rows):
        print(f"seed {seed:3d}: max r-hat {d.max_r_hat:.4f}, divergences {d.divergences}")
    failed = sum(not d.ok for d in rows)
    print(f"{failed}/{len(rows)} fits fail the convergence checks")


if __name__ == "__main__":
    main()
