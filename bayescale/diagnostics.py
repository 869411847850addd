"""Convergence checks that are acted on, not just printed.

Thresholds follow Vehtari et al. (2021, "Rank-normalization, folding, and localization"):
r-hat <= 1.01, bulk and tail ESS >= 100 per chain; any divergence is reported, and E-BFMI
below 0.3 flags poor exploration of the energy distribution (Betancourt 2016).
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from bayescale import stats

MAX_R_HAT = 1.01
MIN_ESS_PER_CHAIN = 100
MIN_BFMI = 0.3


class ConvergenceWarning(UserWarning):
    """A fit did not pass its convergence checks; its results should not be trusted."""


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
    messages : list of str
        One human-readable line per failed check (empty when ``ok``).
    """

    ok: bool
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    bfmi: float
    chains: int
    draws: int
    messages: list = field(default_factory=list)

    def __str__(self):
        head = "converged" if self.ok else "NOT CONVERGED"
        line = (
            f"{head}: max r_hat {self.max_r_hat:.4f}, min ESS bulk {self.min_ess_bulk:.0f} / "
            f"tail {self.min_ess_tail:.0f}, {self.divergences} divergences, "
            f"min E-BFMI {self.bfmi:.2f} ({self.chains} chains x {self.draws} draws)"
        )
        return "\n".join([line, *(f"  - {m}" for m in self.messages)])


def check(posterior, table):
    """Run the checks on a posterior and its :func:`bayescale.stats.summary` table."""
    sample_stats = posterior["sample_stats"]
    chains = int(posterior["posterior"].sizes["chain"])
    draws = int(posterior["posterior"].sizes["draw"])
    divergences = int(np.asarray(sample_stats["diverging"]).sum())
    bfmi = float(np.min(stats.bfmi(posterior))) if "energy" in sample_stats else float("nan")
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
    return Diagnostics(
        ok=not messages,
        max_r_hat=max_r_hat,
        min_ess_bulk=min_bulk,
        min_ess_tail=min_tail,
        divergences=divergences,
        bfmi=bfmi,
        chains=chains,
        draws=draws,
        messages=messages,
    )


def warn_if_bad(diagnostics, label):
    """Emit a :class:`ConvergenceWarning` for a failed fit."""
    if not diagnostics.ok:
        warnings.warn(f"{label}: {diagnostics}", ConvergenceWarning, stacklevel=3)
