"""Muennighoff et al. (2023): what a repeated token is worth, as a posterior.

Data: ``../shared/data/datablations/parametric_fit.cell25_outliers_removed.csv``, the final
C4 validation losses of the authors' runs (``N`` = params, ``D`` = tokens including
repeats, ``U`` = unique tokens) from notebook cell 25, "custom data loading with outliers
removed", less the rows that notebook skips (``val_loss == 0``: unfinished; ``dedup`` runs):
182 runs, 7M to 8.7B parameters, 1 to 9,000 epochs. That file, not the 296-run
``cell01_all_points.csv``, is the one behind the published fit: the notebook's fit cell
prints "Samples: 182", and its printed Huber objective at the published optimum (0.0158259)
is recomputed here to 6 digits on this file only.

The paper fits in two stages: ``E, A, B, alpha = beta`` on Chinchilla's own C4 isoFLOP
points (not in this data), then ``R_D*, R_N*`` with those fixed, by Huber loss (delta 1e-3)
+ L-BFGS from a 4x4 start grid. Three Bayesian fits of the same 182 runs:

* **two-stage**: the Chinchilla part pinned at the paper's stage-1 values (priors with a
  0.01% sd, far below what 182 runs resolve), ``R_D*, R_N*`` free: the paper's fit as a
  posterior. Beside it, the optimum of the paper's own objective, recomputed.
* **joint**: all seven parameters from these runs alone (default priors).
* **chinchilla**: the plain law in ``N`` and ``D``, blind to repetition, for PSIS-LOO.

Prints the posteriors of ``R_D*, R_N*`` (median, 90% and 95% intervals) beside 15.39 and
5.31, ``E, A, B, alpha, beta`` beside the paper's, the paper's takeaways with intervals (the
loss cost of 4 epochs instead of fresh data at the 8.7B / 178B-token budget; the epoch count
after which one more epoch is worth under 10% of fresh data), LOO, and timings.

Acceptance (honest: a published number that is not reproduced is printed as such, with the
reason, not turned into a check): every fit converged (max r-hat <= 1.01, 0 divergences,
bulk ESS >= 400); the law as coded reproduces the notebook's objective at the published
point; the two-stage posterior contains the published ``R_D*`` and the recomputed optimum
of the paper's objective (both parameters) in its 95% intervals; repetition-aware beats
plain Chinchilla by LOO (elpd difference > 4 se); 4 epochs cost < 1% loss (the paper's
"negligible") with 95% posterior probability under the fit LOO prefers (the joint one; under
the two-stage fit the cost is 1.5% [0.95, 2.1], printed beside it). Exits non-zero if a
check fails.

References
----------
Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel (2023), "Scaling
Data-Constrained Language Models", NeurIPS, arXiv:2305.16264; ``huggingface/datablations``
``utils/parametric_fit.ipynb`` (commit 1370131).

Usage::

    python case_studies/datablations_repetition.py [--draws 1000] [--chains 4]
"""

import itertools
import sys
import time
from pathlib import Path

import case_common
import numpy as np
import pandas as pd
from scipy import optimize

import bayescale
from bayescale import Prior

DATA = Path(__file__).resolve().parents[2] / "shared/data/datablations"
FILE = "parametric_fit.cell25_outliers_removed.csv"
ALL_POINTS = "parametric_fit.cell01_all_points.csv"
STAGE1 = {"a": 6.255414, "b": 7.3049974, "e": 0.6254804, "alpha": 0.3526596}
"""The notebook's stage-1 fit on Chinchilla's C4 points: log A, log B, log E, alpha = beta."""
PUBLISHED = {"r_d_star": 15.387756, "r_n_star": 5.309743}
"""The notebook's optimum (paper: R_D* = 15.39, R_N* = 5.31)."""
NOTEBOOK_OBJECTIVE = 0.015825936570763588
"""Summed Huber loss (delta 1e-3) of log residuals at that optimum, as the notebook prints."""
PAPER = {
    "E": np.exp(STAGE1["e"]),
    "A": np.exp(STAGE1["a"]),
    "B": np.exp(STAGE1["b"]),
    "alpha": STAGE1["alpha"],
    "beta": STAGE1["alpha"],
}
FMT = ("display.float_format", "{:.4g}".format, "display.width", 160)
BUDGET = {"N": 8.67e9, "D": 178e9, "U4": 44e9}
"""The paper's largest runs: 8.7B parameters on 178B tokens, unique or 44B repeated ~4 times."""


def load_data(folder=DATA, file=FILE):
    """Runs as the notebook fits them: finished (loss > 0), no ``dedup`` rows; N, D, U, loss."""
    df = pd.read_csv(folder / file)
    keep = (df["val_loss"] > 0) & ~df["note"].fillna("").str.startswith("dedup")
    cols = {"params": "N", "tokens": "D", "unique_tokens": "U", "val_loss": "loss"}
    return df[keep].rename(columns=cols)[list(cols.values())].reset_index(drop=True)


def huber(r, delta=1e-3):
    """Summed Huber loss, as ``torch.nn.functional.huber_loss(reduction='none').sum()``."""
    a = np.abs(r)
    return float(np.sum(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))))


def stage1_free(law, log_ref):
    """The stage-1 Chinchilla values as this law's free parameters at the data's references."""
    alpha = STAGE1["alpha"]
    return {
        "E": np.exp(STAGE1["e"]),
        "a_ref": np.exp(STAGE1["a"] - alpha * log_ref["N"]),
        "b_ref": np.exp(STAGE1["b"] - alpha * log_ref["D"]),
        "alpha": alpha,
        "beta": alpha,
    }


def paper_objective(law, df, log_ref, r_d_star, r_n_star):
    """The notebook's stage-2 objective at ``(R_D*, R_N*)``, stage 1 fixed."""
    p = {**stage1_free(law, log_ref), "r_d_star": r_d_star, "r_n_star": r_n_star}
    mean = law.mean(p, {k: df[k].to_numpy() for k in law.inputs}, log_ref)
    return huber(np.log(df["loss"].to_numpy()) - np.log(mean))


def objective_optimum(law, df, log_ref):
    """Minimise the paper's objective over log R* from a 4x4 grid of starts (Nelder-Mead)."""
    best = None
    for start in itertools.product([1.0, 2.0, 3.0, 4.0], repeat=2):
        res = optimize.minimize(
            lambda t: paper_objective(law, df, log_ref, *np.exp(t)),
            np.array(start),
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000},
        )
        best = res if best is None or res.fun < best.fun else best
    return dict(zip(PUBLISHED, np.exp(best.x), strict=True)), best.fun


def pinned_priors(law, log_ref, rel_sd=1e-4):
    """Point-like priors at the stage-1 values: the paper's 'fix, then fit R*' as a prior."""
    return {
        k: Prior("LogNormal", mu=float(np.log(v)), sigma=rel_sd)
        for k, v in stage1_free(law, log_ref).items()
    }


def takeaways(fit):
    """Posterior draws of the paper's takeaways (percent loss cost of 4 epochs; epochs to 10%)."""
    frame = pd.DataFrame(
        {"N": [BUDGET["N"]] * 2, "D": [BUDGET["D"]] * 2, "U": [BUDGET["D"], BUDGET["U4"]]}
    )
    log_mu = fit.log_mean_draws(frame)
    r_d = fit.draws(["r_d_star"])["r_d_star"]
    return {
        "loss cost of 4 epochs vs fresh (%)": 100 * np.expm1(log_mu[:, 1] - log_mu[:, 0]),
        "epochs until one more is worth < 10%": 1 + r_d * np.log(10),
        "value of a 4th epoch (x fresh)": np.exp(-3 / r_d),
    }


def interval_table(fit, names, reference=None):
    """Median, 90% and 95% intervals of ``names``, with a reference column if given."""
    s90, s95 = fit.summary(ci=0.9), fit.summary(ci=0.95)
    out = pd.DataFrame(
        {
            "median": s90.loc[names, "median"],
            "90% lo": s90.loc[names, "lower"],
            "90% hi": s90.loc[names, "upper"],
            "95% lo": s95.loc[names, "lower"],
            "95% hi": s95.loc[names, "upper"],
        }
    )
    if reference is not None:
        out["published"] = pd.Series(reference)
        out["in 95%"] = (out["95% lo"] <= out["published"]) & (out["published"] <= out["95% hi"])
    return out


def draws_table(values):
    """Median and 95% interval of each array of draws."""
    rows = {k: np.quantile(v, [0.5, 0.025, 0.975]) for k, v in values.items()}
    return pd.DataFrame(rows, index=["median", "95% lo", "95% hi"]).T


def converged(name, fit):
    """Convergence checks of one fit."""
    d = fit.diagnostics
    return (
        f"{name}: max r_hat {d.max_r_hat:.4f} <= 1.01, {d.divergences} divergences, "
        f"min ess_bulk {d.min_ess_bulk:.0f} >= 400",
        d.max_r_hat <= 1.01 and d.divergences == 0 and d.min_ess_bulk >= 400,
    )


def run(draws=1000, chains=4, seed=0, folder=DATA):
    """Fit, print, check; return (fits, ok)."""
    t_start = time.perf_counter()
    law = bayescale.get_law("data_constrained")
    df = load_data(folder)
    log_ref = law.log_reference(df)
    epochs = df["D"] / df["U"]
    print(
        f"{len(df)} runs from {FILE}: N {df['N'].min():.2g}-{df['N'].max():.2g}, "
        f"D {df['D'].min():.2g}-{df['D'].max():.2g}, epochs {epochs.min():.0f}-{epochs.max():.0f}"
    )

    print("\n=== which file is the paper's: the notebook's objective at its optimum ===")
    at_pub = paper_objective(law, df, log_ref, **PUBLISHED)
    other = load_data(folder, ALL_POINTS)
    at_pub_all = paper_objective(law, other, law.log_reference(other), **PUBLISHED)
    print(f"  notebook prints {NOTEBOOK_OBJECTIVE:.7f} ('Samples: 182')")
    print(f"  {FILE}: {len(df)} runs, objective {at_pub:.7f}")
    print(f"  {ALL_POINTS}: {len(other)} runs, objective {at_pub_all:.7f}")
    optimum, opt_value = objective_optimum(law, df, log_ref)
    print(
        f"  minimum of the same objective (stage 1 fixed): R_D* = {optimum['r_d_star']:.2f}, "
        f"R_N* = {optimum['r_n_star']:.2f}, objective {opt_value:.7f} "
        f"({100 * (at_pub / opt_value - 1):.2f}% below the published point's)"
    )

    settings = {"draws": draws, "chains": chains, "random_seed": seed}
    fits, seconds = {}, {}
    specs = {
        "two-stage": ("data_constrained", pinned_priors(law, log_ref)),
        "joint": ("data_constrained", None),
        "chinchilla": ("chinchilla", None),
    }
    for name, (law_name, priors) in specs.items():
        start = time.perf_counter()
        cols = ["N", "D", "U", "loss"] if law_name == "data_constrained" else ["N", "D", "loss"]
        fits[name] = bayescale.fit(df[cols], law=law_name, y="loss", priors=priors, **settings)
        seconds[name] = time.perf_counter() - start

    for name in ("two-stage", "joint"):
        fit = fits[name]
        print(f"\n=== {name} fit ({seconds[name]:.1f} s): {fit.diagnostics} ===")
        with pd.option_context(*FMT):
            print(interval_table(fit, list(PUBLISHED), PUBLISHED))
            if name == "joint":
                print("\nChinchilla part (paper's: stage 1 on Chinchilla's C4 points):")
                print(interval_table(fit, list(PAPER), PAPER))
                print(f"noise sigma of log loss: {fit.summary().loc['sigma', 'median']:.4f}")
            else:
                print(f"noise sigma of log loss: {fit.summary().loc['sigma', 'median']:.4f}")
            print("\ntakeaways at 8.7B params, 178B tokens:")
            print(draws_table(takeaways(fit)))
    pair = df[(df["N"] == BUDGET["N"]) & (df["D"] == BUDGET["D"])].set_index("U")["loss"]
    print(
        f"\nobserved at that budget: loss {pair.loc[BUDGET['U4']]:.4f} with 44B unique "
        f"(4 epochs) vs {pair.loc[BUDGET['D']]:.4f} unique: "
        f"{100 * (pair.loc[BUDGET['U4']] / pair.loc[BUDGET['D']] - 1):.2f}% (one run each)"
    )

    two = interval_table(fits["two-stage"], list(PUBLISHED), PUBLISHED)
    two_opt = interval_table(fits["two-stage"], list(PUBLISHED), optimum)
    print("\n=== published R* vs the two-stage posterior ===")
    for k, label in (("r_d_star", "R_D*"), ("r_n_star", "R_N*")):
        row = two.loc[k]
        verdict = "reproduced" if row["in 95%"] else "NOT REPRODUCED"
        print(
            f"  {label} = {PUBLISHED[k]:.2f}: {verdict} (95% [{row['95% lo']:.2f}, "
            f"{row['95% hi']:.2f}], median {row['median']:.2f})"
        )
    print(
        "  Why: the objective is flat along a ridge in (R_D*, R_N*) (the optimum is only "
        f"{100 * (at_pub / opt_value - 1):.2f}% lower than at the published point), and the "
        "notebook's L-BFGS stopped on it at a grid start; the posterior spreads along the "
        "same ridge and is centred on the objective's true minimum. The joint fit differs "
        "further because these 182 runs pull E, A, B, alpha, beta away from Chinchilla's C4 "
        "fit, and R* trades off against them."
    )

    print("\n=== PSIS-LOO on the same 182 runs ===")
    for name, s in seconds.items():
        print(f"  {name:10s} {s:5.1f} s  {fits[name].diagnostics}")
    table = bayescale.compare(fits)
    with pd.option_context(*FMT):
        print(table)
    gap = table.loc["joint", "elpd"] - table.loc["chinchilla", "elpd"]
    gap_se = table.loc["chinchilla", "dse"] if table.loc["joint", "rank"] == 0 else np.inf

    best = min(("two-stage", "joint"), key=lambda k: table.loc[k, "rank"])
    cost = takeaways(fits[best])["loss cost of 4 epochs vs fresh (%)"]
    p_pub = {**stage1_free(law, log_ref), **PUBLISHED}
    frame = {"N": np.full(2, BUDGET["N"]), "D": np.full(2, BUDGET["D"])}
    pub_loss = law.mean(p_pub, {**frame, "U": np.array([BUDGET["D"], BUDGET["U4"]])}, log_ref)
    print(
        f"\n4 epochs at 8.7B/178B: published point {100 * (pub_loss[1] / pub_loss[0] - 1):.2f}%;"
        f" LOO-preferred fit ({best}) {np.median(cost):.2f}% "
        f"[{np.quantile(cost, 0.025):.2f}, {np.quantile(cost, 0.975):.2f}]"
    )
    checks = [converged(name, fit) for name, fit in fits.items()]
    checks += [
        (
            f"law reproduces the notebook's objective at the published point on {FILE} "
            f"({at_pub:.7f} vs {NOTEBOOK_OBJECTIVE:.7f})",
            abs(at_pub - NOTEBOOK_OBJECTIVE) < 1e-6,
        ),
        (
            f"published R_D* = {PUBLISHED['r_d_star']:.2f} inside the two-stage 95% interval",
            bool(two.loc["r_d_star", "in 95%"]),
        ),
        (
            "the paper objective's recomputed optimum (R_D* "
            f"{optimum['r_d_star']:.1f}, R_N* {optimum['r_n_star']:.2f}) inside the two-stage "
            "95% intervals",
            bool(two_opt["in 95%"].all()),
        ),
        (
            f"LOO prefers data_constrained (joint) over chinchilla by {gap:.1f} > 4 x se "
            f"{gap_se:.1f}",
            gap > 4 * gap_se,
        ),
        (
            f"4 epochs cost < 1% loss at 8.7B/178B (the paper's 'negligible'), under the "
            f"LOO-preferred fit ({best}): P = {np.mean(cost < 1):.3f} >= 0.95",
            np.mean(cost < 1) >= 0.95,
        ),
    ]
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")
    ok = case_common.report(checks)
    case_common.verdict(ok)
    return fits, ok


def main(argv=None):
    """Command-line entry point."""
    return case_common.main(__doc__, DATA, run, argv)


if __name__ == "__main__":
    sys.exit(main())
