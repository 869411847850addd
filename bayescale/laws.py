"""The scaling-law base class and the registry that finds families by name.

A family is one small subclass in ``bayescale.models``: its ``inputs``, default ``priors``
(each with the reason for it in the docstring), and one log-space mean function written
against the math namespace in :mod:`bayescale.ops`. Defining the subclass registers it.

Reference scales. Powers of inputs are strongly correlated with their coefficients
(``log A`` and ``alpha`` have posterior correlation 0.999 on the Chinchilla data) because
the data sit far from ``N = 1``. Every law therefore sees *centred* log inputs
``z = log x - log x_ref``, with ``x_ref`` the geometric centre of the fitted data rounded to
one significant figure, and puts its priors on quantities at that reference ("the N term's
size at N_ref"). The familiar coefficients (``A``, ``B``, ...) are reported as derived
quantities. This cut NUTS's gradient evaluations 6.5x on the Chinchilla model.

Linear inputs. A few laws use an input itself rather than its log (an annealing area that
is zero for a constant learning rate, a loss fed into a sigmoid). Those are listed in
``linear_inputs``; they are seen as ``z = x / x_ref`` and may be zero.

Errors in inputs. A law whose input is itself a noisy measurement (one loss predicted from
another) lists it in ``noisy_inputs`` and returns, from :meth:`input_log_sd`, the standard
deviation that input noise adds to ``log y``; the engine adds it in quadrature to the
observation noise (the "effective variance" treatment of errors in variables).

Options. A family with variants (``broken_power_law`` with 1-3 breaks) takes keyword
options in its constructor; ``to_dict``/``get_law`` carry them through saved fits.
"""

import hashlib
import sys
import types
from typing import ClassVar

import numpy as np

from bayescale.errors import SpecError
from bayescale.ops import NUMPY
from bayescale.priors import Prior

_REGISTRY: dict[str, type["ScalingLaw"]] = {}


class ScalingLaw:
    """Base class of a scaling-law family.

    Subclasses set the class attributes and implement :meth:`log_mean` (and
    :meth:`derived` when they report natural-scale coefficients).

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"chinchilla"``.
    inputs : tuple of str
        Input names, matched to data columns (``"N"``, ``"D"``, ``"x"``, ...).
    priors : dict of str to Prior
        Default priors of the free parameters, on the reference-scale parameterisation.
    citation : str
        The paper that introduced the form.
    linear_inputs : tuple of str
        Inputs seen as ``x / x_ref`` instead of ``log x - log x_ref`` (zeros allowed).
    noisy_inputs : tuple of str
        Inputs measured with noise; see :meth:`input_log_sd`.
    scale_inputs : tuple of str
        Inputs whose product measures a row's scale (``N * D``, or ``x``): how far a
        prediction reaches beyond the fitted runs, :func:`bayescale.extrapolation.reach`.
        Empty for laws of a loss or of a schedule, which have no learnt extrapolation error.
    fixed_inputs : tuple of str
        Inputs a sweep may hold at one value, because the law reads them only against
        another input (``data_constrained``'s ``U``, read as ``D / U``); every other input
        must vary, or the fit is refused.
    group_pooling : dict of str to str
        Default pooling of parameters in a grouped fit where ``"pooled"`` is not the right
        default: ``"shared"`` for parameters that relate the groups to each other (the
        frontier exponent across the budgets of an isoFLOP sweep), or a fixed form.
    terms : tuple of str
        Positive parameters that are the additive terms of the law's value at the
        reference point (``E, a_ref, b_ref`` of Chinchilla): the data pin their sum far
        better than each, so a fit samples them as their sum and shares
        (:func:`bayescale.pooling.create_terms`) where all of them are shared, or all
        separate per group.
    term_exponents : dict of str to (str, str)
        For each term that falls along a log input, its exponent and that input:
        ``log term(z) = log term - exponent * z[input]`` (Chinchilla's ``a_ref`` falls
        along ``N`` with ``alpha``). Lets a grouped fit sample each group's terms at the
        group's own centre (:func:`bayescale.pooling.create_terms`).
    options : dict
        Constructor options of this instance (empty for families without variants).
    """

    name: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    priors: ClassVar[dict[str, Prior]] = {}
    citation: ClassVar[str] = ""
    linear_inputs: ClassVar[tuple[str, ...]] = ()
    noisy_inputs: ClassVar[tuple[str, ...]] = ()
    scale_inputs: ClassVar[tuple[str, ...]] = ()
    fixed_inputs: ClassVar[tuple[str, ...]] = ()
    group_pooling: ClassVar[dict[str, str]] = {}
    terms: ClassVar[tuple[str, ...]] = ()
    term_exponents: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, **options):
        if options:
            raise SpecError(f"law {self.name!r} takes no options, got {sorted(options)}")
        self.options = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.name:
            return
        clash = set(cls.priors) & set(cls.inputs)
        if clash:
            raise SpecError(f"law {cls.name!r}: parameter names {clash} collide with inputs")
        for term, (exponent, name) in cls.term_exponents.items():
            if (
                term not in cls.terms
                or exponent not in cls.priors
                or name not in cls.inputs
                or name in cls.linear_inputs
            ):
                raise SpecError(
                    f"law {cls.name!r}: term_exponents[{term!r}] = ({exponent!r}, {name!r}) "
                    "needs a term, a parameter and a log-scale input of the law"
                )
        if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
            raise SpecError(f"a scaling law named {cls.name!r} is already registered")
        _REGISTRY[cls.name] = cls

    @property
    def parameters(self):
        """Names of the free parameters, in a fixed order."""
        return tuple(self.priors)

    def to_dict(self):
        """Serialisable spec: the name and the constructor options."""
        return {"name": self.name, "options": dict(self.options)}

    def input_support(self, name):
        """Allowed values of input ``name`` (a key of :data:`bayescale.data.SUPPORTS`).

        Log-scale inputs must be positive; linear inputs may be zero.
        """
        return "nonnegative" if name in self.linear_inputs else "positive"

    def log_reference(self, inputs):
        """Log reference scale of each input, from the fitted values (see module docstring).

        Parameters
        ----------
        inputs : mapping of str to array_like
            Raw input values by name (a DataFrame works).
        """
        return {
            k: reference_scale(np.asarray(inputs[k], float), linear=k in self.linear_inputs)
            for k in self.inputs
        }

    def encode(self, inputs):
        """Raw inputs -> what the model stores: ``log x``, or ``x`` for linear inputs."""
        return {
            k: np.asarray(inputs[k], float)
            if k in self.linear_inputs
            else np.log(np.asarray(inputs[k], float))
            for k in self.inputs
        }

    def centre(self, m, encoded, log_ref):
        """Encoded inputs -> the ``z`` that :meth:`log_mean` sees (numpy or pytensor)."""
        return {
            k: encoded[k] * m.exp(-log_ref[k])
            if k in self.linear_inputs
            else encoded[k] - log_ref[k]
            for k in self.inputs
        }

    def z(self, inputs, log_ref):
        """``z`` of raw ``inputs`` in numpy."""
        return self.centre(NUMPY, self.encode(inputs), log_ref)

    def log_mean(self, m, p, z):
        """Log of the law's mean at centred log inputs.

        Parameters
        ----------
        m : namespace
            :data:`bayescale.ops.NUMPY` or :data:`bayescale.ops.PYTENSOR`.
        p : dict of str to array
            Free parameters; arrays broadcast against the inputs.
        z : dict of str to array
            ``log x - log x_ref`` for each input.

        Returns
        -------
        array
            ``log y``.
        """
        raise NotImplementedError

    def input_log_sd(self, m, p, z):
        """Standard deviation that noise in :attr:`noisy_inputs` adds to ``log y``, per row.

        ``None`` (the default) for laws whose inputs are known exactly. Laws with noisy
        inputs return ``|d log y / d log x| * sd(log x)`` (first-order propagation).
        """
        return None

    def derived(self, m, p, log_ref):
        """Natural-scale coefficients (``A``, ``B``, ...) from the free parameters.

        ``log_ref`` maps each input to ``log x_ref``. The default reports nothing.
        """
        return {}

    def frontier_exponent(self, params):
        """``a`` of ``N* ∝ C^a`` along the compute-optimal frontier, per draw of ``params``.

        None where the law has no constant exponent (the optimum is then found
        numerically, and the exponent is a local slope).
        """
        return None

    def mean(self, params, inputs, log_ref):
        """Evaluate the law in numpy at raw inputs (convenience for plots and tests).

        Parameters
        ----------
        params : dict of str to array_like
        inputs : dict of str to array_like
            Raw (not logged) inputs.
        log_ref : dict of str to float
        """
        p = {k: np.asarray(v, float) for k, v in params.items()}
        return np.exp(self.log_mean(NUMPY, p, self.z(inputs, log_ref)))

    def fingerprint(self):
        """Digest of what this law computes, for the compiled-program caches' keys.

        A fit compiles the law into a NUTS program cached on disk under the law's name and
        options (and bayescale's own source). A law defined outside the catalogue, in a
        notebook or a user's module, can change under the same name; keyed by name alone,
        the edited law would silently reuse the old program and return the old posterior.
        So the key also holds the law's values, not its source text (which a notebook may
        not have, and which misses a changed global): ``log_mean``, ``input_log_sd`` and
        ``derived`` at 16 prior draws and 7 pseudo-random centred inputs, bit for bit.
        """
        rng = np.random.default_rng(0)
        p = {k: v[:, None] for k, v in self.sample_prior(16, random_seed=0).items()}
        z = {k: rng.normal(size=(1, 7)) for k in self.inputs}
        with np.errstate(all="ignore"):
            values = [
                self.log_mean(NUMPY, p, z),
                self.input_log_sd(NUMPY, p, z),
                *self.derived(NUMPY, p, {k: 1.0 for k in self.inputs}).values(),
            ]
        h = hashlib.sha256()
        for v in values:
            h.update(b"|" if v is None else np.ascontiguousarray(v, float).tobytes())
        return h.hexdigest()[:16]

    def sample_prior(self, n=1000, random_seed=0, priors=None):
        """Draw the free parameters from their priors (numpy; no graph is compiled).

        Returns
        -------
        dict of str to ndarray
        """
        rng = np.random.default_rng(random_seed)
        priors = {**self.priors, **(priors or {})}
        return {k: priors[k].scipy().rvs(size=n, random_state=rng) for k in self.parameters}

    def prior_predictive(self, inputs, n=4000, random_seed=0, priors=None):
        """Law values implied by the priors at raw ``inputs``: shape (n, rows).

        The reference scales are the inputs' own (as a fit to those inputs would use), so
        this shows what the default priors say about a sweep over ``inputs``.
        """
        draws = self.sample_prior(n, random_seed, priors)
        log_ref = self.log_reference(inputs)
        return self.mean(
            {k: v[:, None] for k, v in draws.items()},
            {k: np.asarray(inputs[k], float)[None, :] for k in self.inputs},
            log_ref,
        )

    @property
    def label(self):
        """``name(option=value, ...)``, or the name alone: the form ``bayescale fit --law`` reads."""
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{self.name}({options})" if options else self.name

    def __repr__(self):
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return (
            f"<ScalingLaw {self.name!r}{options}: inputs {self.inputs}, "
            f"parameters {self.parameters}>"
        )


def laws():
    """Names of every registered scaling-law family, sorted."""
    import bayescale.models  # noqa: F401  (defining the families registers them)

    return sorted(_REGISTRY)


def get_law(law, **options):
    """Return a law instance from a registered name (with options), a spec dict or an instance.

    ``get_law("broken_power_law", n_breaks=2)``; ``get_law(law.to_dict())`` rebuilds ``law``.

    Raises
    ------
    SpecError
        For an unknown name, listing the known ones, or options the family does not take.
    """
    if isinstance(law, ScalingLaw):
        if options:
            raise SpecError("pass options with a law's name, not with a law instance")
        return law
    if isinstance(law, dict):
        if "name" not in law:
            raise SpecError(f"a law given as a dict needs its 'name', got {law!r}")
        if extra := sorted(set(law) - {"name", "options"}, key=str):
            raise SpecError(f"a law given as a dict has 'name' and 'options' only, got {extra}")
        if not isinstance(law.get("options", {}), dict):
            raise SpecError(f"a law dict's 'options' must be a dict, got {law['options']!r}")
        law, options = law["name"], {**law.get("options", {}), **options}
    names = laws()
    if not isinstance(law, str):
        raise SpecError(
            f"law must be a name ({', '.join(names)}), a spec dict or a ScalingLaw, "
            f"not {type(law).__name__}"
        )
    if law not in _REGISTRY:
        raise SpecError(f"unknown scaling law {law!r}; known laws: {', '.join(names)}")
    try:
        return _REGISTRY[law](**options)
    except TypeError as err:
        raise SpecError(f"law {law!r}: {err}") from err


def reference_scale(values, linear=False):
    """Log of the geometric centre of ``values``, rounded to one significant figure.

    Rounding keeps the reference interpretable (``N_ref = 2e9``) and stable between
    nearly identical data sets. For a ``linear`` input (which may hold zeros) the centre is
    the geometric mean of its non-zero magnitudes (1 if there are none).
    """
    values = np.abs(np.asarray(values, float))
    if linear:
        values = values[values > 0]
        if not len(values):
            return 0.0
    centre = float(np.exp(np.mean(np.log(values))))
    return float(np.log(float(f"{centre:.0e}")))


class _LawsModule(types.ModuleType):
    """The ``bayescale.laws`` module, callable: ``bayescale.laws()`` is :func:`laws`.

    The package exports the module under its own name (``import bayescale.laws`` gives
    :class:`ScalingLaw`) and users list the catalogue with ``bayescale.laws()``; a
    callable module keeps both without rebinding the submodule's name to a function.
    """

    def __call__(self):
        return laws()


sys.modules[__name__].__class__ = _LawsModule
