"""What every case study shares: printing acceptance checks and the command line."""

import argparse
from pathlib import Path


def report(checks):
    """Print ``(description, passed)`` pairs as PASS/FAIL lines; True if all passed."""
    ok = True
    for text, passed in checks:
        print(f"  [{'PASS' if passed else 'FAIL'}] {text}")
        ok &= bool(passed)
    return ok


def verdict(ok):
    """The closing line every case study prints."""
    print("\nALL ACCEPTANCE CHECKS PASS" if ok else "\nSOME ACCEPTANCE CHECKS FAILED")


def converged(name, fit):
    """The strict convergence check: 0 divergences, max r-hat <= 1.01, bulk ESS >= 400."""
    d = fit.diagnostics
    return (
        f"{name}: {d.divergences} divergences == 0, max r_hat {d.max_r_hat:.4f} <= 1.01, "
        f"min ess_bulk {d.min_ess_bulk:.0f} >= 400",
        d.divergences == 0 and d.max_r_hat <= 1.01 and d.min_ess_bulk >= 400,
    )


def main(doc, data, run, argv=None, draws=1000, **options):
    """Command line ``--draws --chains --seed --data`` around ``run(draws, chains, seed, data)``.

    ``options`` adds case-specific arguments, ``name=dict(argparse keywords)``; their values
    are passed to ``run`` by name. ``run`` returns a tuple whose last item says whether
    every check passed. Exit status: 0 when they did, 1 when not, 2 when the data folder is
    missing.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--draws", type=int, default=draws)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=data)
    for name, spec in options.items():
        parser.add_argument(f"--{name}", **spec)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"data not found: {args.data} (expected ../shared/data beside the checkout)")
        return 2
    extra = {name: getattr(args, name) for name in options}
    return 0 if run(args.draws, args.chains, args.seed, args.data, **extra)[-1] else 1
