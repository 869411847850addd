"""Broken neural scaling laws: extrapolating an emergent curve and the Revisiting-NSL curves.

Part 1. ``../shared/data/bnsl/4_digit_addition_dataset_size.csv``: test cross-entropy of
4-digit addition against training-set size (Caballero et al. 2023, Figure 4 left), flat
and then falling sharply. The 14 rows the authors fitted (``split_in_bnsl_script ==
"fit"``) are fitted with ``broken_power_law`` (1 and 2 breaks), ``power_law`` and
``exponential`` (Sorscher et al.'s beyond-power-law form); the 3 held-out rows (800-928
examples) are predicted with 90% intervals for a new observation (``kind="observed"``),
and PSIS-LOO compares the four laws. Measured (seed 0): held-out RMSLE 1 break 0.012
(covers 3/3), exponential 0.25 (covers 2/3 with wide intervals), power law 0.92 (covers
none); LOO ranks 2 breaks, 1 break, exponential, power law, but the 2-break fit does not
converge (r-hat 1.54, see below).

Every fit here runs at ``target_accept=0.95`` (:data:`TARGET_ACCEPT`). The curve was digitised from a figure and
is smooth to 0.09% (the posterior noise scale), so the 1-break posterior is a ridge a few
thousandths wide whose width scales with ``sigma`` (the parameter with the worst r-hat),
curved in ``z1, c1, f1`` (correlations 0.94-0.99 on the unconstrained scale). At the
default 0.8 the adapted step cannot follow it: over seeds 0-5 at 500 draws, 5-72
divergent draws of 2,000 (1-47 with the numpyro ``MCMC`` driver bayescale used before, so
not a driver effect); at 0.95, 0-9, and 0-1 of 4,000 at 1,000 draws (r-hat <= 1.024).

Part 2. ``../shared/data/revisiting_nsl_benchmark/benchmark.lang.csv`` (Alabdulmohsin et
al. 2022): the 5 NMT and 5 LM learning curves, fitted on ``Training == 1`` and scored on
``Training == 0`` (about 2x the largest fitted x) after dropping exact duplicate rows (the
LM block repeats every row). The score is the paper's per-curve RMSLE of the point
prediction (here the predictive median), printed beside the published M4 numbers from
``../shared/docs/anchors.md``, with the 90% interval coverage of the held-out points.

Acceptance: the 1-break fit of 4-digit addition samples (r-hat <= 1.05, < 1% divergent
draws: its posterior is a thin curved ridge, see above); all three held-out points inside
its 90% intervals; LOO prefers 1 break to ``power_law`` by more than 4 standard errors;
every ``power_law`` benchmark fit samples (r-hat <= 1.03, < 1% divergent draws; with
9-12 points some have r-hat 1.011). At the default 0.8 those 9-10-point power-law fits
diverge in the bulk of the posterior, not in a funnel: over seeds 0-5 on the five NMT
curves, 0-24 divergent draws of 4,000 (NMT 28 Enc, 6 Dec: 2-24), and 71 on another host
at seed 0, which failed this check; at 0.95, none in seeds 0-3 (issue 19 keeps the goal
of converging at the default). BNSL's mean RMSLE per domain
within 1.5x of published M4; BNSL covers at least 80% of the held-out benchmark points.
Convergence of the BNSL benchmark fits is *reported, not required*: on curves with no
visible break the break's location, slope change and width are not identified (a break
beyond the data, or one with ``c1 ~ 0`` anywhere, fits equally well), and that L-shaped
posterior gives NUTS divergences that no reparameterisation of the break removes; those
intervals are approximate. Likewise for 2 breaks on 14 points (the extra break sits
either left of the data or right of it: two modes).

Settings: 4 chains x ``--draws`` (default 1000) after as many tuning steps; the 24 fits
take about 2.5 minutes on 2 cores when their programs are compiled, 75 s when cached.

References
----------
Caballero, Gupta, Rish, Krueger (2023), "Broken Neural Scaling Laws", arXiv:2210.14891.
Alabdulmohsin, Neyshabur, Zhai (2022), "Revisiting Neural Scaling Laws in Language and
Vision", arXiv:2209.06640.

Usage::

    python case_studies/bnsl_extrapolation.py [--draws 1000] [--chains 4]
"""

import sys
import time
import warnings
from pathlib import Path

import case_common
import numpy as np
import pandas as pd

import bayescale
from bayescale.errors import ConvergenceWarning, ParetoKWarning

DATA = Path(__file__).resolve().parents[2] / "shared/data"
ADDITION = "bnsl/4_digit_addition_dataset_size.csv"
BENCHMARK = "revisiting_nsl_benchmark/benchmark.lang.csv"
M4_NMT = {"6 Enc, 6 Dec": 0.010, "28 Enc, 6 Dec": 0.013, "6 Enc, 28 Dec": 0.030, "TEnc-LSTM": 0.012}
"""Paper Tables 2-3, per-curve RMSLE of M4 (anchors.md); Dec-only has no published number."""
M4_DOMAIN = {"NMT": 0.0208, "LM": 0.00121}
"""Mean per-curve RMSLE of M4: NMT from the released predictions, LM from the paper."""
LSQ_POWER_LAW = {"NMT": 0.0608, "LM": 0.0011}
"""Saturating power law by least squares on raw y, same split (anchors.md)."""
TARGET_ACCEPT = 0.95
"""For every fit of this study: see the module docstring."""
LAWS = {"bnsl_1": ("broken_power_law", {"n_breaks": 1}), "power_law": ("power_law", {})}


def fit_curve(df, law, y, x, draws, chains, seed):
    """One single-input fit at :data:`TARGET_ACCEPT`; returns (fit, seconds)."""
    name, options = law
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the tables
        fit = bayescale.fit(
            df,
            law=bayescale.get_law(name, **options),
            y=y,
            inputs={"x": x},
            draws=draws,
            tune=draws,
            chains=chains,
            random_seed=seed,
            target_accept=TARGET_ACCEPT,
        )
    return fit, time.perf_counter() - start


def held_out_scores(fit, test, y):
    """Per-row predictive median and 90% interval; RMSLE of the median; coverage."""
    pred = fit.predict(test, ci=0.9, kind="observed")
    obs = test[y].to_numpy()
    inside = (pred["lower"].to_numpy() <= obs) & (obs <= pred["upper"].to_numpy())
    rmsle = float(np.sqrt(np.mean(np.log(pred["median"].to_numpy() / obs) ** 2)))
    return pred.assign(observed=obs, inside=inside), rmsle, inside


def addition(draws, chains, seed, folder):
    """Part 1; returns (fits, predictions of the 1-break fit, LOO table, checks)."""
    df = pd.read_csv(folder / ADDITION)
    train = df[df["split_in_bnsl_script"] == "fit"]
    test = df[df["split_in_bnsl_script"] == "extrapolate"]
    print(f"=== 4-digit addition: fit {len(train)} rows, predict {len(test)} ===")
    laws = {"bnsl_1": LAWS["bnsl_1"], "bnsl_2": ("broken_power_law", {"n_breaks": 2})}
    laws["power_law"] = LAWS["power_law"]
    laws["exponential"] = ("exponential", {})  # Sorscher et al.'s beyond-power-law form
    fits, preds = {}, {}
    for key, law in laws.items():
        fits[key], seconds = fit_curve(
            train,
            law,
            "test_cross_entropy",
            "train_dataset_size",
            draws,
            chains,
            seed,
        )
        preds[key], rmsle, _ = held_out_scores(fits[key], test, "test_cross_entropy")
        print(f"\n--- {key} ({seconds:.1f} s) {fits[key].diagnostics}")
        print(f"held-out RMSLE of the median {rmsle:.4f}; 90% intervals for new observations:")
        print(preds[key].drop(columns="x").to_string(float_format="{:.3f}".format))
    table = fits["bnsl_1"].summary(ci=0.9)
    print("\nbnsl_1 posterior (median [90%]):")
    for k in ("a", "b", "c0", "c1", "d1", "f1", "sigma"):
        row = table.loc[k]
        print(f"  {k:5s} {row['median']:9.4g} [{row['lower']:.4g}, {row['upper']:.4g}]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParetoKWarning)  # the table has the counts
        loo = bayescale.compare(fits)
    print("\nPSIS-LOO:")
    print(loo.to_string(float_format="{:.2f}".format))
    for key, fit in fits.items():
        if fit.diagnostics.max_r_hat > 1.05 or loo.loc[key, "n_high_pareto_k"]:
            print(
                f"  note: {key} (r-hat {fit.diagnostics.max_r_hat:.3f}, "
                f"{loo.loc[key, 'n_high_pareto_k']} high Pareto k): its elpd is indicative only"
            )
    d = fits["bnsl_1"].diagnostics
    total = d.chains * d.draws
    gap = -loo.loc["power_law", "elpd_diff"] + loo.loc["bnsl_1", "elpd_diff"]
    checks = [
        (
            f"bnsl_1 samples: max r-hat {d.max_r_hat:.3f} <= 1.05, {d.divergences} divergent"
            f" of {total} draws < 1%",
            d.max_r_hat <= 1.05 and d.divergences < 0.01 * total,
        ),
        (
            f"bnsl_1: {int(preds['bnsl_1']['inside'].sum())}/3 held-out points inside the 90%"
            " predictive intervals",
            bool(preds["bnsl_1"]["inside"].all()),
        ),
        (
            f"LOO prefers 1 break to power_law by {gap:.1f} elpd, > 4 x dse"
            f" ({loo.loc['power_law', 'dse']:.1f})",
            gap > 4 * loo.loc["power_law", "dse"],
        ),
    ]
    return fits, preds, loo, checks


def benchmark_curves(folder):
    """The NMT and LM curves, duplicates dropped, with a ``curve`` label."""
    df = pd.read_csv(folder / BENCHMARK).drop_duplicates()
    df = df[df["Domain"].isin(["NMT", "LM"])]
    return df.assign(curve=df["Domain"] + " " + df["Model"].astype(str))


def benchmark(draws, chains, seed, folder):
    """Part 2; returns (per-curve table, checks)."""
    df = benchmark_curves(folder)
    print(f"\n=== Revisiting-NSL benchmark: {df['curve'].nunique()} NMT + LM curves ===")
    rows = []
    for curve, g in df.groupby("curve", sort=False):
        train, test = g[g["Training"] == 1], g[g["Training"] == 0]
        row = {"curve": curve, "fit": len(train), "test": len(test)}
        for key, law in LAWS.items():
            fit, seconds = fit_curve(train, law, "Loss", "Seen Examples", draws, chains, seed)
            _, rmsle, inside = held_out_scores(fit, test, "Loss")
            d = fit.diagnostics
            row.update(
                {
                    f"{key} rmsle": rmsle,
                    f"{key} cover": inside.mean(),
                    f"{key} n_in": int(inside.sum()),
                    f"{key} rhat": d.max_r_hat,
                    f"{key} div": d.divergences,
                    f"{key} ok": d.ok,
                    f"{key} s": seconds,
                }
            )
        model = curve.split(" ", 1)[1]
        row["M4 rmsle"] = M4_NMT.get(model, np.nan) if curve.startswith("NMT") else np.nan
        rows.append(row)
    table = pd.DataFrame(rows).set_index("curve")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.drop(columns=[c for c in table if c.endswith("n_in")]).round(4))
    domain = table.groupby(table.index.str.split(" ").str[0])
    means = domain[["bnsl_1 rmsle", "power_law rmsle"]].mean()
    print("\nmean per-curve RMSLE by domain (predictive median) beside published:")
    for dom, m in means.iterrows():
        print(
            f"  {dom}: broken_power_law {m['bnsl_1 rmsle']:.4f}, power_law "
            f"{m['power_law rmsle']:.4f}; published M4 {M4_DOMAIN[dom]:.4f}, least-squares"
            f" power law {LSQ_POWER_LAW[dom]:.4f}"
        )
    n_test = table["test"].sum()
    cover = {k: table[f"{k} n_in"].sum() / n_test for k in LAWS}
    print(
        f"90% interval coverage of the {n_test} held-out points: broken_power_law "
        f"{cover['bnsl_1']:.2f}, power_law {cover['power_law']:.2f}"
    )
    n_bad = int((~table["bnsl_1 ok"]).sum())
    print(
        f"broken_power_law fits failing the strict checks (r-hat <= 1.01, ESS >= 400, 0"
        f" divergences): {n_bad}/{len(table)}; max r-hat {table['bnsl_1 rhat'].max():.3f},"
        f" divergences {int(table['bnsl_1 div'].sum())} in all (not identified breaks;"
        " see the module docstring)"
    )
    total = chains * draws
    pl_ok = (table["power_law rhat"] <= 1.03) & (table["power_law div"] < 0.01 * total)
    checks = [
        (
            f"{int(pl_ok.sum())}/{len(table)} power_law benchmark fits sample (max r-hat "
            f"{table['power_law rhat'].max():.3f} <= 1.03, < 1% divergent draws)",
            bool(pl_ok.all()),
        ),
    ]
    for dom, m in means.iterrows():
        checks.append(
            (
                f"{dom}: broken_power_law mean RMSLE {m['bnsl_1 rmsle']:.4f} <= 1.5 x "
                f"published M4 {M4_DOMAIN[dom]:.4f}",
                m["bnsl_1 rmsle"] <= 1.5 * M4_DOMAIN[dom],
            )
        )
    checks.append(
        (
            f"broken_power_law 90% intervals cover {cover['bnsl_1']:.2f} >= 0.8 of the"
            " held-out points",
            cover["bnsl_1"] >= 0.8,
        )
    )
    return table, checks


def run(draws=1000, chains=4, seed=0, folder=DATA):
    """Both parts; returns (addition fits, benchmark table, ok)."""
    start = time.perf_counter()
    fits, _, _, checks = addition(draws, chains, seed, folder)
    table, more = benchmark(draws, chains, seed, folder)
    print(f"\ntotal {time.perf_counter() - start:.0f} s ({chains} chains x {draws} draws)")
    ok = case_common.report(checks + more)
    case_common.verdict(ok)
    return fits, table, ok


def main(argv=None):
    """Command-line entry point."""
    return case_common.main(__doc__, DATA, run, argv)


if __name__ == "__main__":
    sys.exit(main())
