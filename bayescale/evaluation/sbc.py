"""Simulation-based calibration (SBC): does fitting recover draws from its own prior.

For ``s = 1..S``: draw parameters ``theta_s`` from the priors, simulate a data set from the law
and the likelihood at fixed inputs, fit it with :func:`bayescale.fit` under the same priors,
and record the rank of each true value among ``L`` thinned posterior draws. If simulation
and inference agree (right priors, right likelihood, a sampler that explores the posterior)
the truth and the posterior draws are exchangeable, so every rank is uniform on ``0..L``
(Talts, Betancourt, Simpson, Vehtari and Gelman 2018, arXiv:1804.06788). A biased posterior
piles ranks at one end; an over-confident one at both ends; an under-confident one in the
middle.

Besides each sampled parameter, the rank of the data's total log-likelihood is recorded
(``"log_lik"``): any function of parameters and data has uniform ranks under calibration,
and this one reacts to errors in the likelihood that leave each parameter's marginal
nearly right (Modrák et al. 2023, arXiv:2211.02383). It is the sum of the pointwise terms
the fit stores for LOO, so for noise correlated along a curve (``ou_normal``, simulated
curve by curve with :meth:`~bayescale.likelihoods.Likelihood.simulate`) it is the sum of
each point's density given the others: still a function of parameters and data.

Simulations are never dropped: dropping those that diverged or failed to converge
conditions on the data and biases the ranks. Their diagnostics are kept for the report.
A simulated data set the engine rejects (or cannot start a chain on) is recorded in
``errors``; it has no ranks, so a run with errors is not a valid SBC.
"""

import itertools
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from bayescale.arguments import check_count
from bayescale.batch import fit_many
from bayescale.data import FitData, prepare
from bayescale.engine.build import OBSERVED
from bayescale.errors import BayescaleError, ConvergenceWarning, DataError, SpecError
from bayescale.fitting import fit
from bayescale.laws import get_law
from bayescale.likelihoods import get_likelihood
from bayescale.predictive import Evaluator
from bayescale.progress import progress_bar
from bayescale.spec import resolve_priors

LOG_LIK = "log_lik"
"""Column of :attr:`SBCResult.ranks` holding the rank of the total log-likelihood."""


@dataclass
class SBCResult:
    """Ranks and sampling diagnostics of one SBC run.

    Attributes
    ----------
    law : str
        The law's name and options.
    n_ranks : int
        ``L``: posterior draws each truth is ranked among, so ranks lie in ``0..L``.
    ranks : pandas.DataFrame
        One row per completed simulation, one column per parameter (and ``log_lik``).
    diagnostics : pandas.DataFrame
        Per completed simulation: ``divergences``, ``max_r_hat``, ``min_ess_bulk``,
        ``max_depth_share`` (draws that hit the maximum tree depth), ``converged`` (all of
        :class:`bayescale.Diagnostics` passed) and ``seconds``.
    errors : list of str
        One line per simulation that could not be fitted.
    """

    law: str
    n_ranks: int
    ranks: pd.DataFrame
    diagnostics: pd.DataFrame
    errors: list = field(default_factory=list)

    def pvalues(self, bins=5):
        """Chi-square p-value of rank uniformity per column (see :func:`rank_pvalue`)."""
        return pd.Series(
            {k: rank_pvalue(v.to_numpy(), self.n_ranks, bins) for k, v in self.ranks.items()}
        )

    def report(self, bins=5):
        """Text summary: sims, failures, divergences, p-values and each rank histogram."""
        d = self.diagnostics
        lines = [
            f"SBC {self.law}: {len(self.ranks)} simulations ranked among L={self.n_ranks} "
            f"draws, {len(self.errors)} errors; {int((d['divergences'] > 0).sum())} sims with "
            f"divergences ({int(d['divergences'].sum())} in all), "
            f"{int((~d['converged']).sum())} failing convergence checks "
            f"(worst r_hat {d['max_r_hat'].max():.3f}, lowest ESS {d['min_ess_bulk'].min():.0f}, "
            f"{int((d['max_depth_share'] > 0).sum())} sims hitting the maximum tree depth, on up "
            f"to {d['max_depth_share'].max():.1%} of draws)"
            + (f"; {d['seconds'].sum():.0f} s fitting" if d["seconds"].notna().any() else "")
        ]
        for name, p in self.pvalues(bins).items():
            counts = np.bincount(
                binned(self.ranks[name].to_numpy(), self.n_ranks, bins), minlength=bins
            )
            lines.append(f"  {name:>12}: p = {p:.3g}, bin counts {counts.tolist()}")
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


def binned(ranks, n_ranks, bins):
    """Equal-probability bin index of each rank in ``0..n_ranks``.

    Raises
    ------
    ValueError
        Unless ``bins`` divides the ``n_ranks + 1`` possible ranks (unequal bins would make
        the chi-square test's expected counts wrong).
    """
    if (n_ranks + 1) % bins:
        raise SpecError(f"bins={bins} must divide the {n_ranks + 1} possible ranks 0..{n_ranks}")
    return np.asarray(ranks, int) // ((n_ranks + 1) // bins)


def _tables(n, k):
    """Every table of ``k`` bin counts summing to ``n`` (``k - 1`` cuts among ``n + k - 1``)."""
    cuts = np.array(list(itertools.combinations(range(n + k - 1), k - 1))).reshape(-1, k - 1)
    edges = np.column_stack([np.full(len(cuts), -1), cuts, np.full(len(cuts), n + k - 1)])
    return np.diff(edges, axis=1) - 1


def _log_multinomial(tables, probs):
    n = tables.sum(axis=1)
    return (
        special.gammaln(n + 1)
        - special.gammaln(tables + 1).sum(axis=1)
        + (tables * np.log(probs)).sum(axis=1)
    )


def _exact(n, k):
    """Whether the exact test is affordable: at most 2 million tables."""
    return special.comb(n + k - 1, k - 1) <= 2e6


def rank_pvalue(ranks, n_ranks, bins=5):
    """p-value of Pearson's chi-square test that ``ranks`` are uniform on ``0..n_ranks``.

    Ranks are pooled into ``bins`` equal-probability bins. SBC runs are small (20-30
    simulations give 4-6 expected counts per bin), where the chi-square distribution is a
    poor guide to the far tail that a Bonferroni-corrected level probes; so the p-value is
    exact: the multinomial probability of every table of counts whose statistic is at least
    the observed one, enumerated while there are at most 2 million tables (30 ranks in 5
    bins: 46,376), and the asymptotic chi-square p-value beyond that.
    """
    counts = np.bincount(binned(ranks, n_ranks, bins), minlength=bins)
    n = int(counts.sum())
    if not _exact(n, bins):
        return float(stats.chisquare(counts).pvalue)
    tables = _tables(n, bins)
    spread = ((tables - n / bins) ** 2).sum(axis=1)  # the statistic, up to a factor k / n
    extreme = spread >= ((counts - n / bins) ** 2).sum() - 1e-9
    null = _log_multinomial(tables[extreme], np.full(bins, 1.0 / bins))
    return float(min(1.0, np.exp(null).sum()))


def rank_test_power(n_sims, bins, level, bin_probs):
    """Probability that :func:`rank_pvalue` falls below ``level`` for given bin probabilities.

    Exact (by enumeration), for planning an SBC run: e.g. the bin probabilities of a
    posterior biased by one posterior sd are ``diff(Phi(Phi^-1(edges) + 1))``.

    Parameters
    ----------
    n_sims : int
        Simulations ``S``.
    bins : int
    level : float
        Level of one test (after any multiplicity correction).
    bin_probs : array_like
        Probability of a rank landing in each bin under the alternative.
    """
    if not _exact(n_sims, bins):
        raise SpecError(f"{n_sims} simulations in {bins} bins are too many to enumerate")
    tables = _tables(n_sims, bins)
    null = np.exp(_log_multinomial(tables, np.full(bins, 1.0 / bins)))
    spread = ((tables - n_sims / bins) ** 2).sum(axis=1)
    order = np.argsort(-spread, kind="stable")
    tail = np.cumsum(null[order])  # null probability of a spread at least this large...
    last = np.searchsorted(-spread[order], -spread[order], side="right") - 1  # ...with ties
    pvalues = np.empty(len(tables))
    pvalues[order] = tail[last]
    probs = np.clip(np.asarray(bin_probs, float), 1e-300, None)
    return float(np.exp(_log_multinomial(tables, probs))[pvalues < level].sum())


def ranks_of(truth, draws, n_ranks):
    """Rank of ``truth`` among ``n_ranks`` draws thinned evenly from ``draws``.

    ``draws`` has shape (chain, draw); draws are taken evenly spaced within the pooled
    chains, so that they are nearly independent when ``chains * draws / n_ranks`` exceeds
    the autocorrelation time (Talts et al. section 5.1).
    """
    pooled = np.asarray(draws, float).reshape(-1)
    if n_ranks > pooled.size:
        raise SpecError(f"n_ranks={n_ranks} exceeds the {pooled.size} posterior draws")
    keep = pooled[np.round(np.linspace(0, pooled.size - 1, n_ranks)).astype(int)]
    return int(np.sum(keep < truth))


def simulate(law, likelihood, inputs, priors, rng):
    """One SBC draw: parameters from ``priors`` and a response at ``inputs``.

    Returns
    -------
    truth : dict of str to float
        Law and likelihood parameters.
    frame : pandas.DataFrame
        ``inputs`` and the simulated response ``y``.
    log_lik : float
        Log-likelihood of the simulated data at ``truth``, summed over the pointwise terms
        the fit stores (:meth:`~bayescale.likelihoods.Likelihood.loo_logpdf`).
    """
    truth = {k: float(priors[k].scipy().rvs(random_state=rng)) for k in priors}
    frame = pd.DataFrame({k: np.asarray(inputs[k], float) for k in law.inputs})
    log_ref = law.log_reference(frame)
    fitted = FitData(frame, law.inputs, "y")
    truth_model = Evaluator(law, log_ref, truth, likelihood=likelihood, fitted=fitted)
    frame["y"] = truth_model.simulate(rng)
    log_lik = truth_model.fitted_log_likelihood(likelihood.observe(frame["y"].to_numpy()))
    return truth, frame, float(np.sum(log_lik))


def sbc(
    law,
    inputs,
    *,
    likelihood="normal",
    priors=None,
    n_sims=30,
    n_ranks=59,
    chains=2,
    draws=300,
    tune=400,
    target_accept=0.8,
    random_seed=0,
    progress=True,
    client=None,
):
    """Simulation-based calibration of ``law`` with default (or given) priors.

    Parameters
    ----------
    law : str or ScalingLaw
        A law name or instance (with its options, e.g. ``get_law("downstream", floor=0.25)``).
    inputs : mapping of str to array_like
        The fixed design: raw values of every law input, one row per simulated run.
    likelihood : str or Likelihood
        Observation model used both to simulate and to fit.
    priors : dict of str to Prior, optional
        Overrides of the default priors, used both to simulate and to fit.
    n_sims : int
        Number of simulated data sets ``S``.
    n_ranks : int
        ``L``: thinned posterior draws per fit; ranks lie in ``0..L``. Choose it so that
        ``chains * draws / L`` is a few times the autocorrelation time.
    chains, draws, tune, target_accept
        NUTS settings of every fit (as for :func:`bayescale.fit`).
    random_seed : int
        Seeds simulation ``s`` (``numpy.random.default_rng([random_seed, s])``) and its fit.
    progress : bool
        A progress bar over the simulations in a terminal or notebook
        (:mod:`bayescale.progress`).
    client : distributed.Client or str, optional
        ``None`` (default) fits the simulations one after another in this process. A Dask
        client, a scheduler address or ``"local"`` (a local cluster) fits them as one batch with
        :func:`bayescale.fit_many`: the same fits, bit for bit, so the same ranks; the
        per-fit ``seconds`` are then not measured (NaN).

    Returns
    -------
    SBCResult
    """
    check_count(n_sims, "n_sims")
    check_count(n_ranks, "n_ranks")
    law = get_law(law)
    lik = get_likelihood(likelihood)
    all_priors = resolve_priors(law, lik, priors, {})  # no groups, so no group scales
    names = [*law.parameters, *lik.priors]
    design = prepare(inputs, law, None).frame  # a missing or bad input named, as for a fit
    sims = [
        simulate(law, lik, design, all_priors, np.random.default_rng([random_seed, s]))
        for s in range(n_sims)
    ]
    settings = {"chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept}
    tasks = [
        {"data": frame, "law": law, "y": "y", "likelihood": lik, "priors": priors, **settings}
        | {"random_seed": random_seed * 100_003 + s}
        for s, (_, frame, _) in enumerate(sims)
    ]
    ranks, diags, errors = [], [], []
    fitted = _fits(tasks, client, progress, f"sbc {law.name}")
    for s, ((truth, _, log_lik), (result, seconds)) in enumerate(zip(sims, fitted, strict=True)):
        if isinstance(result, BayescaleError):
            errors.append(f"simulation {s} ({truth}): {type(result).__name__}: {result}")
            continue
        post = result.posterior["posterior"]
        row = {k: ranks_of(truth[k], post[k].to_numpy(), n_ranks) for k in names}
        total = result.posterior["log_likelihood"][OBSERVED].to_numpy().sum(axis=-1)
        row[LOG_LIK] = ranks_of(log_lik, total, n_ranks)
        ranks.append(row)
        d = result.diagnostics
        diags.append(
            {
                "divergences": d.divergences,
                "max_r_hat": d.max_r_hat,
                "min_ess_bulk": d.min_ess_bulk,
                "max_depth_share": d.max_depth_share,
                "converged": d.ok,
                "seconds": seconds,
            }
        )
    if not ranks:  # uniform p-values of no ranks would read as a pass
        raise DataError(
            f"SBC of {law.name}: all {n_sims} simulations failed to fit, so there is "
            f"nothing to rank; the first: {errors[0]}"
        )
    columns = [*names, LOG_LIK]
    label = law.name + "".join(f", {k}={v!r}" for k, v in law.options.items())
    return SBCResult(
        label,
        n_ranks,
        pd.DataFrame(ranks, columns=columns),
        pd.DataFrame(
            diags,
            columns=[
                "divergences",
                "max_r_hat",
                "min_ess_bulk",
                "max_depth_share",
                "converged",
                "seconds",
            ],
        ),
        errors,
    )


def _fits(tasks, client, progress, desc):
    """``(fit or BayescaleError, seconds)`` per task, in order: here, or as one batch.

    Convergence is recorded per simulation, so the fits' warnings are not raised; an
    error the engine raises for a simulated data set takes that fit's place (any other
    exception propagates).
    """
    if client is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded by the caller
            results = fit_many(tasks, client=client, progress=progress, errors="return")
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, BayescaleError):
                raise result
            yield result, float("nan")
        return
    for task in progress_bar(tasks, desc=desc, progress=progress):
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # recorded by the caller
                result = fit(**task)
        except BayescaleError as err:
            result = err
        yield result, time.perf_counter() - start
