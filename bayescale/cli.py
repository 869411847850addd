"""Command line: ``bayescale demo``, ``bayescale fit``, ``bayescale laws``."""

import argparse
import sys

import pandas as pd


def _sampling_args(parser, draws=1000, tune=1000, chains=4):
    parser.add_argument("--draws", type=int, default=draws)
    parser.add_argument("--tune", type=int, default=tune)
    parser.add_argument("--chains", type=int, default=chains)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="numpyro", choices=["numpyro", "nutpie", "pymc"])
    parser.add_argument("--target-accept", type=float, default=0.8)


def demo(args):
    """Simulate a Chinchilla sweep, fit it, and check a 100x extrapolation against truth."""
    import bayescale
    from bayescale.models.chinchilla import Chinchilla
    from bayescale.simulate import CHINCHILLA_TRUTH, chinchilla_loss, chinchilla_sweep

    df = chinchilla_sweep(random_seed=args.seed)
    print(
        f"Simulated isoFLOP sweep: {len(df)} runs, {df['C'].nunique()} budgets "
        f"{df['C'].min():.1e}-{df['C'].max():.1e} FLOPs, N {df['N'].min():.2g}-"
        f"{df['N'].max():.2g}, 1% log-normal noise (seed {args.seed})."
    )
    print("True parameters:", ", ".join(f"{k}={v:g}" for k, v in CHINCHILLA_TRUTH.items()))
    fit = bayescale.fit(
        df[["N", "D", "loss"]],
        law="chinchilla",
        y="loss",
        random_seed=args.seed,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        sampler=args.sampler,
        target_accept=args.target_accept,
    )
    table = fit.summary(ci=0.9)
    table.insert(0, "truth", pd.Series(CHINCHILLA_TRUTH))
    with pd.option_context(
        "display.float_format", "{:.4g}".format, "display.width", 160, "display.max_columns", 20
    ):
        print("\nPosterior (90% equal-tailed intervals):")
        print(table)
    print("\nDiagnostics:", fit.diagnostics)
    target_c = 100 * df["C"].max()
    n_star, d_star = Chinchilla.compute_optimal(CHINCHILLA_TRUTH, target_c)
    truth = float(chinchilla_loss(CHINCHILLA_TRUTH, n_star, d_star))
    pred = fit.predict(pd.DataFrame({"N": [n_star], "D": [d_star]}), ci=0.9).iloc[0]
    inside = pred["lower"] <= truth <= pred["upper"]
    print(
        f"\nExtrapolation to C = {target_c:.1e} FLOPs (100x the largest run), at the true "
        f"compute-optimal N = {n_star:.3g}, D = {d_star:.3g}:\n"
        f"  predicted loss {pred['median']:.4f}, 90% interval [{pred['lower']:.4f}, "
        f"{pred['upper']:.4f}]; true loss {truth:.4f}: "
        f"{'inside' if inside else 'OUTSIDE'} the interval"
    )
    return 0 if fit.diagnostics.ok else 1


def fit_command(args):
    """Fit a law to a CSV and print the posterior table and diagnostics."""
    import bayescale

    inputs = {}
    for item in args.input:
        name, _, column = item.partition("=")
        if not column:
            raise SystemExit(f"--input expects NAME=COLUMN, got {item!r}")
        inputs[name] = column
    fit = bayescale.fit(
        args.csv,
        law=args.law,
        y=args.y,
        inputs=inputs,
        likelihood=args.likelihood,
        random_seed=args.seed,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        sampler=args.sampler,
        target_accept=args.target_accept,
    )
    with pd.option_context(
        "display.float_format", "{:.4g}".format, "display.width", 160, "display.max_columns", 20
    ):
        print(fit.summary(ci=args.ci))
    print("\nDiagnostics:", fit.diagnostics)
    if args.save:
        fit.save(args.save)
        print(f"saved to {args.save}")
    return 0 if fit.diagnostics.ok else 1


def laws_command(args):
    """List the registered laws with their inputs and parameters."""
    import bayescale

    for name in bayescale.laws():
        law = bayescale.get_law(name)
        print(
            f"{name:12s} inputs {', '.join(law.inputs):8s} parameters {', '.join(law.parameters)}"
        )
    return 0


def main(argv=None):
    """Entry point of the ``bayescale`` command."""
    parser = argparse.ArgumentParser(prog="bayescale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="simulate a Chinchilla sweep, fit it, extrapolate 100x")
    _sampling_args(p_demo)
    p_demo.set_defaults(func=demo)
    p_fit = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    p_fit.add_argument("csv")
    p_fit.add_argument("--law", default="chinchilla")
    p_fit.add_argument("--y", default="loss")
    p_fit.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=COLUMN",
        help="map a law input to a column, e.g. --input 'N=Model Size'",
    )
    p_fit.add_argument(
        "--likelihood",
        default="normal",
        choices=["normal", "student_t", "ou_normal"],
        help="ou_normal: noise correlated along one curve's checkpoints (use --target-accept 0.95)",
    )
    p_fit.add_argument("--ci", type=float, default=0.9)
    p_fit.add_argument("--save", help="write the fit to this netCDF file")
    _sampling_args(p_fit)
    p_fit.set_defaults(func=fit_command)
    sub.add_parser("laws", help="list the scaling-law families").set_defaults(func=laws_command)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
