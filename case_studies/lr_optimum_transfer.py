"""The optimal learning rate of a 1B model, from the learning-rate sweeps of smaller ones.

Data: ``../shared/data/misfitting_li2025/scaling_results_last_ckpt_only.csv``, the final
checkpoints of Li et al.'s (Mis)Fitting sweep (through :mod:`bayescale.sweeps`): 11 model
sizes (57M to 1.2B parameters with embeddings), each trained for several token budgets
at 3-4 peak learning rates. A setting is one model size and token budget; the 80 settings
with at least two rates are kept (43 of them have their best rate at the edge of the rates
they tried, so their own minimum is not located; the shared curvature is what places it).

Model: the ``lr_optimum`` law, grouped by setting: each setting's loss is a parabola in
``log lr`` around ``lr*(N, D) ∝ N^-p_N D^-p_D``, with the curvature and the optimum's law
shared and each setting's loss at its optimum its own. Fitted to the models up to 400M,
it predicts ``lr*`` for the 1B model at its two token budgets
(:func:`bayescale.models.lr_optimum.optimal_lr`); the 1B runs are the check: at 21B
tokens they tried three rates, and the vertex of the parabola through their three losses
is where that setting's own data put the optimum.

Acceptance: the fit passes its convergence checks; the 1B setting's own vertex lies
inside the predicted 90% interval of ``lr*``.

Gemstones' learning-rate ablation (``../shared/data/gemstones``: each of 20 models also
trained at half its base rate, checkpoints every 10B tokens to 100B) is printed as a
finding. The files give no rate, only "half the base one", so rates are in units of each
model's base rate; two rates per setting show the direction of the optimum, not its place
(a parabola through two points has no vertex without its curvature), and the same law
fitted to them is printed with its diagnostics.

References
----------
Li, Kudugunta, Zettlemoyer (2025), "(Mis)Fitting: A Survey of Scaling Laws", ICLR 2025,
arXiv:2502.18969. DeepSeek-AI (2024), arXiv:2401.02954.

Usage::

    python case_studies/lr_optimum_transfer.py [--draws 1000] [--chains 4]
"""

import sys
import warnings
from pathlib import Path

import case_common
import numpy as np
import pandas as pd

import bayescale
from bayescale import sweeps
from bayescale.models.lr_optimum import optimal_lr

DATA = Path(__file__).resolve().parents[2] / "shared/data"
HELD_OUT = "misfitting_1b"


def with_settings(runs, model, rates=2):
    """``runs`` labelled by ``setting``, one ``model`` at one token budget.

    Only the settings trained at ``rates`` or more learning rates are kept.
    """
    runs = runs.assign(setting=runs[model] + "/" + runs["D"].map("{:.3g}".format))
    kept = runs.groupby("setting")["lr"].transform("nunique") >= rates
    return runs[kept].reset_index(drop=True)


def settings(root=DATA):
    """(Mis)Fitting's final checkpoints with ``setting`` and ``lr``, 2+ rates each."""
    runs = sweeps.load("misfitting", root)
    return with_settings(runs.assign(lr=runs["peak_lr"]), "model")


def gemstones_ablation(root=DATA):
    """Gemstones' base-rate and half-rate runs: ``lr`` 1 and 0.5 (units of the base rate)."""
    half = sweeps.read_gemstones(root / "gemstones/wandb_df_for_fitting_lr_ablation_hot.jsonl")
    runs = pd.concat([sweeps.load("gemstones", root).assign(lr=1.0), half.assign(lr=0.5)])
    return with_settings(runs, "run")


def ablation_finding(root, draws, chains, seed):
    """Print what halving the rate did on Gemstones, and the law fitted to two rates."""
    runs = gemstones_ablation(root)
    wide = runs.pivot_table(index=["run", "setting"], columns="lr", values="loss")
    cost = (wide[0.5] / wide[1.0] - 1).groupby(level="run").mean()
    print(
        f"\nFINDING (Gemstones, {len(wide)} model x checkpoint pairs): half the base rate "
        f"raised the loss in {(wide[0.5] > wide[1.0]).mean():.0%} of them; per model by "
        f"{cost.min():.1%} to {cost.max():.1%} on average, rank correlation with N "
        f"{cost.corr(runs.groupby('run')['N'].first(), method='spearman'):.2f}"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # printed just below
        fit = bayescale.fit(
            runs, law="lr_optimum", group="setting", draws=draws, chains=chains, random_seed=seed
        )
    print(f"  lr_optimum on these two rates per setting: {fit.diagnostics}")


def own_vertex(runs):
    """``lr`` at the vertex of the parabola in ``log lr`` through a setting's 3+ log losses."""
    c2, c1, _ = np.polyfit(np.log(runs["lr"]), np.log(runs["loss"]), 2)
    return float(np.exp(-c1 / (2 * c2))) if c2 > 0 else np.nan


def run(draws=1000, chains=4, seed=0, folder=DATA):
    """Fit up to 400M, predict lr* at 1B; print; return (fit, table, ok)."""
    runs = settings(folder)
    train = runs[runs["model"] != HELD_OUT]
    print(
        f"{len(train)} runs of {train['setting'].nunique()} settings "
        f"({train['model'].nunique()} model sizes) fitted; {HELD_OUT} held out"
    )
    fit = bayescale.fit(
        train, law="lr_optimum", group="setting", draws=draws, chains=chains, random_seed=seed
    )
    print("diagnostics:", fit.diagnostics)
    summary = fit.summary(ci=0.9).loc[
        ["p_N", "p_D", "kappa", "sigma"], ["median", "lower", "upper"]
    ]
    print("\nposterior medians [90%]: lr* ∝ N^-p_N D^-p_D; kappa the curvature in log lr")
    print(summary.round(4).to_string())
    rows = []
    for (n, d), own in runs[runs["model"] == HELD_OUT].groupby(["N", "D"]):
        row = optimal_lr(fit, n, d).iloc[0].to_dict()
        row["rates tried"] = ", ".join(f"{v:g}" for v in sorted(own["lr"]))
        row["best tried"] = own.loc[own["loss"].idxmin(), "lr"]
        row["own vertex"] = own_vertex(own) if own["lr"].nunique() >= 3 else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.float_format", "{:.3g}".format):
        print(f"\n{HELD_OUT}: predicted lr* (median [90%]) beside its own runs")
        print(table.to_string(index=False))
    checked = table.dropna(subset=["own vertex"])
    inside = (checked["lr_lower"] <= checked["own vertex"]) & (
        checked["own vertex"] <= checked["lr_upper"]
    )
    ok = case_common.report(
        [
            (f"fit: {fit.diagnostics}", fit.diagnostics.ok),
            (
                f"{HELD_OUT}: its own vertex inside the predicted 90% interval "
                f"({int(inside.sum())} of {len(checked)} settings with 3 rates)",
                len(checked) > 0 and bool(inside.all()),
            ),
        ]
    )
    ablation_finding(folder, draws, chains, seed)
    case_common.verdict(ok)
    return fit, table, ok


def main(argv=None):
    """Command-line entry point."""
    return case_common.main(__doc__, DATA, run, argv)


if __name__ == "__main__":
    sys.exit(main())
