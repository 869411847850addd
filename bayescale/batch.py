"""``fit_many``: a batch of fits on Dask, returned in order, identical to fitting one by one.

Scaling-law work is many fits (every law x likelihood x data subset, backtests at several
cuts, simulation-based calibration), each a few seconds to minutes of NUTS that needs
nothing from the others. :func:`fit_many` hands such a batch to ``dask.distributed``, the
usual engine for a batch of Python work on a laptop or a cluster: a local cluster sized
to the machine by default, or the scheduler of a real cluster by address.

Design choices, and why:

* **A fit travels as the saved-fit file.** A worker fits, writes the fit with
  :meth:`ScalingFit.save` (:mod:`bayescale.io`, checksummed) and returns the file's bytes;
  the client reads them back with :func:`bayescale.load`. A ``ScalingFit`` is never
  pickled: the file is the format bayescale already promises to read across processes
  and versions, and its checksum catches a damaged transfer. Every task takes this path,
  on the cluster and in this process alike, so a slot holds the same object wherever it
  ran (a loaded fit: its data rows are labelled by strings, as after any ``load``).
* **Same seeds, same bits.** A fit's draws depend on its seed, its data and the compiled
  program, and the program on the number of XLA CPU devices its chains are spread over
  (measured: with one device instead of :func:`bayescale.ops.import_jax`'s 100, a
  2-chain fit's draws moved by up to 0.09). Worker processes of the local cluster inherit
  this process's environment (``XLA_FLAGS``, ``BAYESCALE_CACHE_DIR``), so they compile,
  or load from the shared cache, the same program as a serial fit: the posteriors are
  bit-identical (``tests/test_batch.py``). On a remote cluster that holds where workers
  run the same library versions with the same ``XLA_FLAGS`` on the same kind of CPU.
* **One worker per core, one fit per worker.** Workers are processes with one thread
  each: a process's caches of compiled models (a PyMC model whose data each fit swaps in)
  and the recording of a fit's warnings are not safe for two fits at once, and the Python
  parts of a fit hold the GIL. A fit's chains run in its worker as XLA threads, one per
  chain, exactly as in a serial fit: putting them on one device would compile a different
  program and give different draws. With several chains per fit the cores are therefore
  shared by the operating system; what the batch adds over a serial loop on one machine
  is that the serial parts of fits (validation, diagnostics, writing) overlap with other
  fits' sampling.
* **Nothing lost when a worker dies.** The scheduler reruns the tasks of a worker that
  died (killed, out of memory) on another one, up to Dask's
  ``distributed.scheduler.allowed-failures`` (3) deaths per task, after which the task
  fails with ``KilledWorker``. A task that raises something unexpected (a full temporary
  folder on the worker, say) is retried :data:`RETRIES` times. A
  :class:`~bayescale.errors.BayescaleError` (bad data, a bad spec, a sampler that cannot
  start) is not retried: it would fail the same way again.
* **Errors where a lab can act on them.** Every task is checked before any fit starts
  (a misspelt keyword in task 731 should not surface at 3 a.m.). During the batch,
  ``errors="raise"`` stops at the first failed task and cancels the rest;
  ``errors="return"`` finishes the batch and leaves the exception in the failed task's
  slot, the right choice for a long unattended batch.
* **Warnings come home.** Warnings a fit raises on a worker (a
  :class:`~bayescale.errors.ConvergenceWarning`, say) are recorded there and raised again
  here, prefixed with the task's index, so a batch warns as its fits one by one would.
"""

import inspect
import os
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bayescale.data import read_table
from bayescale.errors import BayescaleError, SpecError
from bayescale.fitting import fit as fit_law
from bayescale.laws import get_law
from bayescale.progress import progress_bar
from bayescale.result import load

_FIT_PARAMETERS = inspect.signature(fit_law).parameters
TASK_KEYS = tuple(_FIT_PARAMETERS)
"""Keys a task may have: the keyword arguments of :func:`bayescale.fit`."""

ADDRESS_VARIABLE = "BAYESCALE_DASK_ADDRESS"
"""Environment variable naming the scheduler :func:`fit_many` uses when given no client."""

RETRIES = 2
"""Reruns of a task that raised something other than a ``BayescaleError`` on a worker."""

ERRORS = ("raise", "return")


@dataclass(frozen=True)
class _Outcome:
    """What one task sends back: its saved fit or its error, and the warnings it raised.

    ``warnings`` holds ``(category, message)`` pairs, each once.
    """

    saved: bytes | None = None
    error: BaseException | None = None
    warnings: tuple = ()


def fit_many(tasks, client=None, *, progress=True, errors="raise"):
    """Fit many scaling laws as one batch, on Dask workers, and return the fits in order.

    Parameters
    ----------
    tasks : sequence of dict
        One dict of :func:`bayescale.fit` keyword arguments per fit, e.g.
        ``{"data": df, "law": "chinchilla", "random_seed": 3}``; ``data`` is required.
        All tasks are checked before any fit starts (keys, law names, data files: a CSV
        path is read here, so workers on other machines need not see it).
    client : distributed.Client, str, False or None
        Where the fits run:

        * ``None`` (default): the scheduler at ``$BAYESCALE_DASK_ADDRESS`` if set; else
          one task runs in this process and several on a new local cluster of one
          single-threaded worker process per core (at most one per task), closed when
          the batch ends. A script that starts a local cluster must call ``fit_many``
          under ``if __name__ == "__main__":``, since worker processes import it.
        * a ``distributed.Client``: used as it is and left open.
        * a scheduler address (``"tcp://10.0.0.5:8786"``): connected to for the batch.
        * ``"local"``: a new local cluster as above, whatever ``$BAYESCALE_DASK_ADDRESS`` says.
        * ``False``: every task in this process, one after another, with no cluster
          (debugging, or a default that must not start processes).
    progress : bool
        Show a progress bar over finished tasks (:mod:`bayescale.progress`: a widget in a
        notebook, a line in a terminal, nothing where standard error is captured).
    errors : {"raise", "return"}
        What a failed task does. ``"raise"``: its exception is raised as soon as it is
        seen and the unfinished tasks are cancelled. ``"return"``: the batch runs to the
        end and the exception takes the failed task's slot, so a long unattended batch
        keeps every fit that succeeded (``[i for i, f in enumerate(fits) if
        isinstance(f, Exception)]`` lists the ones to look at). Either way the
        exception carries a note naming the task's index.

    Returns
    -------
    list
        One :class:`~bayescale.ScalingFit` per task, in task order, each bit-identical in
        its posterior to ``bayescale.fit(**task)`` in this process (with
        ``errors="return"``, an exception where a task failed).

    Raises
    ------
    SpecError
        Before any fit, for a task that is not a dict, lacks ``data``, has a key that is
        not a ``bayescale.fit`` argument or names an unknown law (the message names the
        task's index and the key); for a bad ``client`` or ``errors``; for a scheduler
        address that cannot be reached (the message names it and where it came from).
    DataError
        Before any fit, for a task whose data file is missing or unreadable.

    Examples
    --------
    >>> tasks = [
    ...     {"data": df, "law": law, "likelihood": likelihood}
    ...     for law in ("chinchilla", "kaplan")
    ...     for likelihood in ("normal", "student_t")
    ... ]
    >>> fits = bayescale.fit_many(tasks)  # local cluster
    >>> fits = bayescale.fit_many(tasks, client="tcp://scheduler:8786")  # a real cluster
    """
    if errors not in ERRORS:
        raise SpecError(f"errors must be one of {ERRORS}, got {errors!r}")
    tasks = _checked_tasks(tasks)
    results = [None] * len(tasks)
    with (
        tempfile.TemporaryDirectory(prefix="bayescale-batch-") as folder,
        progress_bar(total=len(tasks), desc="fit_many", progress=progress) as bar,
        _runner(client, len(tasks)) as run,
        closing(run(tasks)) as outcomes,
    ):
        for index, outcome in outcomes:
            try:
                results[index] = _decode(outcome, Path(folder) / f"{index}.nc", index)
            except Exception as err:
                err.add_note(f"raised by fit_many task {index}")
                if errors == "raise":
                    raise
                results[index] = err
            bar.update()
    return results


def _checked_tasks(tasks):
    """``tasks`` as a list of dicts, each a valid set of ``bayescale.fit`` keywords.

    A data path is read into a table here (once per path): a missing file fails before the
    batch, and workers on other machines get the table rather than a path they cannot see.
    """
    if isinstance(tasks, Mapping | str) or not hasattr(tasks, "__iter__"):
        raise SpecError(
            f"tasks must be a list of dicts of bayescale.fit arguments, got "
            f"{type(tasks).__name__} (wrap a single task in a list)"
        )
    tables, checked = {}, []
    for index, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            raise SpecError(
                f"task {index} is a {type(task).__name__}, not a dict of bayescale.fit arguments"
            )
        if unknown := sorted(set(task) - set(TASK_KEYS)):
            raise SpecError(
                f"task {index} has key(s) {unknown} that bayescale.fit does not take; "
                f"it takes {list(TASK_KEYS)}"
            )
        if "data" not in task:
            raise SpecError(f"task {index} has no 'data': every task needs the table to fit")
        task = dict(task)
        try:
            get_law(task.get("law", _FIT_PARAMETERS["law"].default))
            if isinstance(task["data"], str | Path):
                path = str(task["data"])
                if path not in tables:
                    tables[path] = read_table(path)
                task["data"] = tables[path]
        except BayescaleError as err:
            raise type(err)(f"task {index}: {err}") from err
        checked.append(task)
    return checked


@contextmanager
def _runner(client, n_tasks):
    """A function from tasks to an iterator of ``(index, _Outcome)`` as tasks finish."""
    address = os.environ.get(ADDRESS_VARIABLE) or None
    if client is False or (client is None and address is None and n_tasks <= 1):
        yield _in_process
        return
    with _dask_client(client, address, n_tasks) as dask_client:
        yield lambda tasks: _on_cluster(dask_client, tasks)


def _in_process(tasks):
    """Run the tasks here, one after another, failing as a worker's task would."""
    for index, task in enumerate(tasks):
        try:
            outcome = _run_task(task)
        except Exception as err:
            outcome = _Outcome(error=err)
        yield index, outcome


def _on_cluster(client, tasks):
    """Submit every task, then yield each outcome as it arrives; cancel the rest on close."""
    from distributed import as_completed

    batch = os.urandom(4).hex()
    futures = {
        client.submit(_run_task, task, key=f"bayescale-fit-{batch}-{index}", retries=RETRIES): index
        for index, task in enumerate(tasks)
    }
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                outcome = future.result()
            except Exception as err:  # KilledWorker, or a failure that outlived its retries
                outcome = _Outcome(error=err)
            future.release()  # the client holds the fit now; free the worker's copy
            yield futures[future], outcome
    finally:  # stopped at a failed task (errors="raise") or interrupted
        client.cancel([f for f in futures if not f.done()])


@contextmanager
def _dask_client(client, address, n_tasks):
    """The Dask client to use; one this function opened is closed on exit."""
    from distributed import Client, LocalCluster

    if isinstance(client, Client):
        yield client
        return
    if client is not None and not isinstance(client, str):
        raise SpecError(
            "client must be a distributed.Client, a scheduler address, False (this process) "
            f"or None (${ADDRESS_VARIABLE} or a local cluster), got {type(client).__name__}"
        )
    address = client or address
    if address is None or address == "local":
        workers = min(getattr(os, "process_cpu_count", os.cpu_count)() or 1, n_tasks)
        with (
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
            Client(cluster, set_as_default=False) as local,
        ):
            yield local
        return
    origin = "client=" if client else f"${ADDRESS_VARIABLE}"
    try:
        connected = Client(address, set_as_default=False)
    except (OSError, ValueError) as err:  # unreachable, or not an address at all
        raise SpecError(
            f"cannot reach the Dask scheduler at {address!r} ({origin}): {err}"
        ) from err
    with connected:
        yield connected


def _run_task(task):
    """Fit one task and return its saved fit's bytes, or its ``BayescaleError``.

    Runs on a worker (or in this process). A ``BayescaleError`` is returned rather than
    raised, so that Dask does not retry a fit that would fail the same way again.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the client's filters decide when they come home
        try:
            fitted = fit_law(**task)
        except BayescaleError as err:
            return _Outcome(error=err, warnings=_distinct(caught))
        with tempfile.TemporaryDirectory(prefix="bayescale-task-") as folder:
            path = Path(folder) / "fit.nc"
            fitted.save(path)
            return _Outcome(saved=path.read_bytes(), warnings=_distinct(caught))


def _distinct(caught):
    return tuple(dict.fromkeys((w.category, str(w.message)) for w in caught))


def _decode(outcome, path, index):
    """Raise the task's warnings here, then its error, or return the fit it saved."""
    for category, message in outcome.warnings:
        warnings.warn(f"fit_many task {index}: {message}", category, stacklevel=3)
    if outcome.error is not None:
        raise outcome.error
    path.write_bytes(outcome.saved)
    try:
        return load(path)
    finally:
        path.unlink()
