"""Convergence checks that are acted on, not just printed.

Thresholds follow Vehtari et al. (2021, "Rank-normalization, folding, and localization"):
r-hat <= 1.01, bulk and tail ESS >= 100 per chain; any divergence is reported, and E-BFMI
below 0.3 flags poor exploration of the energy distribution (Betancourt 2016).

A chain whose median log-likelihood lies over 10 nats below the best chain's is named: its
draws fit the data e^10 times worse, so unless its mode is vastly wider it holds negligible
posterior mass, and the chain never left it, which r-hat reports only as "chains disagree".
Between chains of a converged fit the medians differ by a fraction of a nat (the log-
likelihood's posterior sd is about sqrt(parameters / 2)). Measured on one-break BNSL fits
of the 72 Revisiting-NSL image classification curves
(``case_studies/revisiting_nsl_backtest.py``): 0.06-0.63 nats on the 41 converged fits; 9
of the 31 others had a chain 27-147 nats behind.

Tree depth. NUTS ends a trajectory when it turns back on itself (the no-U-turn criterion),
diverges, or its tree reaches the maximum depth: 10 doublings, ``2**10 - 1 = 1023``
leapfrog steps, in all three samplers (the depth each ran with is the ``max_tree_depth``
attribute of ``sample_stats``, see :mod:`bayescale.engine.sample`). A draw that hits the
maximum was cut short before its trajectory crossed the posterior, so successive draws
move by a fraction of its width, towards a random walk, at the full price of 1023
gradients per draw (Betancourt 2017, "A Conceptual Introduction to Hamiltonian Monte
Carlo", arXiv:1701.02434, on why the integration time must follow the posterior's extent).
It means the step size, adapted to the posterior's narrowest direction, is tiny against
its widest: a badly scaled or strongly correlated posterior, which reparameterisation
fixes; raising the maximum depth only buys longer trajectories through the same geometry.
Stan warns on any transition that hits ``max_treedepth`` and its guide to its warnings
(mc-stan.org/misc/warnings) calls it an efficiency concern, where divergences are a
validity one. Here more than 1% of draws at the maximum (:data:`MAX_DEPTH_SHARE`) fails
the check: a chain whose trajectories are cut short that often mixes slowly, which is
where r-hat and ESS are least to be trusted, and a sweep that saturates every draw (as
real grouped sweeps did, issue 19) needs a better model, not more compute. A few
saturated draws among thousands are counted on the first line of every report but do not
fail it (measured: 1 of 4,000 on the Chinchilla backtest fit, 4 of 4,000 on the Pythia
loss-to-loss fit, both with bulk ESS above 900 and r-hat below 1.005).

The share is read from each sampler's per-draw flag (names measured on pymc 6.4, nutpie
0.16, numpyro 0.22): ``reached_max_treedepth`` (PyMC; bayescale's numpyro program derives
it from the leapfrog steps, see :mod:`bayescale.engine.jax_nuts`), ``maxdepth_reached``
(nutpie) or ``reached_max_tree_depth`` (ArviZ's own numpyro converter). PyMC and nutpie
flag a draw only when the depth limit, not a U-turn or a divergence, ended it; the numpyro
test (Stan's) also counts a full tree whose last doubling turned, which would have ended
there anyway: the two differ only on draws of exactly 1023 steps. A posterior without a
flag (a hand-made one, or a numpyro fit saved before the flag was recorded) has a NaN
share and no tree-depth check.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from bayescale import arviz_adapter
from bayescale.errors import ConvergenceWarning

MAX_R_HAT = 1.01
MIN_ESS_PER_CHAIN = 100
MIN_BFMI = 0.3
MAX_CHAIN_GAP = 10.0
MAX_DEPTH_SHARE = 0.01
MAX_DEPTH_FLAGS = ("reached_max_treedepth", "maxdepth_reached", "reached_max_tree_depth")
"""Per-draw "hit the maximum tree depth" statistics, by sampler (see the module docstring)."""


@dataclass(frozen=True)
class Diagnostics:
    """Convergence checks of one fit.

    Attributes
    ----------
    ok : bool
        True when every check passes.
    max_r_hat, min_ess_bulk, min_ess_tail : float
        Worst values over all parameters.
    divergences : int
        Divergent transitions after tuning.
    bfmi : float
        Lowest E-BFMI over chains.
    chain_gap : float
        How far the worst chain's median log-likelihood lies below the best chain's (nats;
        NaN without a log-likelihood).
    max_depth_share : float
        Share of draws whose NUTS trajectory hit the sampler's maximum tree depth (NaN when
        the sampler records no such flag).
    mean_steps : float
        Mean leapfrog steps (gradient evaluations) per draw (NaN when not recorded).
    messages : list of str
        One human-readable line per failed check (empty when ``ok``).
    """

    ok: bool
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    bfmi: float
    chain_gap: float
    max_depth_share: float
    mean_steps: float
    chains: int
    draws: int
    messages: list = field(default_factory=list)

    def checks(self):
        """Every check laid out: ``(check, value as shown, requirement, passed)``.

        The thresholds are this module's, the ones :func:`check` applies; ``passed`` is
        None for a statistic the sampler did not record (NaN). :attr:`ok` and
        :attr:`messages` remain the verdict; this is for reports that show every value,
        passed or not.
        """
        min_ess = MIN_ESS_PER_CHAIN * self.chains
        per_chain = f"≥ {min_ess} ({MIN_ESS_PER_CHAIN} per chain)"
        rows = [  # (check, value, how it is shown, requirement, whether it passes)
            (
                "chains",
                self.chains,
                f"{self.chains} x {self.draws} draws",
                "at least 2",
                self.chains >= 2,
            ),
            (
                "max r-hat",
                self.max_r_hat,
                f"{self.max_r_hat:.4f}",
                f"≤ {MAX_R_HAT}",
                self.max_r_hat <= MAX_R_HAT,
            ),
            (
                "min bulk ESS",
                self.min_ess_bulk,
                f"{self.min_ess_bulk:.0f}",
                per_chain,
                self.min_ess_bulk >= min_ess,
            ),
            (
                "min tail ESS",
                self.min_ess_tail,
                f"{self.min_ess_tail:.0f}",
                per_chain,
                self.min_ess_tail >= min_ess,
            ),
            (
                "divergent transitions",
                self.divergences,
                str(self.divergences),
                "0",
                self.divergences == 0,
            ),
            (
                "draws at max tree depth",
                self.max_depth_share,
                f"{self.max_depth_share:.1%}",
                f"≤ {MAX_DEPTH_SHARE:.0%}",
                self.max_depth_share <= MAX_DEPTH_SHARE,
            ),
            ("min E-BFMI", self.bfmi, f"{self.bfmi:.3f}", f"≥ {MIN_BFMI}", self.bfmi >= MIN_BFMI),
            (
                "worst chain's log-likelihood gap",
                self.chain_gap,
                f"{self.chain_gap:.1f} nats",
                f"≤ {MAX_CHAIN_GAP:g} nats",
                self.chain_gap <= MAX_CHAIN_GAP,
            ),
        ]
        return [
            (name, None, requirement, None)
            if np.isnan(value)
            else (name, shown, requirement, passed)
            for name, value, shown, requirement, passed in rows
        ]

    def __str__(self):
        head = "converged" if self.ok else "NOT CONVERGED"
        line = (
            f"{head}: max r_hat {self.max_r_hat:.4f}, min ESS bulk {self.min_ess_bulk:.0f} / "
            f"tail {self.min_ess_tail:.0f}, {self.divergences} divergences, "
            f"{self._depth_text()}, min E-BFMI {self.bfmi:.2f} "
            f"({self.chains} chains x {self.draws} draws)"
        )
        return "\n".join([line, *(f"  - {m}" for m in self.messages)])

    def _depth_text(self):
        share = (
            "max tree depth not recorded"
            if np.isnan(self.max_depth_share)
            else f"{round(self.max_depth_share * self.chains * self.draws)} of "
            f"{self.chains * self.draws} draws at max tree depth"
        )
        steps = "?" if np.isnan(self.mean_steps) else f"{self.mean_steps:.0f}"
        return f"{share} ({steps} leapfrog steps per draw)"


def check(posterior, table):
    """Run the checks on a posterior and its :func:`bayescale.arviz_adapter.summary` table."""
    sample_stats = posterior["sample_stats"]
    chains = int(posterior["posterior"].sizes["chain"])
    draws = int(posterior["posterior"].sizes["draw"])
    divergences = int(np.asarray(sample_stats["diverging"]).sum())
    bfmi = (
        float(np.min(arviz_adapter.bfmi(posterior))) if "energy" in sample_stats else float("nan")
    )
    # NaN (one chain, constant draws) counts as failing, never as passing.
    r_hat = table["r_hat"].fillna(np.inf)
    ess = {kind: table[f"ess_{kind}"].fillna(0.0) for kind in ("bulk", "tail")}
    max_r_hat, min_bulk, min_tail = (
        float(r_hat.max()),
        float(ess["bulk"].min()),
        float(ess["tail"].min()),
    )
    min_ess = MIN_ESS_PER_CHAIN * chains
    messages = []
    if chains < 2:
        messages.append("only 1 chain: r-hat cannot detect non-convergence; use >= 4 chains")
    if max_r_hat > MAX_R_HAT:
        worst = r_hat.idxmax()
        messages.append(f"r_hat {max_r_hat:.3f} > {MAX_R_HAT} (worst: {worst}): chains disagree")
    for kind, value in (("bulk", min_bulk), ("tail", min_tail)):
        if value < min_ess:
            worst = ess[kind].idxmin()
            messages.append(f"ESS {kind} {value:.0f} < {min_ess} (worst: {worst}): run more draws")
    if divergences:
        messages.append(
            f"{divergences} divergent transitions: the posterior geometry is not being "
            "explored faithfully; reparameterise or tighten priors before trusting results"
        )
    if bfmi < MIN_BFMI:
        messages.append(f"E-BFMI {bfmi:.2f} < {MIN_BFMI}: poor energy exploration")
    saturated, mean_steps = tree_depth(sample_stats)
    if saturated is not None and saturated.mean() > MAX_DEPTH_SHARE:
        limit = sample_stats.attrs.get("max_tree_depth")
        limit = "" if limit is None else f" ({limit})"
        steps = "" if np.isnan(mean_steps) else f", {mean_steps:.0f} leapfrog steps per draw"
        messages.append(
            f"{int(saturated.sum())} of {saturated.size} draws ({saturated.mean():.1%}) hit "
            f"the maximum tree depth{limit}{steps}, more than {MAX_DEPTH_SHARE:.0%}: NUTS cut "
            "trajectories "
            "short of a U-turn, so draws move by a fraction of the posterior's width; it is "
            "badly scaled or strongly correlated: reparameterise (or tighten priors), as "
            "raising the maximum tree depth only hides it"
        )
    gaps = chain_gaps(posterior)
    stuck = np.flatnonzero(gaps > MAX_CHAIN_GAP)
    if stuck.size:
        messages.append(
            f"chain(s) {stuck.tolist()}: median log-likelihood "
            f"{', '.join(f'{g:.0f}' for g in gaps[stuck])} nats below the best chain's, stuck "
            "in a local mode of negligible mass; refit with another random_seed or compare the modes"
        )
    return Diagnostics(
        ok=not messages,
        max_r_hat=max_r_hat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=divergences,
        bfmi=bfmi,
        chain_gap=float(gaps.max()) if gaps.size else float("nan"),
        max_depth_share=float(saturated.mean()) if saturated is not None else float("nan"),
        mean_steps=mean_steps,
        chains=chains,
        draws=draws,
        messages=messages,
    )


def tree_depth(sample_stats):
    """Which draws hit the maximum tree depth, and the mean leapfrog steps per draw.

    Returns
    -------
    saturated : numpy.ndarray of bool or None
        Per draw (chain, draw), from the first of :data:`MAX_DEPTH_FLAGS` the sampler
        recorded; ``None`` when it recorded none.
    mean_steps : float
        Mean of ``n_steps`` (the name all three samplers use), NaN without it.
    """
    flag = next((name for name in MAX_DEPTH_FLAGS if name in sample_stats), None)
    saturated = None if flag is None else np.asarray(sample_stats[flag], bool)
    steps = sample_stats["n_steps"] if "n_steps" in sample_stats else None
    return saturated, float("nan") if steps is None else float(np.mean(steps))


def chain_gaps(posterior):
    """Per chain: nats by which its median total log-likelihood trails the best chain's."""
    if "log_likelihood" not in posterior.children:
        return np.array([])
    group = posterior["log_likelihood"].to_dataset()
    total = sum(v.sum([d for d in v.dims if d not in ("chain", "draw")]) for v in group.values())
    per_chain = np.median(np.asarray(total.transpose("chain", "draw")), axis=1)
    return per_chain.max() - per_chain


def warn_if_bad(diagnostics, label):
    """Emit a :class:`ConvergenceWarning` for a failed fit."""
    if not diagnostics.ok:
        warnings.warn(f"{label}: {diagnostics}", ConvergenceWarning, stacklevel=3)


def flag(table, fits, what):
    """Mark ``table`` with whether the fits behind it converged; warn once if one did not.

    Every answer drawn from a posterior (a prediction, an average, a comparison, a
    decision) says so when a fit behind it failed its convergence checks, so that a
    number from a bad fit cannot travel on looking like a good one: ``table.attrs``
    gets ``converged`` (False if any fit failed; None where none has checks, e.g. the
    least-squares baseline) and ``unconverged`` (their names), and one
    :class:`ConvergenceWarning` names them with their failed checks.

    Parameters
    ----------
    table : pandas.DataFrame or pandas.Series
        The result, marked in place and returned.
    fits : dict of str to object
        The fits behind it, by name; each has ``converged`` (True, False or None) and,
        when it is a posterior fit, ``diagnostics``.
    what : str
        What the table is ("prediction", "compute-optimal allocation", ...), for the
        warning.
    """
    known = [ok for fit in fits.values() if (ok := getattr(fit, "converged", None)) is not None]
    table.attrs["converged"] = all(known) if known else None
    table.attrs["unconverged"] = unconverged(fits, what, stacklevel=4)
    return table


def unconverged(fits, what, stacklevel=3):
    """The names of ``fits`` that failed their checks, with one warning naming them, if any.

    For answers that have no table to mark (a figure), and for :func:`flag`.
    """
    failed = [name for name, fit in fits.items() if getattr(fit, "converged", None) is False]
    if failed:
        details = "; ".join(f"{name}: {failed_checks(fits[name])}" for name in failed)
        which = (
            "a fit that failed its" if len(failed) == 1 else f"{len(failed)} fits that failed their"
        )
        warnings.warn(
            f"{what} from {which} convergence checks ({details}); "
            "treat it as provisional and see the fit's diagnostics",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    return failed


def failed_checks(fit):
    """The names of the checks ``fit`` failed (its components', for an average)."""
    if hasattr(fit, "fits"):  # an AveragedFit
        return ", ".join(
            f"{k} {failed_checks(f)}" for k, f in fit.fits.items() if f.converged is False
        )
    failed = [name for name, _, _, ok in fit.diagnostics.checks() if ok is False]
    return ", ".join(failed)
