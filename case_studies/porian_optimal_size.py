"""Porian et al. (2024): how the compute-optimal model size exponent moves across 15 setups.

Data: ``../shared/data/porian_resolving_discrepancies/summary_df_all.optimal_pairs.csv``,
the isoFLOP optima N*(C) of 15 training configurations (11-12 budgets each, 1.25e16 to
2.56e19 FLOPs) that progressively undo Kaplan et al.'s choices, with the bootstrap standard
deviation of each log N* (``n_star_log_std``). Rows whose optimum the authors could not
locate (NaN) are dropped.

Model: ``log N* = log k_g + a_g log C`` (``pure_power_law``), one line per configuration
``g``, with the exponents ``a_g`` partially pooled, the intercepts separate, and the known bootstrap errors as
measurement error (``y_log_sd``); ``sigma`` is the scatter beyond them. The exponents are
``"pooled_centred"``: each configuration's dozen points pin its own line far more tightly
than the configurations differ, which is the regime where the centred form samples well
(see :mod:`bayescale.pooling`).

Prints, for every configuration, the posterior median and 95% interval of ``a`` beside the
authors' own bootstrap median and 95% interval (read from ``summary_df_all.fit_results.csv``,
weighted fits, as in the paper), the posterior probability that each of the paper's
corrections lowers the exponent, and a PSIS-LOO comparison of shared, pooled and separate
exponents. Acceptance: every posterior median inside the authors' interval; max r-hat <= 1.01;
0 divergences; bulk ESS >= 400. Exits non-zero if a check fails.

References
----------
Porian, Wortsman, Jitsev, Schmidt, Carmon (2024), "Resolving Discrepancies in
Compute-Optimal Scaling of Language Models", arXiv:2406.19146.

Usage::

    python case_studies/porian_optimal_size.py [--draws 1000] [--chains 4]
"""

import itertools
import sys
import time
from pathlib import Path

import case_common
import numpy as np
import pandas as pd

import bayescale

DATA = Path(__file__).resolve().parents[2] / "shared/data/porian_resolving_discrepancies"
CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
STEPS = [
    ("reproducing Kaplan", "base/long/kaplan/kaplan/train"),
    ("+ last-layer FLOPs", "base/long/kaplan/standard/val"),
    ("+ short warmup", "base/short/kaplan/standard/val"),
    ("+ cosine decay", "base/short/chinchilla/standard/val"),
    ("+ tuned AdamW, constant LR", "tuned/short/const/standard/val"),
]
"""The paper's Figure 1 path: each step undoes one of Kaplan et al.'s choices."""


def _label(df):
    return df[CONFIG].astype(str).agg("/".join, axis=1)


def load_data(folder=DATA):
    """Optimal pairs with a ``config`` label; rows without an optimum are dropped."""
    df = pd.read_csv(folder / "summary_df_all.optimal_pairs.csv")
    df = df.dropna(subset=["n_star", "n_star_log_std"]).reset_index(drop=True)
    return df.assign(config=_label(df))


def published(folder=DATA):
    """The authors' bootstrap median and 95% interval of ``a`` per configuration."""
    df = pd.read_csv(folder / "summary_df_all.fit_results.csv")
    df = df[df["fit"] == "bootstrap_weighted_n_exponent_pct"]
    df = df.assign(config=_label(df)).set_index("config")
    return df.rename(
        columns={"n_exponent": "authors", "n_exponent_p2.5": "lo", "n_exponent_p97.5": "hi"}
    )[["authors", "lo", "hi"]]


def fit_config(df, pooling, draws, chains, seed):
    """One ``pure_power_law`` fit of N*(C), grouped by configuration."""
    return bayescale.fit(
        df,
        law="pure_power_law",
        y="n_star",
        inputs={"x": "flops"},
        group="config",
        pooling=pooling,
        y_log_sd="n_star_log_std",
        draws=draws,
        chains=chains,
        random_seed=seed,
    )


def exponent_table(fit, authors):
    """Posterior median and 95% interval of each configuration's ``a`` beside the authors'."""
    table = fit.summary(ci=0.95)
    rows = {
        label: table.loc[f"a[{label}]", ["median", "lower", "upper"]] for label in authors.index
    }
    out = pd.DataFrame(rows).T.join(authors)
    out["inside"] = (out["lo"] <= out["median"]) & (out["median"] <= out["hi"])
    out["width ratio"] = (out["upper"] - out["lower"]) / (out["hi"] - out["lo"])
    return out


def acceptance(fit, table):
    """The issue's acceptance checks, as (description, passed) pairs."""
    d = fit.diagnostics
    return [
        (
            f"{table['inside'].sum()}/{len(table)} posterior medians of a inside the authors' "
            "bootstrap 95% intervals",
            bool(table["inside"].all()),
        ),
        (f"max r_hat {d.max_r_hat:.4f} <= 1.01", d.max_r_hat <= 1.01),
        (f"{d.divergences} divergences == 0", d.divergences == 0),
        (f"min ess_bulk {d.min_ess_bulk:.0f} >= 400", d.min_ess_bulk >= 400),
    ]


def run(draws=1000, chains=4, seed=0, folder=DATA):
    """Fit the three exponent poolings, print the tables; return (fits, table, ok)."""
    df = load_data(folder)
    print(f"{len(df)} isoFLOP optima of {df['config'].nunique()} configurations from {folder}")
    fits, seconds = {}, {}
    for name, mode in (
        ("pooled", "pooled_centred"),
        ("separate", "separate"),
        ("shared", "shared"),
    ):
        start = time.perf_counter()
        fits[name] = fit_config(df, {"y_ref": "separate", "a": mode}, draws, chains, seed)
        seconds[name] = time.perf_counter() - start
    fit = fits["pooled"]
    table = exponent_table(fit, published(folder))
    print(f"\n=== N* = k C^a per configuration, a pooled ({seconds['pooled']:.1f} s) ===")
    print("posterior median [95%] beside the authors' bootstrap median [2.5%, 97.5%]")
    with pd.option_context(
        "display.float_format", "{:.3f}".format, "display.width", 200, "display.max_columns", 20
    ):
        print(table)
    summary = fit.summary(ci=0.95)
    print(
        "\npopulation:",
        ", ".join(f"{k} = {summary.loc[k, 'median']:.3f}" for k in ("a_mu", "a_tau")),
    )
    resid = np.log(df["n_star"]) - np.log(fit.predict(df)["median"])
    print(
        f"scatter beyond the bootstrap errors: sigma = {summary.loc['sigma', 'median']:.3f} "
        f"[{summary.loc['sigma', 'lower']:.3f}, {summary.loc['sigma', 'upper']:.3f}]; residual "
        f"RMS of log N* {np.sqrt(np.mean(resid**2)):.3f} vs median bootstrap sd "
        f"{df['n_star_log_std'].median():.3f}"
    )
    print("diagnostics:", fit.diagnostics)
    for dataset in ("rw", "owt2"):
        print(f"\n--- the paper's path on {dataset}: P(step lowers a) ---")
        for (_, prev), (text, step) in itertools.pairwise(STEPS):
            c = fit.contrast("a", f"{dataset}/{prev}", f"{dataset}/{step}", ci=0.95)
            print(
                f"  {text:28s} a drops by {c['median']:.3f} [{c['lower']:.3f}, {c['upper']:.3f}],"
                f" P = {c['p_greater']:.3f}"
            )
    print("\n=== PSIS-LOO: exponent shared vs pooled vs separate across configurations ===")
    for name, s in seconds.items():
        print(f"  {name:8s} {s:5.1f} s  {fits[name].diagnostics}")
    with pd.option_context("display.float_format", "{:.2f}".format, "display.width", 160):
        print(bayescale.compare(fits))
    ok = case_common.report(acceptance(fit, table))
    case_common.verdict(ok)
    return fits, table, ok


def main(argv=None):
    """Command-line entry point."""
    return case_common.main(__doc__, DATA, run, argv)


if __name__ == "__main__":
    sys.exit(main())
