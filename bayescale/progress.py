"""Progress bars over long loops: the fits of a backtest, the simulations of SBC, a batch.

One rule everywhere: a bar shows in a terminal (on standard error) and in a notebook (a
widget), and never where standard error is captured or redirected (tests, logs, CI), so
output that is read later holds no carriage-return noise; ``progress=False`` silences it.
"""


def progress_bar(iterable=None, *, total=None, desc="", unit="fit", progress=True):
    """A ``tqdm.auto`` bar over ``iterable`` (or updated by hand up to ``total``).

    ``disable=None`` is tqdm's "only on a terminal" (a notebook's widget always shows).
    """
    from tqdm.auto import tqdm  # on use: finding out whether it runs in a notebook takes 0.1 s

    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=None if progress else True, leave=False
    )
