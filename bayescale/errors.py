"""Exceptions and warnings bayescale raises, so callers catch or filter exactly what failed.

Errors are raised on purpose for input that cannot be fitted or predicted; warnings mark a
result that exists but should not be trusted as it stands.
"""


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


class ConvergenceWarning(UserWarning):
    """A fit did not pass its convergence checks; its results should not be trusted."""


class ParetoKWarning(UserWarning):
    """Some observations have Pareto k above ArviZ's threshold: LOO may be unreliable."""


class UndefinedDrawsWarning(UserWarning):
    """Some posterior draws give no prediction at the requested inputs."""


class CacheWarning(UserWarning):
    """The on-disk compile cache was damaged or cannot be written; the fit goes on without it.

    Results are unaffected (a damaged entry is compiled anew, an unwritable folder is not
    used); only the time a fit takes changes, so this is a warning, not an error.
    """
