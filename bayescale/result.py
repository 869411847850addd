"""``ScalingFit``: the immutable result of a fit.

It carries everything needed to predict and to report: the :class:`~bayescale.spec.FitSpec`
(law, priors, likelihood, pooling, columns, sampler settings, seed, versions), the
posterior, the fitted data and the reference scales, so that :func:`load` of a saved fit
predicts exactly as the original. Nothing mutates it: ``predict`` returns new tables.
Predictions are evaluated by :mod:`bayescale.predictive`.
"""

import dataclasses
import warnings
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np
import pandas as pd

from bayescale import arviz_adapter, io
from bayescale import diagnostics as diag_mod
from bayescale import pooling as pooling_mod
from bayescale.arguments import check_probability, seeded
from bayescale.data import FitData, numeric_column, read_table, row_labels
from bayescale.errors import DataError, SpecError, UndefinedDrawsWarning
from bayescale.extrapolation import UNCONVERGED_BACKTEST, Deferred, persists
from bayescale.extrapolation import resolve as resolve_extrapolation
from bayescale.predictive import Evaluator, check_kind, quantiles
from bayescale.spec import FitSpec

ANSWER_COLUMNS = ("median", "lower", "upper", "reach", "extrapolation_share")
"""The columns :meth:`ScalingFit.predict` adds beside the rows' inputs and group."""


@dataclass(frozen=True, eq=False)
class ScalingFit:
    """Posterior fit of a scaling law.

    Use :func:`bayescale.fit` to make one and :func:`bayescale.load` to read one back
    (:func:`bayescale.testing.fake_fit` builds one from given draws, for tests).

    Attributes
    ----------
    spec : FitSpec
        What was fitted and how: law, likelihood, priors, pooling, columns, sampler
        settings, seed and library versions.
    posterior : xarray.DataTree
        Groups ``posterior`` (free and derived parameters), ``sample_stats``,
        ``log_likelihood`` (pointwise, for LOO) and ``observed_data``.
    data : FitData
        The validated table that was fitted.
    log_ref : mapping of str to float
        Log reference scale of each input.
    """

    spec: FitSpec
    posterior: object
    data: FitData
    log_ref: MappingProxyType

    def __post_init__(self):
        object.__setattr__(self, "log_ref", MappingProxyType(dict(self.log_ref)))

    @property
    def law(self):
        """The fitted :class:`~bayescale.laws.ScalingLaw`."""
        return self.spec.law

    @property
    def likelihood(self):
        """The fitted :class:`~bayescale.likelihoods.Likelihood`."""
        return self.spec.likelihood

    @property
    def priors(self):
        """Every prior used, the law's, the group scales' and the likelihood's."""
        return self.spec.priors

    @property
    def versions(self):
        """Package versions the fit was made with."""
        return self.spec.versions

    @property
    def pooling(self):
        """Pooling choice of each law parameter (all ``"shared"`` without groups)."""
        return self.spec.pooling

    @property
    def group_labels(self):
        """Group labels of the fit (empty without groups)."""
        return list(self.spec.labels)

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
        return arviz_adapter.summary(self.posterior, self.parameter_names, ci)

    @cached_property
    def diagnostics(self):
        """:class:`~bayescale.diagnostics.Diagnostics` of the free parameters."""
        table = arviz_adapter.summary(self.posterior, self.sampled_names, 0.9)
        return diag_mod.check(self.posterior, table)

    def draws(self, names=None):
        """Posterior draws flattened over chains: arrays of shape (draws[, groups])."""
        post = self.posterior["posterior"]
        names = names or self.parameter_names
        if unknown := [k for k in names if k not in post]:
            raise SpecError(f"no draws of {unknown}; this fit has {list(post.data_vars)}")
        return {k: (v := post[k].to_numpy()).reshape(-1, *v.shape[2:]) for k in names}

    @property
    def converged(self):
        """Whether the fit passed every convergence check (:attr:`diagnostics`)."""
        return self.diagnostics.ok

    @property
    def label(self):
        """How messages name this fit: ``"<law> fit"``."""
        return f"{self.law.name} fit"

    @cached_property
    def evaluator(self):
        """:class:`~bayescale.predictive.Evaluator` of the posterior draws (pooled chains)."""
        names = [*self.law.parameters, *pooling_mod.reported(self.pooling)]
        return Evaluator(
            law=self.law,
            log_ref=self.log_ref,
            draws=self.draws([*names, *self.likelihood.priors]),
            likelihood=self.likelihood,
            pooling=self.pooling,
            priors=self.priors,
            group=self.spec.group,
            labels=tuple(self.spec.labels),
            fitted=self.data,
        )

    def evaluator_with(self, extrapolation):
        """:attr:`evaluator` with the extrapolation error ``extrapolation=`` names.

        ``"calibrated"`` for a law over ``N`` and ``D`` is :attr:`own_extrapolation`,
        deferred (:class:`~bayescale.extrapolation.Deferred`): only a draw beyond the data
        pays for its refit.
        """
        own = Deferred(lambda: self.own_extrapolation) if persists(self.law) else None
        return dataclasses.replace(
            self.evaluator, extrapolation=resolve_extrapolation(extrapolation, own)
        )

    @cached_property
    def own_extrapolation(self):
        """The extrapolation error of this fit's own sweep: ``"calibrated"`` over ``N`` and ``D``.

        A backtest nested inside the fitted runs (refitted on those up to a third of the
        largest scale) drifts the way the extrapolation beyond them will; its slope is
        carried over by the shipped drift persistence
        (:func:`bayescale.evaluation.calibration.own_error`, which says when it falls
        back to the population). Computed once, on first use, and kept by :meth:`save`.
        """
        # imported on use: a fit's own backtest refits it, and the calibration module
        # itself imports this one
        from bayescale.evaluation.calibration import own_error

        return own_error(self)

    def own_backtest_failure(self):
        """Why this fit's own extrapolation error is suspect, or ``""``.

        Not ``""`` where :attr:`own_extrapolation` has been computed (or loaded) and the
        backtest's refit behind it failed its convergence checks: the error is used all the
        same (:func:`~bayescale.evaluation.calibration.own_error`), and reports and the CLI
        say so beside the fit's own diagnostics. Never computes it.
        """
        own = self.__dict__.get("own_extrapolation")  # a cached property, if computed
        if own is None or UNCONVERGED_BACKTEST not in own.source:
            return ""
        return (
            "its own backtest (a refit on its smaller runs, which centres the extrapolation "
            "error beyond them) failed its convergence checks; that error is used all the "
            "same; extrapolation='population' leaves it out"
        )

    def row_parameters(self, frame, rng):
        """Law parameter draws for each row of ``frame``: arrays of shape (draws, rows).

        Rows of a group seen in the fit use its posterior; rows of a new group use the
        population distribution (one new-group draw per posterior draw and label).
        """
        return self.evaluator.parameters(frame, rng)

    def log_mean_draws(self, frame, rng=None):
        """``log`` of the law's mean, shape (draws, rows), at validated inputs ``frame``."""
        rng = rng or np.random.default_rng(self.spec.random_seed)
        return self.evaluator.log_mean(frame, rng)

    def predict(self, new_data, ci=0.9, kind="mean", random_seed=None, extrapolation="calibrated"):
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
            of the fitted curve, see
            :meth:`bayescale.predictive.Evaluator.noise_context`).
        random_seed : int, optional
            Seed for the noise and extrapolation draws (default: the fit's seed).
        extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
            Error of the law's shape beyond the fitted range, added to rows whose
            ``reach`` exceeds 1 (:mod:`bayescale.extrapolation`). ``"calibrated"``
            (default): learnt from the field's real sweeps, and for a law over ``N`` and
            ``D`` centred by this sweep's own backtest (:attr:`own_extrapolation`: one
            more fit, on the first prediction beyond the data); ``"population"``: the
            real sweeps' alone; ``"none"``: the posterior given the law alone; an
            :class:`~bayescale.extrapolation.ExtrapolationError` (from
            :func:`bayescale.recalibrate` or :func:`bayescale.sweep_error`) as given.

        Returns
        -------
        pandas.DataFrame
            The law's inputs, then ``median``, ``lower``, ``upper``, ``reach`` (the row's
            scale over the largest fitted scale, at least 1; NaN for a law without scale
            inputs) and ``extrapolation_share``: the part of the interval's width (on the
            log scale) that the extrapolation error adds, 0 inside the fitted range.
            Where a row lies beyond the data, ``attrs["extrapolation"]`` names the
            extrapolation error used; where a row's group is not one of the fit's,
            ``attrs["new_groups"]`` lists those labels (predicted from the population:
            a misspelled label lands there too).
        """
        check_probability(ci, "ci")
        evaluator = self.evaluator_with(extrapolation)
        chunks = self._predictive_chunks(new_data, kind, random_seed, evaluator)
        # the law alone, from the same seed, says how much of each width is extrapolation
        alone = self._predictive_chunks(new_data, kind, random_seed, self.evaluator)
        out = []
        for chunk, values in chunks:
            med, lo, hi = quantiles(values, ci, axis=0)
            reach = evaluator.reach(chunk)
            share = np.zeros(len(chunk))
            if evaluator.extrapolates:
                _, lo0, hi0 = quantiles(next(alone)[1], ci, axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    width, width0 = np.log(hi / lo), np.log(hi0 / lo0)
                    share = np.where(
                        (reach > 1) & (width > 0), np.clip(1 - width0 / width, 0, 1), 0.0
                    )
            answer = (med, lo, hi, reach, share)
            out.append(chunk.assign(**dict(zip(ANSWER_COLUMNS, answer, strict=True))))
        table = pd.concat(out)
        group = self.spec.group
        if group and (new := sorted(set(table[group].astype(str)) - set(self.group_labels))):
            table.attrs["new_groups"] = new
        if note := self.extrapolation_note(table["reach"], extrapolation):
            table.attrs["extrapolation"] = note
        return diag_mod.flag(table, {self.label: self}, "prediction")

    def extrapolation_note(self, reach, extrapolation="calibrated"):
        """What :meth:`predict` puts in ``attrs["extrapolation"]``: the error rows of ``reach`` carry.

        None where no row lies beyond the data or no error is added; else the error's
        description (its source, and the fit's edge covariates).
        """
        evaluator = self.evaluator_with(extrapolation)
        if not (evaluator.extrapolates and (np.asarray(reach) > 1).any()):
            return None
        return evaluator.extrapolation.describe(evaluator.edge)

    def predictive_draws(
        self, new_data, kind="observed", random_seed=None, extrapolation="calibrated"
    ):
        """Posterior draws of the prediction at new inputs, for scores and custom summaries.

        Parameters are as in :meth:`predict`.

        Returns
        -------
        frame : pandas.DataFrame
            The validated inputs.
        draws : ndarray, shape (draws, rows)
            In the response's units; NaN where the law is undefined for a draw.
        """
        evaluator = self.evaluator_with(extrapolation)
        chunks = list(self._predictive_chunks(new_data, kind, random_seed, evaluator))
        frame = pd.concat([c for c, _ in chunks])
        return frame, np.concatenate([v for _, v in chunks], axis=1)

    def _predictive_chunks(self, new_data, kind, random_seed, evaluator):
        """``(frame, draws)`` per chunk of rows, so dense grids never hold every draw at once."""
        check_kind(kind)
        frame = self.spec.prediction_frame(new_data)
        rng = seeded(self.spec.random_seed if random_seed is None else random_seed)
        for chunk, values in evaluator.predictive_chunks(frame, kind, rng):
            warn_undefined(values, chunk.index)
            yield chunk, values

    def log_predictive_density(self, data, extrapolation="calibrated"):
        """Log predictive density of held-out observations, per row.

        ``log mean_s p(y_i | theta_s)`` over posterior draws, on the likelihood's observed
        scale (``log y`` for losses), the quantity that LOO estimates in-sample and that
        backtests score out of sample (Gneiting and Raftery 2007's log score).

        Parameters
        ----------
        data : DataFrame or CSV path
            Inputs as for :meth:`predict` plus the fitted response column.
        extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
            As in :meth:`predict`.

        Returns
        -------
        ndarray, shape (rows,)
            NaN, with an :class:`~bayescale.errors.UndefinedDrawsWarning`, at rows where
            the law is undefined for every draw (e.g. ``lr_annealing`` far beyond the
            fitted ``S2``).
        """
        df = read_table(data)
        frame = self.spec.prediction_frame(df)
        if self.data.y not in df.columns:
            raise DataError(
                f"column {self.data.y!r} (the fitted response) is missing; a predictive "
                f"density needs the observed values; the table has {list(df.columns)}"
            )
        y = numeric_column(df, self.data.y, "response", self.likelihood.support)
        rng = np.random.default_rng(self.spec.random_seed)
        density = self.evaluator_with(extrapolation).log_density(frame, y, rng)
        if (undefined := np.isnan(density)).any():
            warnings.warn(
                f"the law is undefined for every posterior draw at "
                f"{row_labels(frame.index, undefined)}: an input outside what the draws allow; "
                "their log density is NaN",
                UndefinedDrawsWarning,
                stacklevel=2,
            )
        return density

    def contrast(self, param, a, b, ci=0.9):
        """Posterior of ``param[a] - param[b]`` between two groups, and P(param_a > param_b).

        Returns
        -------
        pandas.Series
            ``median, lower, upper`` of the difference and ``p_greater``; ``attrs`` say
            whether the fit converged, as every answer's do (:func:`bayescale.diagnostics.flag`).
        """
        check_probability(ci, "ci")
        post = self.posterior["posterior"]
        group = self.spec.group
        if not isinstance(param, str) or param not in post or group not in post[param].dims:
            per_group = [k for k in post.data_vars if group in post[k].dims]
            raise SpecError(
                f"{param!r} does not vary by group in this fit; parameters that do: {per_group}"
            )
        a, b = self._check_groups(a, b)
        values = self.draws([param])[param]
        diff = values[:, self.group_labels.index(a)] - values[:, self.group_labels.index(b)]
        med, lo, hi = quantiles(diff, ci)
        out = pd.Series(
            {"median": med, "lower": lo, "upper": hi, "p_greater": float(np.mean(diff > 0))},
            name=f"{param}[{a}] - {param}[{b}]",
        )
        return diag_mod.flag(out, {self.label: self}, "contrast")

    def _check_groups(self, *labels):
        """``labels`` as this fit's group labels; a SpecError for one it does not have.

        Comparisons are between fitted groups: two groups never seen would both be drawn
        from the population, and their comparison would say nothing (a typo, most likely).
        """
        for label in labels:
            if str(label) not in self.group_labels:
                raise SpecError(f"unknown group {label!r}; groups: {self.group_labels}")
        return [str(label) for label in labels]

    def prob_lower(self, new_data, a, b):
        """P(group ``a`` has a lower law value than group ``b``) at each row's inputs.

        ``new_data`` holds the law's inputs only; each row is evaluated for both groups
        with the same posterior draws, so the probability accounts for their correlation.
        """
        group = self.spec.group
        if not group:
            raise SpecError("prob_lower needs a fit with group=")
        a, b = self._check_groups(a, b)
        inputs = self.spec.prediction_frame(read_table(new_data).assign(**{group: a}))
        rng = np.random.default_rng(self.spec.random_seed)
        log_mu = {
            label: self.log_mean_draws(inputs.assign(**{group: label}), rng) for label in (a, b)
        }
        table = inputs.drop(columns=group).assign(p_lower=np.mean(log_mu[a] < log_mu[b], axis=0))
        return diag_mod.flag(table, {self.label: self}, "P(lower)")

    def save(self, path):
        """Write the fit to a netCDF file that :func:`bayescale.load` reads back."""
        own = self.__dict__.get("own_extrapolation")  # kept only if it was computed
        io.write(path, self.spec, self.posterior, self.data, self.log_ref, own)

    def report(self, path, **options):
        """Write a self-contained posterior report: ``.html`` (one file) or ``.md`` with PNGs.

        Diagnostics (a loud banner when a check failed), data, law and formula, priors,
        sampler settings, posterior table, figures, predictions at ``targets=``, a
        comparison with ``compare=`` and a reproducibility checklist; ``options`` and the
        contents are those of :func:`bayescale.report.write_report`.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        # imported on use: matplotlib and arviz-plots would add seconds to every import of
        # bayescale, and the report module itself imports this one
        from bayescale.report import write_report

        return write_report(self, path, **options)

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


def warn_undefined(values, index):
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


def load(path):
    """Read a fit written by :meth:`ScalingFit.save` (any format this version reads).

    Raises
    ------
    FitFileError
        If the file is missing, unreadable, not a bayescale fit, or fails its checksum.
    """
    saved = io.read(path)
    own = saved.pop("own_extrapolation")
    fit = ScalingFit(**saved)
    if own is not None:  # what the saved fit computed: its refit is not repeated
        fit.__dict__["own_extrapolation"] = own  # fills the cached property
    return fit


def check_fit(value, name="fit"):
    """``value`` if it is a :class:`ScalingFit`, else a :class:`SpecError` naming ``name``.

    A saved fit's path is the likely slip (the command line takes paths), so the message
    says how to read one.
    """
    if not isinstance(value, ScalingFit):
        hint = "; read a saved fit with bayescale.load(path)" if isinstance(value, str) else ""
        raise SpecError(f"{name} must be a bayescale.ScalingFit, not {type(value).__name__}{hint}")
    return value
