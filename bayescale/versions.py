"""Installed versions of bayescale and the libraries its results depend on.

Recorded in every fit's spec (so a saved fit says what made it) and hashed into the
sampler's compile-cache keys (so an upgrade never reuses a stale program).
"""

from importlib import metadata

RECORDED = ("bayescale", "pymc", "pytensor", "arviz", "numpy", "numpyro", "nutpie")
"""Packages whose versions a fit records."""


def versions(names=RECORDED):
    """``{package: version}`` for ``names`` (``"not installed"`` for a missing one)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
