"""Sensitivity of a decision to the choices behind it: one question, re-answered many ways.

(Mis)Fitting (Li et al. 2025) shows that the functional form, the loss that is fitted and
which runs are kept each move the conclusions drawn from a scaling law, often by more than
the intervals of any one fit admit. A decision a lab bets compute on should survive those
choices, or say which of them it rests on. :func:`sensitivity` refits the same runs under
every combination of laws, likelihoods and data subsets (one batch,
:func:`bayescale.fit_many`) and re-answers one compute-optimal question at one budget with
each fit (:func:`bayescale.compute_optimal`), one row per combination, each with its
posterior interval, its reach and whether the fit converged.
"""

import inspect
import warnings

import numpy as np
import pandas as pd

from bayescale import data as data_mod
from bayescale.arguments import check_probability, is_number
from bayescale.batch import fit_many
from bayescale.diagnostics import flag
from bayescale.errors import BayescaleError, ConvergenceWarning, DataError, SpecError
from bayescale.evaluation.decisions import SUMMARIES, compute_optimal, row_compute
from bayescale.fitting import fit
from bayescale.laws import get_law
from bayescale.likelihoods import get_likelihood

_DEFAULT_FLOPS_PER_TOKEN = inspect.signature(fit).parameters["flops_per_token"].default

SUBSET_SHARE = 0.25
"""Share of the budgets each default subset leaves out, at the small end or the large end."""


def default_subsets(compute):
    """All runs; without the smallest quarter of budgets; without the largest quarter.

    The two cuts are (Mis)Fitting's: fits of small runs are dominated by terms that
    vanish at scale, and the largest runs decide the exponents; a conclusion that moves
    when either is left out rests on them.
    """
    low, high = np.quantile(compute, [SUBSET_SHARE, 1 - SUBSET_SHARE])
    return {
        "all runs": np.ones(len(compute), bool),
        f"budgets <= {low:.3g} dropped": compute > low,
        f"budgets >= {high:.3g} dropped": compute < high,
    }


def sensitivity(
    data,
    C,
    *,
    laws=("chinchilla", "kaplan"),
    likelihoods=("normal", "student_t"),
    subsets=None,
    answer="tokens_per_param",
    ci=0.9,
    unique_tokens=None,
    client=None,
    progress=True,
    **fit_options,
):
    """Re-answer one compute-optimal question across laws, likelihoods and data subsets.

    Parameters
    ----------
    data : DataFrame or path
        The runs, as for :func:`bayescale.fit`.
    C : float
        The FLOP budget the question is asked at.
    laws, likelihoods : sequence of str
        Laws with inputs ``N`` and ``D`` (:func:`bayescale.compute_optimal`) and
        likelihoods; every pair is fitted.
    subsets : dict of str to array_like of bool, optional
        Named row masks of ``data``. Default (:func:`default_subsets`): all runs, the
        smallest quarter of budgets dropped, the largest quarter dropped (budgets
        ``k N D`` with the fit's FLOP rule).
    answer : str
        The quantity re-answered: one of ``N_opt``, ``D_opt``, ``tokens_per_param``
        (``D*/N*``) or ``loss_opt``.
    ci : float
        Probability of each row's central interval.
    unique_tokens : float, optional
        ``U`` for laws with a unique-token input, as for :func:`bayescale.compute_optimal`.
    client : distributed.Client or str, optional
        ``None`` (default) fits one after another in this process; a Dask client, a
        scheduler address or ``"local"`` fits them as one batch there.
    progress : bool
        A progress bar over the fits.
    **fit_options
        Passed to every :func:`bayescale.fit` (``y``, ``inputs``, ``flops_per_token``,
        ``draws``, ``random_seed``...). Grouped fits are not supported: a decision per group
        is asked of each group's fit.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(law, likelihood, subset)``: ``runs`` fitted, ``median``, ``lower``,
        ``upper`` of the answer, ``reach`` (``C`` over the largest fitted budget),
        ``converged``, and ``error`` (the message of a fit the engine refused, else empty).
        ``attrs`` mark fits that failed their checks (:func:`bayescale.diagnostics.flag`),
        with one warning, and in ``own_backtest_failed`` those whose own backtest (behind
        the extrapolation error of an answer beyond the data) failed its, with another.

    Raises
    ------
    SpecError
        For an unknown ``answer``, empty or bare-string ``laws``/``likelihoods``, a law
        without inputs ``N`` and ``D``, ``group=``, a budget that is not one positive
        number, or a subset mask of the wrong length.
    DataError
        As :func:`bayescale.fit` for the runs, before any fitting.
    """
    check_probability(ci, "ci")
    if answer not in SUMMARIES:
        raise SpecError(f"answer must be one of {', '.join(SUMMARIES)}, got {answer!r}")
    if not is_number(C) or not 0 < C < np.inf:
        raise SpecError(f"C must be one positive FLOP budget, got {C!r}")
    if fit_options.get("group") is not None:
        raise SpecError("sensitivity takes ungrouped fits; ask it of each group's runs")
    if isinstance(laws, str) or isinstance(likelihoods, str) or not laws or not likelihoods:
        raise SpecError(
            f"laws and likelihoods must be non-empty lists of names, got {laws!r} and "
            f"{likelihoods!r}"
        )
    laws = [get_law(law) for law in laws]
    likelihoods = [get_likelihood(lik) for lik in likelihoods]
    if wrong := [law.name for law in laws if not {"N", "D"} <= set(law.inputs)]:
        raise SpecError(f"laws {wrong} have no inputs N and D: no compute-optimal allocation")
    table = data_mod.read_table(data)
    k = fit_options.get("flops_per_token", _DEFAULT_FLOPS_PER_TOKEN)
    for support in dict.fromkeys(lik.support for lik in likelihoods):  # as fit checks them,
        runs = data_mod.prepare(  # inputs and response, before any fitting
            table,
            laws[0],
            fit_options.get("y", "loss"),
            inputs=fit_options.get("inputs"),
            flops_per_token=k,
            y_log_sd=fit_options.get("y_log_sd"),
            y_support=support,
        ).frame
    masks = _masks(table, row_compute(runs, k), subsets)
    combos = [(law, lik, name) for law in laws for lik in likelihoods for name in masks]
    tasks = [
        {**fit_options, "data": table[masks[name]], "law": law, "likelihood": lik}
        for law, lik, name in combos
    ]
    with warnings.catch_warnings():  # the table says it once, below
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = fit_many(
            tasks, client=False if client is None else client, progress=progress, errors="return"
        )
    rows, answered = [], {}
    for (law, lik, name), task, fitted in zip(combos, tasks, fits, strict=True):
        row = {"law": law.name, "likelihood": lik.name, "subset": name}
        row["runs"] = len(task["data"])
        if isinstance(fitted, BayescaleError):
            rows.append(row | {"error": str(fitted)})
            continue
        if isinstance(fitted, Exception):
            raise fitted
        with warnings.catch_warnings():  # said once for the whole table, below
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = compute_optimal(fitted, C, ci=ci, unique_tokens=unique_tokens).iloc[0]
        answered[f"{law.name}, {lik.name}, {name}"] = fitted
        rows.append(
            row
            | {q: result[f"{answer}_{q}"] for q in ("median", "lower", "upper")}
            | {"reach": result["reach"], "converged": fitted.converged, "error": ""}
        )
    columns = ["runs", "median", "lower", "upper", "reach", "converged", "error"]
    out = pd.DataFrame(rows).set_index(["law", "likelihood", "subset"]).reindex(columns=columns)
    out.attrs["answer"], out.attrs["C"] = answer, float(C)
    suspect = [key for key, fitted in answered.items() if fitted.own_backtest_failure()]
    out.attrs["own_backtest_failed"] = suspect
    if suspect:  # their own warnings were silenced with the fits' above
        warnings.warn(
            f"sensitivity: the own backtests of {suspect} (each a refit on its smaller runs) "
            "failed their convergence checks; the extrapolation errors they centre are used "
            "all the same",
            ConvergenceWarning,
            stacklevel=2,
        )
    return flag(out, answered, f"sensitivity of {answer} at C = {C:.3g}")


def _masks(table, budgets, subsets):
    """The subsets' row masks of ``table``: given, or :func:`default_subsets` of ``budgets``."""
    if subsets is None:
        return default_subsets(budgets)
    if not isinstance(subsets, dict) or not subsets:
        raise SpecError("subsets must map names to row masks of the data, e.g. {'all': mask}")
    masks = {}
    for name, mask in subsets.items():
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (len(table),):
            raise SpecError(
                f"subset {name!r} must be {len(table)} booleans, one per row of the data; "
                f"got {mask.dtype} of shape {mask.shape}"
            )
        if not mask.any():
            raise DataError(f"subset {name!r} keeps no row of the data")
        masks[str(name)] = mask
    return masks
