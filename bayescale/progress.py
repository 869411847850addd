"""Progress bars over long loops: the fits of a backtest, the simulations of SBC, a batch.

One rule everywhere: a bar shows in a terminal (on standard error) and in a notebook (a
widget), and never where standard error is captured or redirected (tests, logs, CI), so
output that is read later holds no carriage-return noise; ``progress=False`` silences it.
"""

import threading
from contextlib import contextmanager


def progress_bar(iterable=None, *, total=None, desc="", unit="fit", progress=True):
    """A ``tqdm.auto`` bar over ``iterable`` (or updated by hand up to ``total``).

    ``disable=None`` is tqdm's "only on a terminal" (a notebook's widget always shows).
    """
    from tqdm.auto import tqdm  # on use: finding out whether it runs in a notebook takes 0.1 s

    return tqdm(
        iterable, total=total, desc=desc, unit=unit, disable=None if progress else True, leave=False
    )


@contextmanager
def elapsed(desc, progress=True):
    """A live ``desc: 00:12`` clock while work that reports no progress runs.

    numpyro's NUTS runs as one compiled program (:mod:`bayescale.engine.jax_nuts`) that
    says nothing until it is done; a ticking clock at least shows it is alive. Shown
    where :func:`progress_bar` would be.
    """
    if not progress:
        yield
        return
    from tqdm.auto import tqdm

    stop = threading.Event()
    with tqdm(desc=desc, bar_format="{desc}: {elapsed}", disable=None, leave=False) as bar:

        def tick():
            while not stop.wait(0.5):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
