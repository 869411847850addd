"""Random seeds from users: every random draw bayescale makes is seeded, so results repeat."""

import numbers

import numpy as np

from bayescale.errors import SpecError


def check_seed(seed):
    """``seed`` if it is a non-negative integer, else a :class:`SpecError` naming it.

    numpy would reject a string or a negative number too, but with a message about its
    ``SeedSequence`` that does not say which argument was wrong.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SpecError(f"random_seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def seeded(seed):
    """A numpy ``Generator`` from a user's seed (checked by :func:`check_seed`)."""
    return np.random.default_rng(check_seed(seed))
