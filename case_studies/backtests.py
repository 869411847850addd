"""Backtests on real sweeps: fit the small runs, predict the large ones, score every method.

Three published sweeps, each split at a scale the authors could have stopped at:

- **Chinchilla** (Epoch AI's reconstruction of Hoffmann et al.'s Approach 3 data, the 240
  points of the replication case study): fit budgets <= 1e21 FLOPs, predict the larger
  runs (up to 1.3e22, 13x).
- **(Mis)Fitting** (Li et al. 2025, final checkpoints; the best learning rate per model and
  token count, as the paper does): fit models <= 400M parameters, predict the 1B runs.
- **Gemstones** (McLeish et al. 2025, "hot" constant-LR checkpoints of 22 models): fit
  checkpoints <= 100B tokens, predict every checkpoint from 110B to 350B tokens (3.5x).

Methods: the Chinchilla law with a normal and with a Student-t likelihood on ``log loss``,
the Kaplan law (NUTS, 4 x 1000 draws), their stacking average, and the field's fit of each
law (Huber, delta 1e-3, L-BFGS grid, 200 bootstrap refits, whose percentile intervals are
its predictive intervals). Scores are on ``log loss`` (see
:mod:`bayescale.evaluation.scores`): coverage of 50/80/90/95% central intervals, interval score of
the 90% interval (lower is better), CRPS, mean log predictive density (higher is better),
median absolute log error of the median.

What was tried and measured (not in the default run): a run-level effect on Gemstones
(``group="run_name"``, ``E`` pooled) does not mix (r-hat 1.06-1.09, ESS < 50, centred or
not): each run has one model size, so its offset is confounded with the size term and
identified only through the population. A budget-level effect on Chinchilla (``E`` pooled
over isoFLOP budgets) raised 90% coverage only from 43% to 57%: the budget spread it
learns below 1e21 (0.5%) is smaller than the 1-2% by which the largest budgets undershoot.

Why Chinchilla under-covers (the residual line printed per sweep). The 23 held-out runs'
log residuals around the normal fit's median have sd 1.31% (mean -0.43%) against its
fitted noise of 0.62%, but the excess is not noise: it lies along tokens per parameter
(correlation -0.88 with ``log(D/N)``; over-trained small models land below the
prediction, under-trained large ones above, by up to a few percent), and once a line in
``log(D/N)`` is removed the sd is 0.61%, the fitted noise. The law's N-D trade-off drifts
with scale. A fit to all 240 runs shows the same tilt on those 23 (correlation -0.84; sd
1.07%, 0.58% once linear in ``log(D/N)``, against 0.64% on the rest), so the separable
Chinchilla form cannot follow it even when fitted to them. The fit's own residuals below
the cut hide the drift (it is averaged into the exponents: the slope of the residuals per
decade of D/N is between -0.008 and +0.005 in each half-decade of C below 1e21, -0.016 to
-0.023 above), but extrapolating within the fitted runs exposes it (the nested line
below). Tried in scratch fits (not in the default run; LOO preferred some of them by
8-12 elpd), none of which carried the tilt forward: an exponent of D varying linearly
with log N, or of N with log D, a log N log D term, and curvature in both exponents left
90% coverage at 43-70% and the held-out correlation at -0.77 to -0.91. On Gemstones,
where coverage is 95%, the held-out sd is 1.76% against fitted noise of 1.49%.

Could a user have seen it coming? The nested line repeats each backtest inside the fitted
runs, extrapolating as far (13x on Chinchilla: fit C <= 7.7e19, predict the 100 runs up to
1e21). On Chinchilla it under-covers the same way, 69% [61%, 76%] with residuals again
along ``log(D/N)`` (correlation -0.67); on Gemstones it gives 93% [84%, 100%] (the real
backtest 95%) and on (Mis)Fitting 7 of 7. A backtest inside one's own data is therefore
an early warning worth running before trusting an extrapolation.

Can the nested backtest also correct the real one? Two ways were tried in scratch runs
(not in the default run), neither enough. (1) An extrapolation-error term: the normal fit's
predictive sd widened in quadrature by ``tau log(C / cut)``, ``tau`` chosen to maximise the
nested backtest's log predictive density (0.0054). On the real backtest it raised the
normal fit's 90% coverage from 43% to 65% and its held-out lpd from 1.90 to 2.64, but the
real held-out runs would want twice the slope (0.0105): the drift grows faster with scale
than the runs below the cut show. On Gemstones the learnt ``tau`` (0.019) left coverage at
95% and lowered lpd from 2.61 to 2.57. (2) Leave-future-out stacking, weights fitted to
the nested backtest's log scores instead of LOO's: 0.98 on the Student-t fit (LOO: 0.89),
and 61% coverage against LOO stacking's 65%.

Run: ``python case_studies/backtests.py [--sweeps Gemstones ...]`` (about 10 minutes on
2 cores for all three); ``--extrapolation calibrated`` scores bayescale's default instead
of each law's own posterior.
"""

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from case_common import main, report, verdict

import bayescale
from bayescale.evaluation import scores
from bayescale.evaluation.backtesting import UNCERTAIN_SCORES, split_rows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LAWS = {
    "chinchilla": {"law": "chinchilla"},
    "chinchilla student_t": {"law": "chinchilla", "likelihood": "student_t"},
    "kaplan": {"law": "kaplan"},
}
COLUMNS = ["n_fit", "n_test", "converged", *UNCERTAIN_SCORES, "median_abs_log_error"]


def chinchilla(data):
    df = pd.read_csv(data / "epoch_analyzing_chinchilla" / "svg_extracted_data.csv")
    df = df.sort_values("loss").iloc[:-5]  # Besiroglu et al. drop the 5 highest losses
    df = df.rename(columns={"Model Size": "N", "Training FLOP": "C"})
    return df[["N", "C", "loss"]].reset_index(drop=True), {"C": 1e21}


def misfitting(data):
    df = pd.read_csv(data / "misfitting_li2025" / "scaling_results_last_ckpt_only.csv")
    best = df.loc[df.groupby(["N", "D"])["loss"].idxmin()]  # best learning rate per run
    return best[["N", "D", "loss"]].reset_index(drop=True), {"N": 6e8}


def gemstones(data):
    df = pd.read_json(data / "gemstones" / "wandb_df_for_fitting_hot_100b+.jsonl", lines=True)
    df = df.rename(columns={"params_active_precise": "N", "tokens": "D", "final_loss": "loss"})
    return df[["N", "D", "loss"]], {"D": 1.01e11}


SWEEPS = {"Chinchilla": chinchilla, "(Mis)Fitting": misfitting, "Gemstones": gemstones}
UNITS = {"Gemstones": "N"}
"""Held-out rows resampled together by :meth:`bayescale.Backtest.uncertainty`: a Gemstones
model's checkpoints share its errors (22 models); Chinchilla's and (Mis)Fitting's held-out
runs are separate trainings, resampled one by one."""


def calibrated_line(result, test, law="chinchilla"):
    """The same held-out rows scored with the extrapolation error learnt across sweeps.

    The tables score each law's posterior alone (``extrapolation="none"``), as the checks
    below were set; bayescale's default adds the error that
    ``case_studies/extrapolation_calibration.py`` learns from every real sweep, and this
    line says what it does here (leave-one-source-out scores are in the README).
    """
    fit = result.fits[law]
    log_y = np.log(test["loss"].to_numpy())
    _, draws = fit.predictive_draws(test, random_seed=0)
    calibrated = scores.score_table(np.log(draws), log_y)
    return (
        f"  {law} with the calibrated default: 90% coverage {calibrated['coverage_90']:.0%}, "
        f"interval score {calibrated['interval_score_90']:.3f} "
        f"(alone: {result.table.loc[law, 'coverage_90']:.0%}, "
        f"{result.table.loc[law, 'interval_score_90']:.3f})"
    )


def run(
    draws=1000,
    chains=4,
    seed=0,
    data=DATA,
    sweeps=tuple(SWEEPS),
    extrapolation="none",
    scheduler=None,
):
    """Backtest the sweeps; print the tables; check the headline claims.

    ``extrapolation="none"`` (the checks were set for it) scores each law's own posterior;
    ``"calibrated"`` scores bayescale's default, with the error learnt across sweeps.
    ``scheduler`` (a Dask scheduler address, or ``"local"``) fits each backtest's laws
    as one batch there (:func:`bayescale.fit_many`: the same fits, bit for bit).
    """
    tables, seconds, gains, valid = {}, {}, {}, {}
    for label in sweeps:
        df, split = SWEEPS[label](data)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bayescale.ParetoKWarning)
            warnings.simplefilter("ignore", bayescale.ConvergenceWarning)  # checked below
            result = bayescale.backtest(
                df,
                LAWS,
                split=split,
                baseline=["chinchilla", "kaplan"],  # one baseline per functional form
                fit_options={"draws": draws, "chains": chains},
                random_seed=seed,
                extrapolation=extrapolation,
                client=scheduler,
            )
        seconds[label] = time.perf_counter() - start
        ci = result.uncertainty(by=UNITS.get(label), scores=["coverage_90", "interval_score_90"])
        tables[label] = result.table[COLUMNS].join(ci)
        print(f"\n== {label}: split {split}, {seconds[label]:.0f} s")
        print(tables[label].to_string(float_format=lambda v: f"{v:.3f}"))
        print(residual_line(result))
        print(nested_line(df, split, {"draws": draws, "chains": chains}, seed, UNITS.get(label)))
        if extrapolation == "none":
            print(calibrated_line(result, df[~split_rows(df, split)]))
        gains[label] = paired_gain(result, UNITS.get(label))
        valid[label] = sampler_findings(label, result)
    checks = []
    for label, table in tables.items():
        bayes = table.loc[[k for k in table.index if not k.startswith("baseline")]]
        base = table.loc[[k for k in table.index if k.startswith("baseline")]]
        best, lower, upper = gains[label]
        miss_bayes = (bayes["coverage_90"] - 0.9).abs().min()
        miss_base = (base["coverage_90"] - 0.9).abs().min()
        few = table["n_test"].iloc[0] < 10  # 2 held-out runs cannot show a difference is real
        checks += [
            (
                f"{label}: every NUTS fit passes every convergence check",
                valid[label],
            ),
            (
                f"{label}: best Bayesian interval score ({best}, "
                f"{bayes.loc[best, 'interval_score_90']:.3f}) beats every baseline's "
                f"({base['interval_score_90'].min():.3f}; paired difference 90% interval "
                f"[{lower:+.3f}, {upper:+.3f}]{', not required below 0: few runs' if few else ''})",
                bayes.loc[best, "interval_score_90"] < base["interval_score_90"].min()
                and (few or upper < 0),
            ),
            (
                f"{label}: some Bayesian 90% coverage is closer to 90% than any baseline's "
                f"(off by {miss_bayes:.0%} vs {miss_base:.0%})",
                miss_bayes <= miss_base,
            ),
        ]
        off = bayes[(bayes["coverage_90"] < 0.85) | (bayes["coverage_90"] > 0.95)]
        if len(off) and table["n_test"].iloc[0] >= 10:  # 2 held-out runs say little
            ranges = [
                f"{method} {row.coverage_90:.0%} [{row['coverage_90 lower']:.0%}, "
                f"{row['coverage_90 upper']:.0%}]"
                for method, row in off.iterrows()
            ]
            print(f"FINDING {label}: 90% coverage outside 85-95% for {'; '.join(ranges)}")
    print("\nREADME table:\n" + readme_table(tables) + "\n")
    ok = report(checks)
    verdict(ok)
    return tables, ok


def sampler_findings(label, result):
    """Whether every NUTS fit passes every convergence check; prints each one that fails.

    Tree depth included: the (Mis)Fitting Student-t fit spent 44% of its draws at NUTS's
    maximum depth until fits without groups sampled the law's terms jointly
    (:func:`bayescale.pooling.create_terms`).
    """
    valid = True
    for name, fit in result.fits.items():
        if isinstance(fit, bayescale.ScalingFit) and not fit.diagnostics.ok:
            valid = False
            print(f"FINDING {label}, {name}: {fit.diagnostics}")
    return valid


def nested_line(df, split, fit_options, seed, by=None, law="chinchilla"):
    """The same backtest one step down, inside the fitted runs, to see if a miss was foreseeable.

    Of the rows the real split fits, fit those below ``cut / reach`` and predict the rest,
    where ``reach`` is how far the real held-out rows go beyond the cut (13x on
    Chinchilla), so the nested backtest extrapolates as far as the real one, using only
    data a user has at fitting time. If it under-covers in the same way, the real miss
    was foreseeable (and the law, not luck, is at fault).
    """
    ((column, cut),) = split.items()
    inner_cut = cut / (df[column].max() / cut)
    with warnings.catch_warnings():  # convergence is printed on the line instead
        warnings.simplefilter("ignore", bayescale.ConvergenceWarning)
        result = bayescale.backtest(
            df[df[column] <= cut],
            {law: LAWS[law]},
            split={column: inner_cut},
            average=False,
            baseline=False,
            fit_options=fit_options,
            random_seed=seed,
        )
    row = result.table.loc[law]
    lower, upper = result.uncertainty(by=by, scores=["coverage_90"]).loc[law]
    checks = "" if row.converged else f"; fit {result.fits[law].diagnostics}"
    return (
        f"nested, fit {column} <= {inner_cut:.3g} and predict {row.n_test} runs up to "
        f"{cut:.3g}: {law} 90% coverage {row.coverage_90:.0%} [{lower:.0%}, {upper:.0%}]"
        f"{checks}\n  nested {residual_line(result, law)}"
    )


def paired_gain(result, by):
    """The best Bayesian method by interval score, and its paired gain over the best baseline.

    Returns ``(best, lower, upper)``: the 90% bootstrap interval of the best
    Bayesian method's interval score minus the best baseline's, resampling held-out runs
    (``by`` as in :data:`UNITS`); wholly below 0, the gain is more than the luck of the runs.
    """
    table = result.table["interval_score_90"]
    is_base = table.index.str.startswith("baseline")
    best, baseline = table[~is_base].idxmin(), table[is_base].idxmin()
    paired = result.uncertainty(by=by, scores=["interval_score_90"], relative_to=baseline)
    return best, *paired.loc[best]


def residual_line(result, method="chinchilla"):
    """Held-out log residuals of ``method``'s median beside its fitted noise scale.

    Separates the ways intervals under-cover: a mean residual far from 0 is bias, an sd
    well above ``sigma`` is error the fitted runs did not show. Where 10+ runs are held
    out, it also says how much of that error is a tilt along ``log(D/N)`` (tokens per
    parameter: a change of the law's N-D trade-off, which is shape, not noise): the
    residuals' correlation with it, and their sd once a straight line in it is removed.
    """
    pred = result.predictions
    resid = np.log(pred["loss"] / pred[f"{method}: median"]).to_numpy()
    fit = result.fits[method]
    sigma = fit.summary().loc["sigma", "median"]
    line = (
        f"{method}: held-out log residuals of the median: mean {resid.mean():+.4f}, "
        f"sd {resid.std():.4f}; fitted noise sigma {sigma:.4f}"
    )
    if len(pred) >= 10:
        inputs = fit.spec.prediction_frame(pred)  # D from C as the fit did
        tilt = np.log(inputs["D"] / inputs["N"]).to_numpy()
        left = resid - np.polyval(np.polyfit(tilt, resid, 1), tilt)
        line += (
            f"; correlation with log(D/N) {np.corrcoef(tilt, resid)[0, 1]:+.2f}, "
            f"sd {left.std():.4f} once linear in it"
        )
    return line


def readme_table(tables):
    """The Markdown rows the README shows (90% coverage and interval score per method)."""
    lines = [
        "| sweep | method | held out | 90% coverage [90% bootstrap interval] | interval score "
        "| median abs log error |"
    ]
    lines.append("|---|---|---|---|---|---|")
    for label, table in tables.items():
        for method, row in table.iterrows():
            coverage = f"{row.coverage_90:.0%}"
            if row.n_test >= 10:  # below that the bootstrap interval says little
                coverage += f" [{row['coverage_90 lower']:.0%}, {row['coverage_90 upper']:.0%}]"
            lines.append(
                f"| {label} | {method} | {int(row.n_test)} | {coverage} | "
                f"{row.interval_score_90:.3f} | {row.median_abs_log_error:.4f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sweeps = {"nargs": "+", "choices": list(SWEEPS), "default": list(SWEEPS)}
    extrapolation = {"choices": ["none", "calibrated"], "default": "none"}
    scheduler = {"default": None, "help": "a Dask scheduler address, or 'local'"}
    raise SystemExit(
        main(__doc__, DATA, run, sweeps=sweeps, extrapolation=extrapolation, scheduler=scheduler)
    )
