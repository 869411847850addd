"""The math namespace scaling laws are written against, for numpy and for pytensor.

A law's mean function is written once, against ``m.exp``, ``m.log``, ``m.logsumexp`` ...,
and evaluated with :data:`NUMPY` (dense prediction grids over posterior draws, baselines)
or :data:`PYTENSOR` (the PyMC graph NUTS differentiates). Keeping the namespace tiny is
what makes the two implementations trivially identical.

``logsumexp`` takes a *list of terms* that broadcast against each other (a scalar ``log E``
next to per-row ``log A - alpha log N``), because that is how every additive law reads:
``log(E + A N^-alpha + B D^-beta) = logsumexp([log E, log A - alpha log N, ...])``.
"""

import os
from functools import cache
from types import SimpleNamespace

import numpy as np
from scipy import special


def _np_logsumexp(terms):
    """``log(sum(exp(terms)))`` pairwise, as :func:`_pt_logsumexp` (twice as fast as scipy's)."""
    total, *rest = [np.asarray(t, dtype=float) for t in terms]
    for term in rest:
        total = np.logaddexp(total, term)
    return total


def _pt_logsumexp(terms):
    """``log(sum(exp(terms)))`` as a chain of softplus steps, whose gradient needs no maximum.

    ``t + softplus(u - t)`` is ``log(e^t + e^u)``, exact and stable for any gap below ~700
    nats. ``pt.logsumexp`` instead shifts by the terms' maximum, and JAX differentiates a
    maximum by counting the elements equal to it (``lax._reduce_chooser_jvp_rule`` divides
    by that count). In the compiled NUTS program the operand and the maximum were computed
    in different fusions and did not always agree to the last bit: the count was 0 and the
    gradient NaN at isolated points (not reproduced when the same gradient ran alone,
    outside numpyro's tree-building loop). Each such point is a divergence that halves
    the step size: on the (Mis)Fitting backtest's 79 runs, with the law's terms sampled
    jointly (:func:`bayescale.pooling.create_terms`), every chain's step size fell to
    ~1e-14 during warmup (1,867 divergences, r-hat 6.5); with this form it converged at
    44 leapfrog steps per draw.
    """
    import pytensor.tensor as pt

    total, *rest = [pt.as_tensor_variable(t) for t in terms]
    for term in rest:
        total = total + pt.softplus(term - total)
    return total


_ELEMENTWISE = ("exp", "log", "log1p", "expm1", "clip")
"""Functions numpy, pytensor and jax.numpy all have under these names."""


def _namespace(module, **own):
    """``module``'s :data:`_ELEMENTWISE` functions and ``own`` (the rest of the namespace)."""
    return SimpleNamespace(**{k: getattr(module, k) for k in _ELEMENTWISE}, **own)


NUMPY = _namespace(
    np,
    name="numpy",
    logsumexp=_np_logsumexp,
    sigmoid=special.expit,
    softplus=lambda x: np.logaddexp(0.0, x),
)
"""Numpy implementation: evaluates laws on arrays of posterior draws."""


@cache
def _pytensor_namespace():
    import pytensor.tensor as pt

    return _namespace(pt, logsumexp=_pt_logsumexp, sigmoid=pt.sigmoid, softplus=pt.softplus)


class _Pytensor:
    """The pytensor namespace, imported on first use.

    Importing pytensor adds 0.23 s to ``import bayescale`` (``farm-bench``), and a fit
    whose compiled program is in the cache never builds a model, so it is left out.
    """

    name = "pytensor"

    def __getattr__(self, attr):
        return getattr(_pytensor_namespace(), attr)


PYTENSOR = _Pytensor()
"""Pytensor implementation: builds the PyMC graph that NUTS samples."""


def import_jax():
    """Import JAX configured as bayescale (and PyMC's JAX samplers) need it.

    Before JAX's CPU backend starts, ask XLA for 100 host devices, as ``pymc.sampling.jax``
    does on import, so that chains run on devices of their own (an ``XLA_FLAGS`` device
    count set by the user is kept). Done here rather than by importing
    ``pymc.sampling.jax``, which costs ~1.5 s that a fit from a cached program never needs.
    Float64 throughout, as PyTensor's JAX backend computes.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=100".strip()
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def jax_namespace():
    """JAX implementation (float64), for exact gradients in the baseline optimiser."""
    jax = import_jax()
    import jax.numpy as jnp

    def logsumexp(terms):
        return jax.nn.logsumexp(jnp.stack(jnp.broadcast_arrays(*terms)), axis=0)

    return _namespace(
        jnp, name="jax", logsumexp=logsumexp, sigmoid=jax.nn.sigmoid, softplus=jax.nn.softplus
    )
