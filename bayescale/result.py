"""``ScalingFit``: the immutable result of a fit.

It carries everything needed to predict and to report (posterior, law, priors, likelihood,
data, reference scales, sampler settings, seed, versions), so that :func:`bayescale.load`
of a saved fit predicts exactly as the original. Nothing mutates it: ``predict`` returns
new tables.
"""

from functools import cached_property

import numpy as np
import pandas as pd

from bayescale import data as data_mod
from bayescale import diagnostics as diag_mod
from bayescale import stats
from bayescale.ops import NUMPY

_ROW_CHUNK = 2048


class ScalingFit:
    """Posterior fit of a scaling law.

    Use :func:`bayescale.fit` to make one and :func:`bayescale.load` to read one back.

    Attributes
    ----------
    posterior : xarray.DataTree
        Groups ``posterior`` (free and derived parameters), ``sample_stats``,
        ``log_likelihood`` (pointwise, for LOO) and ``observed_data``.
    law : ScalingLaw
    priors : dict of str to Prior
        Every prior used, the law's and the likelihood's.
    likelihood : Likelihood
    data : FitData
        The validated table that was fitted.
    log_ref : dict of str to float
        Log reference scale of each input.
    settings : dict
        Sampler, chains, draws, tune, target_accept, random_seed, flops_per_token,
        column mapping.
    versions : dict
        Package versions the fit was made with.
    """

    def __init__(self, posterior, law, priors, likelihood, data, log_ref, settings, versions):
        self.posterior = posterior
        self.law = law
        self.priors = dict(priors)
        self.likelihood = likelihood
        self.data = data
        self.log_ref = dict(log_ref)
        self.settings = dict(settings)
        self.versions = dict(versions)

    @property
    def parameter_names(self):
        """Free parameters of the law and the likelihood, then derived quantities."""
        derived = [v for v in self.posterior["posterior"].data_vars if v not in self.priors]
        return [*self.law.parameters, *self.likelihood.priors, *derived]

    def summary(self, ci=0.9):
        """Posterior table, one row per parameter.

        Parameters
        ----------
        ci : float
            Probability of the central (equal-tailed) interval in ``lower``/``upper``.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean, sd, median, lower, upper, r_hat, ess_bulk, ess_tail, mcse_mean``.
        """
        _check_ci(ci)
        return stats.summary(self.posterior, self.parameter_names, ci)

    @cached_property
    def diagnostics(self):
        """:class:`~bayescale.diagnostics.Diagnostics` of the free parameters."""
        free = [*self.law.parameters, *self.likelihood.priors]
        return diag_mod.check(self.posterior, stats.summary(self.posterior, free, 0.9))

    def draws(self, names=None):
        """Posterior draws flattened over chains, as a dict of 1-d arrays."""
        post = self.posterior["posterior"]
        names = names or self.parameter_names
        return {k: post[k].to_numpy().reshape(-1) for k in names}

    def log_mean_draws(self, frame):
        """``log`` of the law's mean, shape (draws, rows), at validated inputs ``frame``."""
        p = {k: v[:, None] for k, v in self.draws(self.law.parameters).items()}
        z = {
            k: np.log(frame[k].to_numpy(float))[None, :] - self.log_ref[k] for k in self.law.inputs
        }
        return self.law.log_mean(NUMPY, p, z)

    def predict(self, new_data, ci=0.9, kind="mean", random_seed=None):
        """Predict at new inputs, with posterior intervals, in original units.

        Parameters
        ----------
        new_data : DataFrame, dict of arrays, or CSV path
            Columns named like the fitted data (the same ``inputs=`` mapping and
            ``C``-to-``D`` conversion apply).
        ci : float
            Probability of the central interval.
        kind : {"mean", "observed"}
            ``"mean"``: the law's value (parameter uncertainty only).
            ``"observed"``: a new run's observed value (adds observation noise).
        random_seed : int, optional
            Seed for the noise draws of ``kind="observed"`` (default: the fit's seed).

        Returns
        -------
        pandas.DataFrame
            The law's inputs, then ``median``, ``lower``, ``upper``.
        """
        _check_ci(ci)
        if kind not in ("mean", "observed"):
            raise ValueError(f"kind must be 'mean' or 'observed', got {kind!r}")
        if isinstance(new_data, dict):
            new_data = pd.DataFrame(new_data)
        frame = data_mod.prepare(
            new_data,
            self.law,
            y=None,
            inputs=self.settings["inputs"],
            flops_per_token=self.settings["flops_per_token"],
        ).frame
        seed = self.settings["random_seed"] if random_seed is None else random_seed
        rng = np.random.default_rng(seed)
        lik = {k: v[:, None] for k, v in self.draws(list(self.likelihood.priors)).items()}
        out = []
        for start in range(0, len(frame), _ROW_CHUNK):
            chunk = frame.iloc[start : start + _ROW_CHUNK]
            log_mu = self.log_mean_draws(chunk)
            if kind == "observed":
                log_mu = self.likelihood.draw(log_mu, lik, rng)
            med, lo, hi = stats.quantiles(np.exp(log_mu), ci, axis=0)
            out.append(chunk.assign(median=med, lower=lo, upper=hi))
        return pd.concat(out)

    def save(self, path):
        """Write the fit to a netCDF file that :func:`bayescale.load` reads back."""
        from bayescale.io import save

        save(self, path)

    def __repr__(self):
        d = self.diagnostics
        return (
            f"<ScalingFit law={self.law.name!r} likelihood={self.likelihood.name!r} "
            f"rows={len(self.data.frame)} y={self.data.y!r}: "
            f"{'converged' if d.ok else 'NOT CONVERGED'}>"
        )


def _check_ci(ci):
    if not 0 < ci < 1:
        raise ValueError(f"ci must be a probability in (0, 1), got {ci!r}")
