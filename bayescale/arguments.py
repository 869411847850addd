"""Checks of the scalar arguments users pass: counts, numbers, probabilities and seeds.

Python's ``True`` is an ``int`` and numpy rejects a bad seed with a message about its
``SeedSequence``, so each check here says which argument was wrong, as a
:class:`~bayescale.errors.SpecError`, and every module asks the same question the same way.
"""

import numbers

import numpy as np

from bayescale.errors import SpecError


def is_integer(value):
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    """Whether ``value`` is a real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_probability(value, name):
    """``value`` if it is a probability strictly between 0 and 1, else a named SpecError."""
    if not is_number(value) or not 0 < value < 1:
        raise SpecError(f"{name} must be a probability in (0, 1), got {value!r}")
    return value


def check_count(value, name, least=1):
    """``value`` if it is an integer ``>= least``, else a :class:`SpecError` naming it."""
    if not is_integer(value) or value < least:
        raise SpecError(f"{name} must be an integer >= {least}, got {value!r}")
    return value


SEED_LIMIT = 2**63
"""Seeds must be below this: JAX takes a seed as a signed 64-bit integer."""


def check_seed(seed):
    """``seed`` if it is an integer in ``[0, 2**63)``, else a :class:`SpecError` naming it."""
    if not is_integer(seed) or not 0 <= seed < SEED_LIMIT:
        raise SpecError(f"random_seed must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def seeded(seed):
    """A numpy ``Generator`` from a user's seed (checked by :func:`check_seed`)."""
    return np.random.default_rng(check_seed(seed))
