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


def main(doc, data, run, argv=None):
    """Command line ``--draws --chains --seed --data`` around ``run(draws, chains, seed, data)``.

    ``run`` returns a tuple whose last item says whether every check passed. Exit status:
    0 when they did, 1 when not, 2 when the data folder is missing.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=data)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"data not found: {args.data} (expected ../shared/data beside the checkout)")
        return 2
    return 0 if run(args.draws, args.chains, args.seed, args.data)[-1] else 1
