"""Assemble the PyMC model: law + priors + likelihood, with the data as ``pm.Data``.

Data (encoded inputs, reference scales, observed response) are ``pm.Data`` containers so
that a second fit of the same specification swaps the data in with ``pm.set_data``
instead of rebuilding and recompiling the model. :class:`ModelRecipe` hands the sampler a
fit's data values at once and its model only on demand: a process that finds the
compiled program in its cache never builds the model (nor imports PyMC).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bayescale import pooling as pooling_mod
from bayescale.likelihoods import in_quadrature
from bayescale.ops import PYTENSOR
from bayescale.predictive import fitted_links

OBSERVED = "y"
"""Name of the observed variable (and of the log-likelihood in the posterior)."""


@dataclass(frozen=True)
class ModelRecipe:
    """What the sampler needs of one fit: the spec, its data values, and its PyMC model.

    Attributes
    ----------
    spec : FitSpec
    fitdata : FitData
    log_ref : mapping of str to float
    """

    spec: object
    fitdata: object
    log_ref: object
    centring: object = None

    @cached_property
    def values(self):
        """The ``pm.Data`` values of this fit, by container name."""
        spec = self.spec
        return data_values(
            spec.law, spec.likelihood, self.fitdata, self.log_ref, spec.labels, self.centring
        )

    @property
    def coords(self):
        """Coordinates of the model's dimensions: the group labels, when grouped."""
        return {self.fitdata.group: list(self.spec.labels)} if self.fitdata.group else {}

    def model(self):
        """Build the PyMC model (called only when no compiled program is cached)."""
        spec = self.spec
        return build_model(
            spec.law,
            spec.priors,
            spec.likelihood,
            self.fitdata,
            self.log_ref,
            spec.pooling,
            spec.labels,
            self.centring,
        )


def data_values(law, likelihood, fitdata, log_ref, labels=(), centring=None):
    """The ``pm.Data`` values for ``fitdata``, by container name.

    ``centring`` holds each ``"pooled_partial"`` parameter's group estimates and their sds
    (:func:`bayescale.engine.geometry.resolve_centring`).
    """
    values = {f"data_x_{k}": v for k, v in law.encode(fitdata.frame).items()}
    values.update({f"data_log_ref_{k}": np.asarray(v) for k, v in log_ref.items()})
    values["data_y"] = likelihood.observe(fitdata.y_values())
    if fitdata.y_log_sd:
        values["data_y_log_sd"] = fitdata.known_sd()
    if fitdata.group:
        values["data_group"] = fitdata.codes(labels)
    links = fitted_links(law, likelihood, fitdata, log_ref, labels)
    values.update({f"data_link_{k}": v for k, v in (links or {}).items()})
    for k, (estimate, sd) in (centring or {}).items():
        values[f"data_group_estimate_{k}"] = np.asarray(estimate)
        values[f"data_group_sd_{k}"] = np.asarray(sd)
    return values


def build_model(law, priors, likelihood, fitdata, log_ref, pooling, labels=(), centring=None):
    """Build the PyMC model for one fit.

    Parameters
    ----------
    law : ScalingLaw
    priors : dict of str to Prior
        Priors of the law's and the likelihood's free parameters, by name.
    likelihood : Likelihood
    fitdata : FitData
    log_ref : dict of str to float
        Log reference scale of each input.
    pooling : dict of str to str
        :data:`bayescale.pooling.POOLINGS` choice per law parameter.
    labels : sequence of str
        Group labels (the coordinate of the group dimension), when grouped.

    Returns
    -------
    pymc.Model
    """
    values = data_values(law, likelihood, fitdata, log_ref, labels, centring)
    dim = fitdata.group
    import pymc as pm  # lazily: a fit from a cached program never builds a model

    with pm.Model(coords={dim: list(labels)} if dim else None) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        z = law.centre(
            PYTENSOR,
            {k: data[f"data_x_{k}"] for k in law.inputs},
            {k: data[f"data_log_ref_{k}"] for k in law.inputs},
        )
        joint = pooling_mod.joint_terms(law, priors, pooling)
        per_group = bool(joint) and pooling[joint[0]] == "separate"
        p = pooling_mod.create_terms(joint, priors) if joint and not per_group else {}
        p |= {
            name: pooling_mod.create(
                name, priors[name], pooling[name], dim, priors, _own(data, name)
            )
            for name in law.parameters
            if name not in joint
        }
        if per_group:  # after the exponents, which move each group's terms to the reference
            shifts = _group_centre_shifts(law, p, z, data["data_group"], len(labels))
            pairing = _pairing(law, z, data["data_group"], len(labels))
            p |= pooling_mod.create_terms(joint, priors, dim, shifts, pairing)
        if dim:
            p = {k: v if pooling[k] == "shared" else v[data["data_group"]] for k, v in p.items()}
        mu = law.log_mean(PYTENSOR, p, z)
        lik = {name: priors[name].create(name) for name in likelihood.priors}
        observed = data["data_y"]
        known_sd = in_quadrature(data.get("data_y_log_sd"), law.input_log_sd(PYTENSOR, p, z))
        links = {k[len("data_link_") :]: v for k, v in data.items() if k.startswith("data_link_")}
        likelihood.create(
            OBSERVED,
            mu,
            lik,
            observed=observed,
            shape=observed.shape,
            known_sd=known_sd,
            links=links or None,
        )
    return model


def _group_centre_shifts(law, p, z, codes, n_groups):
    """How far each group's terms move from the group's centre to the fit's reference.

    Per term of :attr:`~bayescale.laws.ScalingLaw.term_exponents`, its log at the
    reference less its log at each group's centre (the mean ``z`` of the group's rows),
    computed from the data in the program, which serves any data of its shape.
    """
    import pytensor.tensor as pt

    member = pt.eq(codes[:, None], pt.arange(n_groups)[None, :])
    counts = pt.sum(member, axis=0)
    return {
        term: p[exponent] * pt.sum(member * z[name][:, None], axis=0) / counts
        for term, (exponent, name) in law.term_exponents.items()
    }


def _pairing(law, z, codes, n_groups):
    """Per group, the term to pair with the floor: 0 none, else its index in ``law.terms``.

    ``None`` unless the law's terms are a floor and two exponent terms (Chinchilla's
    ``E, a_ref, b_ref``), the form :func:`~bayescale.pooling.create_terms` pairs. A term is
    paired where its input spans less than :data:`~bayescale.pooling.PAIR_SPAN` over the
    group's rows (the less of the two, if both do). Computed from the data in the
    program, like :func:`_group_centre_shifts`. (Fits without groups keep the softmax: a
    sweep of one model size is rare there, and the change would move every such fit's
    draws.)
    """
    import pytensor.tensor as pt

    if len(law.terms) != 3 or tuple(law.term_exponents) != law.terms[1:]:
        return None
    member = pt.eq(codes[:, None], pt.arange(n_groups)[None, :])

    def span(x):
        top = pt.max(pt.switch(member, x[:, None], -np.inf), axis=0)
        return top - pt.min(pt.switch(member, x[:, None], np.inf), axis=0)

    spans = pt.stack([span(z[name]) for _, name in law.term_exponents.values()], axis=-1)
    mate = pt.argmin(spans, axis=-1) + 1
    return pt.switch(pt.any(spans < np.log(pooling_mod.PAIR_SPAN), axis=-1), mate, 0)


def _own(data, name):
    """``(estimate, sd)`` data of a ``"pooled_partial"`` parameter's groups, else None."""
    if f"data_group_sd_{name}" not in data:
        return None
    return data[f"data_group_estimate_{name}"], data[f"data_group_sd_{name}"]
