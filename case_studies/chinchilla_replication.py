"""Chinchilla replication: a Bayesian fit of Hoffmann et al.'s Approach 3 on the real data.

Data: the Epoch AI reconstruction of Hoffmann et al. (2022) Figure 4
(``../shared/data/epoch_analyzing_chinchilla/svg_extracted_data.csv``), with the 5
highest-loss points dropped as Besiroglu et al. (2024) did: 240 runs. N = ``Model Size``,
C = ``Training FLOP``, D = C / (6N).

Prints posterior medians and 95% intervals for both likelihoods (normal, and the robust
Student-t that plays the role of the Huber loss) beside Besiroglu et al.'s and Hoffmann et
al.'s published values, says which published values the posterior is consistent with, runs
the Huber/L-BFGS baseline on the same data, and checks the acceptance criteria
(medians of alpha, beta, E inside Besiroglu et al.'s bootstrap 95% CIs; max r-hat <= 1.01;
0 divergences; bulk ESS >= 400). Exits non-zero if a check fails.

References
----------
Hoffmann et al. (2022), arXiv:2203.15556. Besiroglu et al. (2024), arXiv:2404.10102.

Usage::

    python case_studies/chinchilla_replication.py [--draws 1000] [--chains 4] [--bootstrap 0]
"""

import argparse
import sys
import time
from pathlib import Path

import case_common
import pandas as pd

import bayescale
from bayescale.evaluation.baselines import huber_fit

DATA = (
    Path(__file__).resolve().parents[2]
    / "shared/data/epoch_analyzing_chinchilla/svg_extracted_data.csv"
)
INPUTS = {"N": "Model Size", "C": "Training FLOP"}
PARAMS = ["E", "A", "B", "alpha", "beta"]
BESIROGLU = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
BESIROGLU_CI = {
    "E": (1.769, 1.871),
    "A": (285, 744),
    "B": (1042, 5810),
    "alpha": (0.317, 0.373),
    "beta": (0.331, 0.415),
}
BESIROGLU_EXACT = {"E": 1.8172, "A": 477.84, "B": 2143.86, "alpha": 0.3473, "beta": 0.3672}
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def load_data(path=DATA):
    """The 240-point data set: drop the 5 highest losses, as Besiroglu et al. did."""
    df = pd.read_csv(path)
    return df.sort_values("loss").iloc[:-5].reset_index(drop=True)


def acceptance(fit):
    """The issue's acceptance checks, as (description, passed) pairs."""
    table = fit.summary(ci=0.95)
    d = fit.diagnostics
    checks = [
        (
            f"median {p} = {table.loc[p, 'median']:.4f} inside Besiroglu 95% CI {BESIROGLU_CI[p]}",
            BESIROGLU_CI[p][0] <= table.loc[p, "median"] <= BESIROGLU_CI[p][1],
        )
        for p in ("alpha", "beta", "E")
    ]
    checks += [
        (f"max r_hat {d.max_r_hat:.4f} <= 1.01", d.max_r_hat <= 1.01),
        (f"{d.divergences} divergences == 0", d.divergences == 0),
        (f"min ess_bulk {d.min_ess_bulk:.0f} >= 400", d.min_ess_bulk >= 400),
    ]
    return checks


def comparison_table(fit):
    """Posterior median and 95% interval beside the published values."""
    table = fit.summary(ci=0.95).loc[PARAMS, ["median", "lower", "upper"]]
    for label, values in (("Besiroglu", BESIROGLU), ("Hoffmann", HOFFMANN)):
        table[label] = pd.Series(values)
        table[f"{label} inside"] = [
            "yes" if lo <= values[p] <= hi else "no"
            for p, lo, hi in zip(PARAMS, table["lower"], table["upper"], strict=True)
        ]
    return table


def run(draws=1000, chains=4, tune=1000, seed=0, sampler="numpyro", bootstrap=0, path=DATA):
    """Fit both likelihoods and the baseline; return the fits, baseline and check results."""
    df = load_data(path)
    print(f"{len(df)} runs from {path}")
    fits, ok = {}, True
    for likelihood in ("normal", "student_t"):
        start = time.perf_counter()
        fit = bayescale.fit(
            df,
            law="chinchilla",
            y="loss",
            inputs=INPUTS,
            likelihood=likelihood,
            draws=draws,
            chains=chains,
            tune=tune,
            random_seed=seed,
            sampler=sampler,
        )
        seconds = time.perf_counter() - start
        fits[likelihood] = fit
        print(f"\n=== chinchilla, {likelihood} likelihood on log loss ({seconds:.1f} s) ===")
        with pd.option_context(
            "display.float_format", "{:.4g}".format, "display.width", 160, "display.max_columns", 20
        ):
            print(comparison_table(fit))
        extra = fit.summary(ci=0.95).drop(index=[*PARAMS, "a_ref", "b_ref"])
        print("noise:", ", ".join(f"{k} = {v:.4g}" for k, v in extra["median"].items()))
        print("diagnostics:", fit.diagnostics)
        ok &= case_common.report(acceptance(fit))
    start = time.perf_counter()
    base = huber_fit(
        df, law="chinchilla", y="loss", inputs=INPUTS, n_bootstrap=bootstrap, random_seed=seed
    )
    print(
        f"\n=== baseline: Huber (delta=1e-3, summed) + L-BFGS from {base.n_starts}"
        f" starts, {bootstrap} bootstrap refits ({time.perf_counter() - start:.1f} s) ==="
    )
    print(f"objective {base.objective:.8f} (Besiroglu et al.: 0.00101827)")
    for p in PARAMS:
        print(f"  {p:6s} {base.point[p]:10.4f}   Besiroglu exact fit {BESIROGLU_EXACT[p]:10.4f}")
    case_common.verdict(ok)
    return fits, base, ok


def main(argv=None):
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampler", default="numpyro")
    parser.add_argument("--bootstrap", type=int, default=0, help="baseline bootstrap refits")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"data not found: {args.data} (expected ../shared/data beside the checkout)")
        return 2
    _, _, ok = run(
        args.draws, args.chains, args.tune, args.seed, args.sampler, args.bootstrap, args.data
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
