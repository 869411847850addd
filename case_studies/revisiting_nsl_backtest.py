"""Every curve of the Revisiting-NSL benchmark, backtested on its own fit/extrapolate split.

Alabdulmohsin, Neyshabur and Zhai (2022) released 92 learning curves (few-shot image
classification error, translation and language-model losses, BIG-bench scores) with the
points meant for fitting marked ``Training == 1`` and larger-x points held out (about 2x
the largest fitted x). Per curve we fit the saturating power law and a one-break BNSL
(NUTS, 4 x 500 draws), their stacking average, and the field's Huber/L-BFGS/bootstrap
power law, then score the held-out points (:func:`bayescale.backtest`). The paper's metric
is RMSLE of the point prediction per curve, averaged over a domain's curves; we use the
predictive median. NSL-PFN's calibration metric MSCE is the mean over levels of (coverage
- level)^2; we report coverage at 50/80/90/95% directly.

Published numbers (``../shared/docs/anchors.md``): IC mean RMSLE M4 0.0415, BNSL 0.0406,
MCMC over M4 0.0422, NSL-PFN 0.028; per-domain M4 as released IC/NMT/LM/BB 0.0415 /
0.0208 / 0.0009 / 0.0123; least-squares saturating power law 0.0665 / 0.0608 / 0.0011 /
0.0089.

Run: ``python case_studies/revisiting_nsl_backtest.py [--domains LM NMT ...]`` (all 92
curves: about 30 minutes on 2 cores; LM and NMT alone: 3 minutes).
"""

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from case_common import main, report, verdict

import bayescale

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "revisiting_nsl_benchmark"
DOMAINS = ("IC", "NMT", "LM", "BB")
M4 = {"IC": 0.0415, "NMT": 0.0208, "LM": 0.0009, "BB": 0.0123}
LSQ_POWER_LAW = {"IC": 0.0665, "NMT": 0.0608, "LM": 0.0011, "BB": 0.0089}
LAWS = {
    "power_law": {"law": "power_law"},
    "bnsl": {"law": bayescale.get_law("broken_power_law", n_breaks=1)},
}
SCORES = ["rmsle", "coverage_50", "coverage_90", "coverage_95", "interval_score_90", "lpd"]


def curves(data=DATA, domains=DOMAINS):
    """``{(domain, task, model): rows}``, duplicates dropped, x named ``x``."""
    frames = [pd.read_csv(data / f"benchmark.{k}.csv") for k in ("lang", "vision")]
    df = pd.concat(frames).drop_duplicates()
    df = df[df["Domain"].isin(domains)].rename(columns={"Seen Examples": "x", "Loss": "loss"})
    return dict(list(df.groupby(["Domain", "Task", "Model"], sort=False)))


def run(draws=500, chains=4, seed=0, data=DATA, domains=DOMAINS):
    """Backtest every curve; print per-domain means beside the published numbers."""
    rows = []
    start = time.perf_counter()
    for (domain, task, model), df in curves(data, domains).items():
        with warnings.catch_warnings():  # non-convergence is recorded in the table instead
            warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
            warnings.simplefilter("ignore", bayescale.ParetoKWarning)
            result = bayescale.backtest(
                df[["x", "loss", "Training"]],
                LAWS,
                split="Training",
                baseline=["power_law"],
                n_bootstrap=100,
                fit_options={"draws": draws, "chains": chains},
                random_seed=seed,
            )
        table = result.table.assign(domain=domain, curve=f"{task} / {model}")
        rows.append(table.rename_axis("method").reset_index())
    seconds = time.perf_counter() - start
    per_curve = pd.concat(rows, ignore_index=True)
    means = per_curve.groupby(["domain", "method"], sort=False)[SCORES].mean()
    conv = per_curve.groupby(["domain", "method"], sort=False)["converged"].mean()
    means = means.assign(converged=conv, curves=per_curve.groupby(["domain", "method"]).size())
    print(f"{per_curve['curve'].nunique()} curves in {seconds / 60:.1f} min\n")
    print(means.to_string(float_format=lambda v: f"{v:.4f}"))
    print("\npublished mean RMSLE: M4", M4, "least-squares power law", LSQ_POWER_LAW)
    checks = []
    for domain in means.index.get_level_values(0).unique():
        m = means.loc[domain]
        best = m["rmsle"].drop("baseline power_law").idxmin()
        checks += [
            (
                f"{domain}: Bayesian power law RMSLE {m.loc['power_law', 'rmsle']:.4f} <= "
                f"1.1 x the least-squares power law's {LSQ_POWER_LAW[domain]:.4f}",
                m.loc["power_law", "rmsle"] <= 1.1 * LSQ_POWER_LAW[domain],
            ),
            (
                f"{domain}: best Bayesian method ({best}) has a better 90% interval score "
                f"than the baseline ({m.loc[best, 'interval_score_90']:.3f} vs "
                f"{m.loc['baseline power_law', 'interval_score_90']:.3f})",
                m.loc[best, "interval_score_90"] < m.loc["baseline power_law", "interval_score_90"],
            ),
        ]
    print()
    ok = report(checks)
    verdict(ok)
    return per_curve, means, ok


if __name__ == "__main__":
    np.seterr(all="ignore")
    domains = {"nargs": "+", "default": list(DOMAINS), "choices": DOMAINS}
    raise SystemExit(main(__doc__, DATA, run, draws=500, domains=domains))
