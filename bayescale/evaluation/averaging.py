"""Model averaging: predict from a weighted mixture of fits of the same data.

When no single functional form is clearly right (the usual case when extrapolating), the
mixture of the candidates' predictive distributions with stacking weights (Yao, Vehtari,
Simpson and Gelman 2018) predicts better than picking the best by LOO: weights are chosen
to maximise the leave-one-out log score of the mixture itself, so a form that is rarely
best but covers what the others miss keeps some weight.
"""

import warnings

import numpy as np
import pandas as pd
from scipy import special

from bayescale.arguments import check_probability, seeded
from bayescale.data import read_table
from bayescale.diagnostics import flag
from bayescale.errors import ConvergenceWarning, SpecError
from bayescale.evaluation.comparison import check_same_data, compare
from bayescale.predictive import quantiles


class AveragedFit:
    """A weighted mixture of :class:`~bayescale.ScalingFit` objects fitted to the same data.

    Use :func:`average` to make one. It predicts like a fit (``predict``,
    ``predictive_draws``, ``log_predictive_density``) with each component's draws in
    proportion to its weight.

    Attributes
    ----------
    fits : dict of str to ScalingFit
    weights : pandas.Series
        Non-negative, summing to 1, indexed like ``fits``.
    """

    def __init__(self, fits, weights):
        self.fits = dict(fits)
        if not self.fits:
            raise SpecError("an average needs at least one fit")
        check_same_data(self.fits)
        given = pd.Series(weights)
        values = pd.to_numeric(given, errors="coerce").reindex(list(self.fits))
        ok = np.isfinite(values.to_numpy(float)).all() and (values >= 0).all()
        if not ok or values.sum() <= 0 or not given.index.isin(list(self.fits)).all():
            raise SpecError(
                f"weights must be >= 0 and finite numbers, one for each fit {list(self.fits)} "
                f"and with a positive sum; got {given.to_dict()}"
            )
        self.weights = values / values.sum()

    @property
    def converged(self):
        """Whether every component fit passed its convergence checks."""
        return all(f.converged for f in self.fits.values())

    def predictive_draws(
        self, new_data, kind="observed", random_seed=0, extrapolation="calibrated"
    ):
        """Draws from the mixture: ``(frame, draws)`` as :meth:`ScalingFit.predictive_draws`.

        Each posterior draw of the mixture comes from fit ``k`` with probability
        ``weights[k]`` (multinomial counts, then draws taken without replacement); each
        component carries the extrapolation error ``extrapolation=`` names.
        """
        frames, draws = self._mixture(new_data, kind, random_seed, extrapolation)
        return next(iter(frames.values())), draws

    def _mixture(self, new_data, kind, random_seed, extrapolation):
        """Each component's validated rows (laws may read other inputs), and the mixture's draws."""
        rng = seeded(random_seed)
        parts = {
            k: f.predictive_draws(new_data, kind, random_seed, extrapolation)
            for k, f in self.fits.items()
        }
        size = min(d.shape[0] for _, d in parts.values())
        counts = rng.multinomial(size, self.weights.to_numpy())
        draws = [
            d[rng.choice(d.shape[0], n, replace=False)]
            for (_, d), n in zip(parts.values(), counts, strict=True)
        ]
        return {k: frame for k, (frame, _) in parts.items()}, np.concatenate(draws, axis=0)

    def predict(self, new_data, ci=0.9, kind="mean", random_seed=0, extrapolation="calibrated"):
        """``median``, ``lower``, ``upper``, ``reach`` of the mixture (see ``ScalingFit``).

        ``reach`` is the largest of the components' (laws of other inputs reach differently:
        a power law in ``N`` beside Chinchilla's ``N D``). Beyond the data,
        ``attrs["extrapolation"]`` names each component's error, at its own reach.
        """
        check_probability(ci, "ci")
        frames, draws = self._mixture(new_data, kind, random_seed, extrapolation)
        med, lo, hi = quantiles(draws, ci, axis=0)
        reaches = {k: f.evaluator.reach(frames[k]) for k, f in self.fits.items()}
        # NaN for a law with no reach (of a loss: loss_to_loss), so it does not decide
        reach = np.fmax.reduce(np.stack(list(reaches.values())), axis=0)
        table = next(iter(frames.values())).assign(median=med, lower=lo, upper=hi, reach=reach)
        notes = {k: f.extrapolation_note(reaches[k], extrapolation) for k, f in self.fits.items()}
        if any(notes.values()):  # each component carries its own error
            table.attrs["extrapolation"] = "; ".join(f"{k}: {n}" for k, n in notes.items() if n)
        return flag(table, self.fits, "averaged prediction")

    @property
    def likelihood(self):
        """The components' likelihood, whose scale they share (:func:`check_same_data`)."""
        return next(iter(self.fits.values())).likelihood

    def log_predictive_density(self, data, extrapolation="calibrated"):
        """``log sum_k w_k p_k(y_i)`` per held-out row (components' exact densities)."""
        data = read_table(data)
        lpd = np.stack([f.log_predictive_density(data, extrapolation) for f in self.fits.values()])
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights.to_numpy())[:, None]
        return special.logsumexp(lpd + log_w, axis=0)

    def __repr__(self):
        parts = ", ".join(f"{k}: {w:.2f}" for k, w in self.weights.items())
        return f"<AveragedFit {parts}>"


def average(fits, weights=None, method="stacking"):
    """Mixture of fits of the same data, weighted by stacking unless ``weights`` are given.

    Parameters
    ----------
    fits : dict of str to ScalingFit
        Fits of the same observations (as for :func:`bayescale.compare`): at least two, or
        one with fixed ``weights``.
    weights : dict or Series, optional
        Fixed weights by fit name (finite, >= 0, with a positive sum; normalised to 1);
        default: :func:`bayescale.compare`'s ``method`` weights.
    method : {"stacking", "bb-pseudo-bma", "pseudo-bma"}

    Returns
    -------
    AveragedFit
    """
    if not isinstance(fits, dict):
        raise SpecError(f"average takes a dict of name -> fit, not {type(fits).__name__}")
    if weights is None:
        with warnings.catch_warnings():  # said by the average's predictions, not twice
            warnings.simplefilter("ignore", ConvergenceWarning)
            weights = compare(fits, method=method)["weight"]
    return AveragedFit(fits, weights)
