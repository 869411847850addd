"""``ScalingFit``: the immutable result of a fit.

It carries everything needed to predict and to report (posterior, law, priors, likelihood,
data, reference scales, sampler settings, seed, versions), so that :func:`bayescale.load`
of a saved fit predicts exactly as the original. Nothing mutates it: ``predict`` returns
new tables.
"""

import warnings
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import special

from bayescale import data as data_mod
from bayescale import diagnostics as diag_mod
from bayescale import pooling as pooling_mod
from bayescale import stats
from bayescale.checks import check_probability, seeded
from bayescale.errors import DataError, SpecError
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
    def pooling(self):
        """Pooling choice of each law parameter (all ``"shared"`` without groups)."""
        return self.settings.get("pooling") or dict.fromkeys(self.law.parameters, "shared")

    @property
    def group_labels(self):
        """Group labels of the fit (empty without groups)."""
        return list(self.settings.get("labels") or [])

    @property
    def sampled_names(self):
        """Law parameters, group-level hyperparameters and noise: what NUTS explored."""
        return sampled_names(self.law, self.pooling, self.likelihood)

    @property
    def parameter_names(self):
        """:attr:`sampled_names`, then derived quantities (``A``, ``B``, ...)."""
        sampled = self.sampled_names
        derived = [v for v in self.posterior["posterior"].data_vars if v not in sampled]
        return [*sampled, *derived]

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
        check_probability(ci, "ci")
        return stats.summary(self.posterior, self.parameter_names, ci)

    @cached_property
    def diagnostics(self):
        """:class:`~bayescale.diagnostics.Diagnostics` of the free parameters."""
        table = stats.summary(self.posterior, self.sampled_names, 0.9)
        return diag_mod.check(self.posterior, table)

    def draws(self, names=None):
        """Posterior draws flattened over chains: arrays of shape (draws[, groups])."""
        post = self.posterior["posterior"]
        names = names or self.parameter_names
        if unknown := [k for k in names if k not in post]:
            raise SpecError(f"no draws of {unknown}; this fit has {list(post.data_vars)}")
        return {k: (v := post[k].to_numpy()).reshape(-1, *v.shape[2:]) for k in names}

    def row_parameters(self, frame, rng):
        """Law parameter draws for each row of ``frame``: arrays of shape (draws, rows).

        Rows of a group seen in the fit use its posterior; rows of a new group use the
        population distribution (one new-group draw per posterior draw and label).
        """
        names = [*self.law.parameters, *pooling_mod.reported(self.pooling)]
        draws = self.draws(names)
        group = self.settings.get("group")
        if not group:
            return {k: draws[k][:, None] for k in self.law.parameters}
        codes = data_mod.FitData(frame, self.law.inputs, "", group).codes(self.group_labels)
        out = {}
        for k in self.law.parameters:
            mode = self.pooling[k]
            rows = pooling_mod.per_row(draws[k], mode, np.maximum(codes, 0))
            for label in sorted(set(frame[group][codes < 0])):
                new = pooling_mod.new_group_draws(k, self.priors[k], mode, draws, rng)
                rows = np.where((frame[group] == label).to_numpy()[None, :], new[:, None], rows)
            out[k] = np.broadcast_to(rows, (len(draws[k]), len(frame)))
        return out

    def log_mean_draws(self, frame, rng=None):
        """``log`` of the law's mean, shape (draws, rows), at validated inputs ``frame``."""
        rng = rng or np.random.default_rng(self.settings["random_seed"])
        return self.law.log_mean(NUMPY, *self._row_inputs(frame, rng))

    def _row_inputs(self, frame, rng):
        """Parameter draws per row and ``z`` of validated inputs ``frame``."""
        z = {k: v[None, :] for k, v in self.law.z(frame, self.log_ref).items()}
        return self.row_parameters(frame, rng), z

    @cached_property
    def _fitted_log_mean(self):
        """``log`` of the law's mean at the fitted rows, per draw (no new groups, no rng)."""
        return self.log_mean_draws(self.data.frame)

    def noise_context(self, frame):
        """Dependent noise at new rows, conditioned on the fitted rows; None if independent.

        For ``ou_normal`` each new row continues its curve (its group's, or the single
        curve) from the residual of the fitted point just before it. Each row gets its
        marginal: draws at two new rows are not correlated with each other, and a row
        between two fitted points ignores the later one (wider than the exact bridge).
        """
        if not self.likelihood.dependent:
            return None
        codes = new = None
        if group := self.settings.get("group"):
            codes = self.data.codes(self.group_labels)
            new = data_mod.FitData(frame, self.law.inputs, "", group).codes(self.group_labels)
        links = self.likelihood.links(
            self.law, self.data.frame, self.log_ref, codes, new=(frame, new)
        )
        observed = self.likelihood.observe(self.data.y_values())
        return self.likelihood.context(observed, self._fitted_log_mean, links)

    def predict(self, new_data, ci=0.9, kind="mean", random_seed=None):
        """Predict at new inputs, with posterior intervals, in original units.

        Parameters
        ----------
        new_data : DataFrame, dict of arrays, or CSV path
            Columns named like the fitted data (the same ``inputs=`` mapping and
            ``C``-to-``D`` conversion apply). For a grouped fit, a group column too: rows
            of a group never seen are predicted from the population distribution, so their
            intervals include the spread between groups.
        ci : float
            Probability of the central interval.
        kind : {"mean", "observed"}
            ``"mean"``: the law's value (parameter uncertainty only).
            ``"observed"``: a new run's observed value (adds the fitted noise; for a fit
            with ``y_log_sd``, that is the scatter beyond the known measurement errors,
            which new rows do not have; for a law with noisy inputs, it includes what
            the noise of the new inputs adds; with ``ou_normal``, the next checkpoints
            of the fitted curve, see :meth:`noise_context`).
        random_seed : int, optional
            Seed for the noise draws of ``kind="observed"`` (default: the fit's seed).

        Returns
        -------
        pandas.DataFrame
            The law's inputs, then ``median``, ``lower``, ``upper``.
        """
        check_probability(ci, "ci")
        out = []
        for chunk, values in self._predictive_chunks(new_data, kind, random_seed):
            med, lo, hi = stats.quantiles(values, ci, axis=0)
            out.append(chunk.assign(median=med, lower=lo, upper=hi))
        return pd.concat(out)

    def predictive_draws(self, new_data, kind="observed", random_seed=None):
        """Posterior draws of the prediction at new inputs, for scores and custom summaries.

        Parameters are as in :meth:`predict`.

        Returns
        -------
        frame : pandas.DataFrame
            The validated inputs.
        draws : ndarray, shape (draws, rows)
            In the response's units; NaN where the law is undefined for a draw.
        """
        chunks = list(self._predictive_chunks(new_data, kind, random_seed))
        frame = pd.concat([c for c, _ in chunks])
        return frame, np.concatenate([v for _, v in chunks], axis=1)

    def _predictive_chunks(self, new_data, kind, random_seed):
        """``(frame, draws)`` per chunk of rows, so dense grids never hold every draw at once."""
        if kind not in ("mean", "observed"):
            raise SpecError(f"kind must be 'mean' or 'observed', got {kind!r}")
        frame = data_mod.prediction_inputs(new_data, self.law, self.settings)
        rng = seeded(self.settings["random_seed"] if random_seed is None else random_seed)
        lik = {k: v[:, None] for k, v in self.draws(list(self.likelihood.priors)).items()}
        for start in range(0, len(frame), _ROW_CHUNK):
            chunk = frame.iloc[start : start + _ROW_CHUNK]
            p, z = self._row_inputs(chunk, rng)
            with np.errstate(invalid="ignore"):
                log_mu = self.law.log_mean(NUMPY, p, z)
                if kind == "observed":
                    noise = self.law.input_log_sd(NUMPY, p, z)
                    context = self.noise_context(chunk)
                    values = self.likelihood.draw(log_mu, lik, rng, known_sd=noise, context=context)
                else:
                    values = np.exp(log_mu)
            _warn_undefined(values, chunk.index)
            yield chunk, values

    def log_predictive_density(self, data):
        """Log predictive density of held-out observations, per row.

        ``log mean_s p(y_i | theta_s)`` over posterior draws, on the likelihood's observed
        scale (``log y`` for losses), the quantity that LOO estimates in-sample and that
        backtests score out of sample (Gneiting and Raftery 2007's log score).

        Parameters
        ----------
        data : DataFrame or CSV path
            Inputs as for :meth:`predict` plus the fitted response column.

        Returns
        -------
        ndarray, shape (rows,)
        """
        df = data_mod.read_table(data)
        frame = data_mod.prediction_inputs(df, self.law, self.settings)
        if self.data.y not in df.columns:
            raise DataError(
                f"column {self.data.y!r} (the fitted response) is missing; a predictive "
                f"density needs the observed values; the table has {list(df.columns)}"
            )
        y = data_mod.numeric_column(df, self.data.y, "response", self.likelihood.support)
        rng = np.random.default_rng(self.settings["random_seed"])
        p, z = self._row_inputs(frame, rng)
        lik = {k: v[:, None] for k, v in self.draws(list(self.likelihood.priors)).items()}
        with np.errstate(invalid="ignore"):
            log_mu = self.law.log_mean(NUMPY, p, z)
            noise = self.law.input_log_sd(NUMPY, p, z)
            observed = self.likelihood.observe(y)[None, :]
            context = self.noise_context(frame)
            logpdf = self.likelihood.logpdf(observed, log_mu, lik, known_sd=noise, context=context)
        defined = np.isfinite(log_mu)  # draws for which the law is undefined are left out
        logpdf = np.where(defined, logpdf, -np.inf)
        return special.logsumexp(logpdf, axis=0) - np.log(defined.sum(axis=0))

    def contrast(self, param, a, b, ci=0.9):
        """Posterior of ``param[a] - param[b]`` between two groups, and P(param_a > param_b).

        Returns
        -------
        pandas.Series
            ``median, lower, upper`` of the difference and ``p_greater``.
        """
        check_probability(ci, "ci")
        post = self.posterior["posterior"]
        group = self.settings.get("group")
        if param not in post or group not in post[param].dims:
            per_group = [k for k in post.data_vars if group in post[k].dims]
            raise SpecError(
                f"{param!r} does not vary by group in this fit; parameters that do: {per_group}"
            )
        for label in (a, b):
            if label not in self.group_labels:
                raise SpecError(f"unknown group {label!r}; groups: {self.group_labels}")
        values = self.draws([param])[param]
        diff = values[:, self.group_labels.index(a)] - values[:, self.group_labels.index(b)]
        med, lo, hi = stats.quantiles(diff, ci)
        return pd.Series(
            {"median": med, "lower": lo, "upper": hi, "p_greater": float(np.mean(diff > 0))},
            name=f"{param}[{a}] - {param}[{b}]",
        )

    def prob_lower(self, new_data, a, b):
        """P(group ``a`` has a lower law value than group ``b``) at each row's inputs.

        ``new_data`` holds the law's inputs only; each row is evaluated for both groups
        with the same posterior draws, so the probability accounts for their correlation.
        """
        group = self.settings.get("group")
        if not group:
            raise SpecError("prob_lower needs a fit with group=")
        inputs = data_mod.prediction_inputs(
            data_mod.read_table(new_data).assign(**{group: a}), self.law, self.settings
        )
        rng = np.random.default_rng(self.settings["random_seed"])
        log_mu = {
            label: self.log_mean_draws(inputs.assign(**{group: label}), rng) for label in (a, b)
        }
        return inputs.drop(columns=group).assign(p_lower=np.mean(log_mu[a] < log_mu[b], axis=0))

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


def sampled_names(law, pooling, likelihood):
    """Names of the sampled quantities of a fit, in summary order."""
    return [*law.parameters, *pooling_mod.reported(pooling), *likelihood.priors]


def _warn_undefined(values, index):
    """Warn when the law is undefined for some draws at some rows (an input out of range).

    For ``loss_to_loss``, a draw whose ``E_x`` lies above the new ``Lx`` says that
    ``Lx`` is unattainable; observing it rules such draws out, so intervals use the rest
    (conditioning on the input). Rows where every draw is undefined stay NaN.
    """
    bad = np.isnan(values).mean(axis=0)
    if bad.any():
        rows = list(index[bad > 0])
        shown = ", ".join(map(str, rows[:8])) + (" ..." if len(rows) > 8 else "")
        warnings.warn(
            f"the law is undefined for up to {bad.max():.0%} of posterior draws at "
            f"{len(rows)} rows ({shown}): an input outside what those draws allow; "
            "intervals use the remaining draws",
            UndefinedDrawsWarning,
            stacklevel=3,
        )


class UndefinedDrawsWarning(UserWarning):
    """Some posterior draws give no prediction at the requested inputs."""
