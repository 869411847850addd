"""Exceptions raised by bayescale, so callers can catch exactly what went wrong."""


class BayescaleError(Exception):
    """Base class of every error bayescale raises on purpose."""


class DataError(BayescaleError, ValueError):
    """The input table cannot be fitted: the message names the column, rows and the fix."""


class SpecError(BayescaleError, ValueError):
    """A law, prior, likelihood or sampler specification is invalid."""


class FitFileError(BayescaleError, OSError):
    """A saved fit is missing, corrupt, or was not written by bayescale."""


class SamplingError(BayescaleError, FloatingPointError):
    """The sampler cannot start: no finite log density where it looked for a starting point."""
