"""``FitSpec``: everything that defines a fit except the data, as one typed, frozen value.

It is the single source for three readers that used to assemble it each their own way:
the compile cache (:meth:`FitSpec.graph_key`: equal keys mean equal PyMC graphs), saved
files (:meth:`FitSpec.to_dict` / :meth:`FitSpec.from_dict`, JSON in the netCDF
attributes), and prediction (the column mapping, the ``C``-to-``D`` rule and the group
column through :meth:`FitSpec.prediction_frame`). :func:`resolve_priors` makes its
``priors``: every default, with the user's overrides checked against each parameter's
range.
"""

import json
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from bayescale.data import prepare
from bayescale.errors import SpecError
from bayescale.laws import ScalingLaw, get_law
from bayescale.likelihoods import Likelihood, get_likelihood
from bayescale.priors import Prior

MAX_MASS_OUTSIDE = 1e-3
"""Most prior mass allowed outside the range of a parameter's default prior. Beyond the
range the law or likelihood is undefined (``log E`` of a negative floor), and a prior that
reaches there sends NUTS there: a failed start or divergences. ``Normal(1.7, 0.2)`` on a
positive floor (mass 1e-17 below 0) is fine."""

_SUPPORT_HINTS = {"positive": "LogNormal, HalfNormal, Gamma or Exponential", "unit": "Beta"}
"""Distributions to suggest for a parameter whose user prior leaves its range."""


def resolve_priors(law, likelihood, priors, group_scales):
    """Default priors of law, group scales and likelihood, overridden by ``priors``.

    ``group_scales`` are the default priors of the pooled parameters' scales
    (:func:`bayescale.pooling.hyper_priors`; empty without groups).
    """
    merged = {**law.priors, **group_scales, **likelihood.priors}
    if priors is not None and not isinstance(priors, dict):
        raise SpecError(f"priors must be a dict of parameter name to Prior, not {priors!r}")
    for name, prior in (priors or {}).items():
        if name not in merged:
            raise SpecError(
                f"priors= names {name!r}, which is not a parameter of law {law.name!r} with "
                f"likelihood {likelihood.name!r}; parameters: {', '.join(merged)}"
            )
        if not isinstance(prior, Prior):
            raise SpecError(f"priors[{name!r}] must be a bayescale.Prior, got {prior!r}")
        lo, hi = merged[name].bounds
        outside = prior.scipy().cdf(lo) + prior.scipy().sf(hi)
        if outside > MAX_MASS_OUTSIDE:
            hint = _SUPPORT_HINTS.get(merged[name].support, f"one within ({lo:g}, {hi:g})")
            raise SpecError(
                f"priors[{name!r}] = {prior!r} puts {100 * outside:.3g}% of its mass outside "
                f"({lo:g}, {hi:g}), the range {name} is written for (its default prior is "
                f"{merged[name]!r}): use {hint}"
            )
        merged[name] = prior
    return merged


_MAPPINGS = ("priors", "pooling", "inputs", "versions")
"""Fields held as read-only mappings."""


@dataclass(frozen=True)
class FitSpec:
    """What a fit was asked to do: law, likelihood, priors, pooling, columns, sampler, seed.

    Attributes
    ----------
    law : ScalingLaw
        The family with its options.
    likelihood : Likelihood
    priors : mapping of str to Prior
        Every prior used: the law's, the group scales' and the likelihood's.
    pooling : mapping of str to str
        :data:`bayescale.pooling.POOLINGS` choice per law parameter.
    inputs : mapping of str to str
        Law input -> column, as the user mapped them (empty when columns carry the law's
        names).
    y : str
        Response column.
    group : str or None
        Group column; ``labels`` are its sorted values in the fitted data.
    labels : tuple of str
    y_log_sd : str or None
        Column of known standard deviations of ``log y``.
    flops_per_token : float
        ``k`` in ``D = C / (k N)``.
    sampler : str
    chains, draws, tune : int
    target_accept : float
    random_seed : int
    versions : mapping of str to str
        Library versions the fit was made with (empty for a spec not yet fitted).
    """

    law: ScalingLaw
    likelihood: Likelihood
    priors: MappingProxyType
    pooling: MappingProxyType
    inputs: MappingProxyType = field(default_factory=dict)
    y: str = "loss"
    group: str | None = None
    labels: tuple = ()
    y_log_sd: str | None = None
    flops_per_token: float = 6.0
    sampler: str = "numpyro"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.8
    random_seed: int = 0
    versions: MappingProxyType = field(default_factory=dict)

    def __post_init__(self):
        pooling = dict(self.pooling)
        if set(pooling) == set(self.law.parameters):  # the law's order, also once read back
            object.__setattr__(self, "pooling", {k: pooling[k] for k in self.law.parameters})
        for name in _MAPPINGS:  # read-only views, so a spec cannot change under a fit
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "labels", tuple(self.labels))

    def graph_key(self):
        """String identifying the sampled program: equal keys can share compiled code.

        The law enters by name, options and :meth:`~bayescale.laws.ScalingLaw.fingerprint`,
        so an edited user-defined law never reuses the program compiled for its old
        version; column names, seed and draw counts do not enter (the sampler keys those
        itself), but for the group column's: it names the posterior's group dimension,
        which a compiled program records (a table with its groups in another column was
        given the first one's dimension, under which ``contrast`` found no groups).
        """
        graph = {
            "law": {**self.law.to_dict(), "fingerprint": self.law.fingerprint()},
            "likelihood": self.likelihood.to_dict(),
            "known_sd": self.y_log_sd is not None,
            "priors": {k: p.to_dict() for k, p in self.priors.items()},
            "pooling": dict(self.pooling),
            "labels": list(self.labels),
            "group": self.group,
        }
        return json.dumps(graph, sort_keys=True) + self.sampler

    def column(self, key):
        """The user's column name for law input (or ``"C"``) ``key``: mapped, or the key itself."""
        return self.inputs.get(key, key)

    def prediction_frame(self, new_data):
        """Validated law inputs of ``new_data`` (and its group column), as the fit read its own.

        A dict of arrays, a DataFrame or a CSV path; ``D`` is derived from ``C`` with this
        spec's ``flops_per_token`` when the table has compute instead of tokens.
        """
        return prepare(
            new_data,
            self.law,
            None,
            inputs=dict(self.inputs),
            flops_per_token=self.flops_per_token,
            group=self.group,
        ).frame

    def to_dict(self):
        """JSON-ready dict that :meth:`from_dict` turns back into an equal spec."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["law"] = self.law.to_dict()
        out["likelihood"] = self.likelihood.to_dict()
        out["priors"] = {k: p.to_dict() for k, p in self.priors.items()}
        out["labels"] = list(self.labels)
        for name in ("pooling", "inputs", "versions"):
            out[name] = dict(out[name])
        return out

    @classmethod
    def from_dict(cls, spec):
        """The spec that :meth:`to_dict` wrote."""
        spec = dict(spec)
        spec["law"] = get_law(spec["law"])
        spec["likelihood"] = get_likelihood(spec["likelihood"])
        spec["priors"] = {k: Prior.from_dict(v) for k, v in spec["priors"].items()}
        return cls(**spec)
