"""Every curve of the Revisiting-NSL benchmark, backtested on its own fit/extrapolate split.

Alabdulmohsin, Neyshabur and Zhai (2022) released 92 learning curves (few-shot image
classification error, translation and language-model losses, BIG-bench scores) with the
points meant for fitting marked ``Training == 1`` and larger-x points held out (about 2x
the largest fitted x). Per curve we fit the saturating power law and a one-break BNSL
with independent noise, BNSL again with ``ou_normal`` (noise correlated along the curve,
which :func:`diagnose` shows the checkpoints have), all with NUTS at 4 x 1000 draws and
target_accept 0.95, their stacking average, and the field's Huber/L-BFGS/bootstrap power
law, then score the held-out points (:func:`bayescale.backtest`). The paper's metric is
RMSLE of the point prediction per curve, averaged over a domain's curves; we use the
predictive median. NSL-PFN's calibration metric MSCE is the mean over levels of
(coverage - level)^2; we report coverage at 50/80/90/95% directly. Where coverage falls
short, :func:`diagnose` measures why (held-out noise, dependent residuals, a missed
level) and the script prints it.

Published numbers (``../shared/docs/anchors.md``): IC mean RMSLE M4 0.0415, BNSL 0.0406,
MCMC over M4 0.0422, NSL-PFN 0.028; per-domain M4 as released IC/NMT/LM/BB 0.0415 /
0.0208 / 0.0009 / 0.0123; least-squares saturating power law 0.0665 / 0.0608 / 0.0011 /
0.0089.

Run: ``python case_studies/revisiting_nsl_backtest.py [--domains LM NMT ...]`` (all 92
curves: 15-18 minutes on 2 cores, 11 of them for ``ou_normal``; LM and NMT alone: 1
minute); ``--extrapolation calibrated`` scores bayescale's default extrapolation error
instead of the laws alone.
"""

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from case_common import main, report, verdict

import bayescale
from bayescale.diagnostics import MAX_CHAIN_GAP
from bayescale.evaluation.scores import bootstrap_interval

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "revisiting_nsl_benchmark"
DOMAINS = ("IC", "NMT", "LM", "BB")
M4 = {"IC": 0.0415, "NMT": 0.0208, "LM": 0.0009, "BB": 0.0123}
LSQ_POWER_LAW = {"IC": 0.0665, "NMT": 0.0608, "LM": 0.0011, "BB": 0.0089}
BNSL = bayescale.get_law("broken_power_law", n_breaks=1)
LAWS = {
    "power_law": {"law": "power_law"},
    "bnsl": {"law": BNSL},
    "bnsl, ou_normal": {"law": BNSL, "likelihood": "ou_normal"},
}
MIN_OU_POINTS = 20
"""Curves with fewer fitted points are fitted without ``ou_normal``: a correlation length
needs close neighbours to be learnt (and the 9-10-point NMT curves have fewer points than
BNSL with it has parameters plus two)."""
# The power law on these 9-71-point curves: at 4 x 500 draws and the default 0.8, 2 of the
# 20 NMT/LM/BB fits passed the checks (ESS < 400, divergences on the 11-12-point curves); at
# 4 x 1000 and 0.95, 10 of 20, and 81 of all 92 curves (a reparameterisation tried for the
# BIG-bench failures is measured in the docstring of models/power_law.py).
TARGET_ACCEPT = 0.95
SCORES = ["rmsle", "coverage_50", "coverage_90", "coverage_95", "interval_score_90", "lpd"]


def curves(data=DATA, domains=DOMAINS):
    """``{(domain, task, model): rows}``, duplicates dropped, x named ``x``."""
    frames = [pd.read_csv(data / f"benchmark.{k}.csv") for k in ("lang", "vision")]
    df = pd.concat(frames).drop_duplicates()
    df = df[df["Domain"].isin(domains)].rename(columns={"Seen Examples": "x", "Loss": "loss"})
    return dict(list(df.groupby(["Domain", "Task", "Model"], sort=False)))


def point_noise(df):
    """Model-free noise scale of a curve's log values, from second differences.

    For white noise of sd ``s`` the second difference of consecutive points has variance
    ``6 s^2``, and a smooth trend adds almost nothing between neighbouring points, which
    are close in ``log x``. The median of the squares over 0.4549 (the median of chi-square
    with 1 degree of freedom) is robust to a few jumps. Comparing the fitted and the
    held-out points this way tells, without fitting anything, whether the held-out points
    are noisier than those the noise was learnt from. ``nan`` below 4 points or where most
    values repeat (BIG-bench curves hold their score between evaluations).
    """
    y = np.log(df.sort_values("x")["loss"].to_numpy())
    noise = np.sqrt(np.median(np.diff(y, 2) ** 2) / 0.4549 / 6) if len(y) >= 4 else 0.0
    return float(noise) if noise > 0 else np.nan


def laws_for(df):
    """The entries of :data:`LAWS` fitted to one curve (see :data:`MIN_OU_POINTS`)."""
    long = df["Training"].sum() >= MIN_OU_POINTS
    return {k: v for k, v in LAWS.items() if long or v.get("likelihood") != "ou_normal"}


def _median_gap(df):
    return np.median(np.diff(np.log(df["x"].to_numpy()))) if len(df) > 1 else np.nan


def curve_noise(df):
    """Model-free noise and spacing of one curve's fitted and held-out points.

    ``noise_ratio``: :func:`point_noise` of the held-out over the fitted points; above 1,
    the held-out points scatter more than any noise model learnt from the fit can know.
    ``noise_trend``: the same of the fitted points' second half over their first half; a
    value above 1 would be a trend that a noise model growing with ``x`` could carry
    forward. ``spacing_ratio``: median gap in ``log x`` between held-out neighbours over
    that between fitted ones. Noise correlated along the curve makes close neighbours
    agree more, so extra scatter between held-out points that are closer together than
    the fitted ones is jitter of each point, not drift.
    """
    train, test = (df[df["Training"] == k].sort_values("x") for k in (1, 0))
    half = len(train) // 2
    return {
        "noise_ratio": point_noise(test) / point_noise(train),
        "noise_trend": point_noise(train.iloc[half:]) / point_noise(train.iloc[:half]),
        "spacing_ratio": _median_gap(test) / _median_gap(train),
    }


def diagnose(result, df):
    """Why intervals miss on one curve, per Bayesian law (the causes the README reports).

    Besides :func:`curve_noise`: ``resid_acf1``: lag-1 autocorrelation of the fitted
    points' log residuals around the median of the law's mean, in order of ``x``; the
    likelihood assumes independent noise (about 0), and a positive value means neighbouring
    points share their errors, so the posterior counts more independent information than
    the curve holds. ``level_missed``: the held-out points' mean ``log y`` lies outside the
    90% interval of the law's mean (both averaged over the held-out range), so even
    noise-free points would be missed. ``chain_gap``: how far the worst chain's median
    log-likelihood trails the best chain's (:class:`bayescale.Diagnostics`); tens of nats
    means a chain sat in a local mode of negligible posterior mass and never left it.
    """
    train, test = df[df["Training"] == 1].sort_values("x"), df[df["Training"] == 0]
    out = {}
    for label in laws_for(df):
        fit = result.fits[label]
        fitted = fit.predict(train, kind="mean")["median"].to_numpy()
        resid = np.log(train["loss"].to_numpy() / fitted)
        held = fit.predict(test, kind="mean")
        level = np.log(test["loss"]).mean()
        lower, upper = np.log(held["lower"]).mean(), np.log(held["upper"]).mean()
        out[label] = {
            "resid_acf1": np.corrcoef(resid[:-1], resid[1:])[0, 1],
            "level_missed": not lower <= level <= upper,
            "chain_gap": fit.diagnostics.chain_gap,
        }
    return pd.DataFrame(out).T.astype(float).assign(**curve_noise(df))


def print_uncertainty(per_curve, scores=("coverage_90", "interval_score_90")):
    """90% bootstrap intervals, over curves, of each domain's mean scores.

    A domain's score is a mean over its curves, and a curve's held-out points share most
    of their error (the level is missed or not), so the curve is the unit resampled
    (:func:`bayescale.evaluation.scores.bootstrap_interval`): this says whether 81% coverage on 65
    curves is distinguishable from the 85-95% goal.
    """
    groups = per_curve.groupby(["domain", "method"], sort=False)
    table = pd.DataFrame(
        {
            score: groups[score].agg(lambda v: "{:.3f}-{:.3f}".format(*bootstrap_interval(v)))
            for score in scores
        }
    )
    print("\n90% bootstrap intervals of the means, resampling curves:")
    print(table.to_string())


def paired_gain(per_curve, method, score="interval_score_90"):
    """Mean over curves of ``method``'s score minus the baseline's, and its bootstrap interval.

    Paired by curve (on the curves ``method`` was fitted to): a curve that is hard for one
    method is hard for the other, so the difference is surer than either mean.
    """
    wide = per_curve.pivot(index="curve", columns="method", values=score)
    gain = (wide[method] - wide["baseline power_law"]).dropna().to_numpy()
    return gain.mean(), bootstrap_interval(gain)


def print_diagnostics(per_curve):
    """Noise and spacing quartiles per domain; residual dependence, level misses, stuck chains."""
    first = per_curve.drop_duplicates("curve").groupby("domain", sort=False)
    print("\nquartiles over curves of (curve_noise): held-out / fitted point-to-point noise")
    print("(point_noise); fitted second half / first half; held-out / fitted spacing in log x:")
    ratios = first[["noise_ratio", "noise_trend", "spacing_ratio"]].quantile([0.25, 0.5, 0.75])
    print(ratios.unstack().dropna().to_string(float_format=lambda v: f"{v:.2f}"))
    laws = per_curve[per_curve["method"].isin(list(LAWS))]
    causes = laws.groupby(["domain", "method"], sort=False).agg(
        median_resid_acf1=("resid_acf1", "median"), level_missed=("level_missed", "mean")
    )
    print("\nfitted residuals' lag-1 autocorrelation (median over curves) and share of curves")
    print("whose held-out level is outside the 90% interval of the law's mean:")
    print(causes.to_string(float_format=lambda v: f"{v:.2f}"))
    failed = ~laws["converged"].astype(bool)
    stuck = failed & (laws["chain_gap"] > MAX_CHAIN_GAP)
    counts = laws.assign(failed=failed, stuck=stuck).groupby(["domain", "method"], sort=False)
    counts = counts[["failed", "stuck"]].sum()
    print(f"\nfits failing the checks; of those, with a chain stuck {MAX_CHAIN_GAP:g}+ nats of")
    print("log-likelihood below the best chain (chain_gap):")
    print(counts.to_string())


def run(draws=1000, chains=4, seed=0, data=DATA, domains=DOMAINS, extrapolation="none"):
    """Backtest every curve; print per-domain means beside the published numbers.

    ``extrapolation="none"`` (the checks were set for it) scores each law's own posterior;
    ``"calibrated"`` scores bayescale's default, with the error learnt across sweeps (for
    these 1-D curves, the population's).
    """
    rows = []
    start = time.perf_counter()
    for (domain, task, model), df in curves(data, domains).items():
        with warnings.catch_warnings():  # non-convergence is recorded in the table instead
            warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
            warnings.simplefilter("ignore", bayescale.ParetoKWarning)
            result = bayescale.backtest(
                df[["x", "loss", "Training"]],
                laws_for(df),
                split="Training",
                baseline=["power_law"],
                n_bootstrap=100,
                fit_options={"draws": draws, "chains": chains, "target_accept": TARGET_ACCEPT},
                random_seed=seed,
                extrapolation=extrapolation,
            )
        table = result.table.join(diagnose(result, df)).assign(
            domain=domain, curve=f"{task} / {model}"
        )
        rows.append(table.rename_axis("method").reset_index())
    seconds = time.perf_counter() - start
    per_curve = pd.concat(rows, ignore_index=True)
    means = per_curve.groupby(["domain", "method"], sort=False)[SCORES].mean()
    conv = per_curve.groupby(["domain", "method"], sort=False)["converged"].mean()
    means = means.assign(converged=conv, curves=per_curve.groupby(["domain", "method"]).size())
    print(f"{per_curve['curve'].nunique()} curves in {seconds / 60:.1f} min\n")
    print(means.to_string(float_format=lambda v: f"{v:.4f}"))
    long = per_curve.groupby("curve")["method"].transform(lambda m: (m == "bnsl, ou_normal").any())
    if long.any():  # like for like: the methods on the curves ou_normal was fitted to
        print(
            f"\nthe same, over the {per_curve[long]['curve'].nunique()} curves of at least "
            f"{MIN_OU_POINTS} points (those fitted with ou_normal too):"
        )
        same = per_curve[long].groupby(["domain", "method"], sort=False)[SCORES].mean()
        print(same.to_string(float_format=lambda v: f"{v:.4f}"))
    print_uncertainty(per_curve)
    print_diagnostics(per_curve)
    print("\npublished mean RMSLE: M4", M4, "least-squares power law", LSQ_POWER_LAW)
    checks = []
    for domain in means.index.get_level_values(0).unique():
        m = means.loc[domain]
        best = m["rmsle"].drop("baseline power_law").idxmin()
        gain, (lower, upper) = paired_gain(per_curve[per_curve["domain"] == domain], best)
        gain_text = (
            f"difference {gain:+.3f}, 90% interval over curves [{lower:+.3f}, {upper:+.3f}])"
        )
        checks += [
            (
                f"{domain}: Bayesian power law RMSLE {m.loc['power_law', 'rmsle']:.4f} <= "
                f"1.1 x the least-squares power law's {LSQ_POWER_LAW[domain]:.4f}",
                m.loc["power_law", "rmsle"] <= 1.1 * LSQ_POWER_LAW[domain],
            ),
            (
                f"{domain}: best Bayesian method ({best}) has a better 90% interval score "
                f"than the baseline ({m.loc[best, 'interval_score_90']:.3f} vs "
                f"{m.loc['baseline power_law', 'interval_score_90']:.3f}; {gain_text}",
                upper < 0,
            ),
        ]
    print()
    ok = report(checks)
    verdict(ok)
    return per_curve, means, ok


if __name__ == "__main__":
    np.seterr(all="ignore")
    domains = {"nargs": "+", "default": list(DOMAINS), "choices": DOMAINS}
    extrapolation = {"choices": ["none", "calibrated"], "default": "none"}
    raise SystemExit(
        main(__doc__, DATA, run, draws=1000, domains=domains, extrapolation=extrapolation)
    )
