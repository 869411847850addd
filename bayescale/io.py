"""The saved-fit file: netCDF holding the posterior, the fitted data and the spec as JSON.

The :class:`~bayescale.spec.FitSpec` and the reference scales travel in the file's root
attributes together with a SHA-256 over them and every stored array, and (from format 4)
a second one over every coordinate: the group labels, chains and draws, whose bits a
damaged file could otherwise change unnoticed (of 200 single-bit flips of a saved
grouped fit, 5 loaded with a different ``draw`` coordinate under the format-3 checksum;
``tests/test_fit.py`` flips bits and truncates). A truncated or edited file is refused with
:class:`~bayescale.errors.FitFileError` instead of silently predicting something else.
Files of format 3 (no coordinate checksum) are read as before, and of format 2 (whose
sampler and column settings were an untyped dict) migrated on read. The file is written under a
temporary name and renamed into place, so a failed write leaves no partial file.

A fit's own extrapolation error (:attr:`~bayescale.ScalingFit.own_extrapolation`, the
draws of one refit's backtest), where it was computed before saving, travels in the node
``own_extrapolation`` under the same checksum, so a loaded fit does not refit it; older
files simply lack it.

This module knows the format, not the result object: :meth:`ScalingFit.save` and
:func:`bayescale.load` (in :mod:`bayescale.result`) call :func:`write` and :func:`read`.
"""

import contextlib
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayescale.data import FitData
from bayescale.errors import BayescaleError, FitFileError
from bayescale.extrapolation import ExtrapolationError
from bayescale.laws import get_law
from bayescale.likelihoods import get_likelihood
from bayescale.priors import Prior
from bayescale.spec import FitSpec

FORMAT = 4
_SPEC, _HASH, _COORDS_HASH = "bayescale_spec", "bayescale_sha256", "bayescale_sha256_coords"
_OWN = "own_extrapolation"


def _digest(spec_json, tree):
    """SHA-256 of the spec and every node's data variables (names and values)."""
    h = hashlib.sha256(spec_json.encode())
    for node in sorted(tree.subtree, key=lambda n: n.path):
        for name in sorted(node.ds.data_vars):
            h.update(f"{node.path}/{name}".encode())
            _update(h, node.ds[name].to_numpy())
    return h.hexdigest()


def _coords_digest(tree):
    """SHA-256 of every node's coordinates: names, dimensions and values."""
    h = hashlib.sha256()
    for node in sorted(tree.subtree, key=lambda n: n.path):
        for name in sorted(node.ds.coords):
            h.update(f"{node.path}/{name}({','.join(node.ds[name].dims)})".encode())
            _update(h, node.ds[name].to_numpy())
    return h.hexdigest()


def _update(h, values):
    if values.dtype.kind in "OUS":  # labels: hash the text, not object pointers
        h.update("\x00".join(map(str, values.ravel())).encode())
    else:
        h.update(np.ascontiguousarray(values).tobytes())


def as_path(path, what):
    """``path`` as a Path if it is one (or a string); else a :class:`FitFileError` naming ``what``."""
    if not isinstance(path, str | os.PathLike):
        raise FitFileError(f"{what} takes a file path, not {type(path).__name__}")
    return Path(path)


def writable(path, what):
    """``path`` as a Path, if a file can be written there; else a :class:`FitFileError`.

    Checked before the work whose result is written, so a mistyped folder does not cost
    a fit.
    """
    path = as_path(path, f"writing {what}")
    if path.is_dir():
        raise FitFileError(f"cannot write {what} to {str(path)!r}: it is a folder")
    if not path.parent.is_dir():
        raise FitFileError(
            f"cannot write {what} to {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )
    if not os.access(path.parent, os.W_OK):  # a read-only mount counts, even for root
        raise FitFileError(
            f"cannot write {what} to {str(path)!r}: folder {str(path.parent)!r} is read-only"
        )
    return path


def write(path, spec, posterior, data, log_ref, own_extrapolation=None):
    """Write a fit to ``path`` (netCDF4): spec, posterior, data, reference scales, own error.

    ``own_extrapolation``: :attr:`bayescale.ScalingFit.own_extrapolation` where it was
    computed, else None.

    Written to a temporary file beside ``path`` and renamed over it, so ``path`` is either
    the old file or the whole new one, never a partial write.
    """
    path = writable(path, "the fit")
    frame = data.frame
    group = data.group
    # row numbers stay numbers (a report counts the rows left out before fitting); other
    # labels (a MultiIndex's tuples too) are kept as text, as are numbers beyond int64
    index = frame.index
    integer = pd.api.types.is_integer_dtype(index) and index.max() <= np.iinfo(np.int64).max
    rows = index.to_numpy(np.int64) if integer else np.asarray(index.map(str), dtype=str)
    fit_data = xr.Dataset(
        {c: (("row",), frame[c].to_numpy(str if c == group else float)) for c in frame.columns},
        coords={"row": rows},
    )
    tree = posterior.copy()
    tree["fit_data"] = xr.DataTree(fit_data)
    if own_extrapolation is not None:
        tree[_OWN] = xr.DataTree(_error_dataset(own_extrapolation))
    saved = {"format": FORMAT, "spec": spec.to_dict(), "log_ref": dict(log_ref)}
    spec_json = json.dumps(saved, sort_keys=True)
    tree.attrs = {_SPEC: spec_json, _HASH: _digest(spec_json, tree)}
    tree.attrs[_COORDS_HASH] = _coords_digest(tree)
    write_atomically(
        path, lambda temporary: tree.to_netcdf(temporary, engine="h5netcdf"), "the fit"
    )


def _error_dataset(error):
    """An :class:`ExtrapolationError`'s draws (full precision) and source as a dataset."""
    draws = {k: (("sample",), getattr(error, k)) for k in ExtrapolationError.KEYS}
    return xr.Dataset({**draws, "source": ((), error.source)})


def _error_from(dataset):
    """Inverse of :func:`_error_dataset`."""
    keys = [k for k in ExtrapolationError.KEYS if k in dataset]  # older files lack gamma, psi
    return ExtrapolationError(
        **{k: dataset[k].to_numpy() for k in keys}, source=str(dataset["source"].item())
    )


def write_atomically(path, write, what):
    """``write(temporary)`` beside ``path``, then rename it over ``path``: all of it or none.

    A write that fails (a full disk, a folder made read-only meanwhile) leaves neither a
    partial file nor the temporary one, and raises :class:`FitFileError` naming ``what``,
    the path and the cause. Every file bayescale writes goes through here.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as err:
        raise FitFileError(f"cannot write {what} to {str(path)!r}: {err}") from err
    finally:  # on a read-only file system even a missing file's unlink fails (EROFS)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def read(path):
    """Read what :func:`write` wrote: ``spec``, ``posterior``, ``data``, ``log_ref``, ``own_extrapolation``.

    ``own_extrapolation`` is None where the file holds none.

    Raises
    ------
    FitFileError
        If the file is missing, unreadable, not a bayescale fit, fails its checksum, or
        has a format this version does not read.
    """
    path = as_path(path, "load")
    if not path.exists():
        raise FitFileError(f"no saved fit at {str(path)!r}")
    if path.is_dir():
        raise FitFileError(f"{str(path)!r} is a folder, not a saved fit")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as err:  # damaged bytes: h5py raises OSError, KeyError, RuntimeError...
        reason = " ".join(str(err).split())  # HDF5's messages run over several lines
        raise FitFileError(f"{str(path)!r} is not a readable netCDF file: {reason}") from err
    spec_json = tree.attrs.get(_SPEC)
    if spec_json is None:
        raise FitFileError(f"{str(path)!r} is netCDF but was not written by bayescale.save")
    damaged = f"{str(path)!r} fails its checksum: the file was modified or truncated"
    if _digest(spec_json, tree) != tree.attrs.get(_HASH):
        raise FitFileError(damaged)
    saved = json.loads(spec_json)
    if saved.get("format") not in _READERS:
        raise FitFileError(
            f"{str(path)!r} has format {saved.get('format')}; this bayescale reads "
            f"{', '.join(map(str, _READERS))}"
        )
    if saved["format"] >= 4 and _coords_digest(tree) != tree.attrs.get(_COORDS_HASH):
        raise FitFileError(f"{damaged} (its coordinates: group labels, chains or draws)")
    try:
        spec = _READERS[saved["format"]](saved)
    except (KeyError, TypeError, BayescaleError) as err:
        raise FitFileError(f"{str(path)!r} holds an unreadable spec: {err!r}") from err
    fd = tree["fit_data"].to_dataset()
    frame = pd.DataFrame({c: fd[c].to_numpy() for c in fd.data_vars}, index=fd["row"].to_numpy())
    data = FitData(
        frame=frame, inputs=spec.law.inputs, y=spec.y, group=spec.group, y_log_sd=spec.y_log_sd
    )
    posterior = tree.copy()
    del posterior["fit_data"]
    own = None
    if _OWN in tree.children:
        own = _error_from(tree[_OWN].to_dataset())
        del posterior[_OWN]
    posterior.attrs = {}
    return {
        "spec": spec,
        "posterior": posterior,
        "data": data,
        "log_ref": saved["log_ref"],
        "own_extrapolation": own,
    }


def _format2(saved):
    """The spec of a format-2 file, whose sampler and column settings were a loose dict.

    Every key of that dict is read here and nowhere else.
    """
    settings = saved["settings"]
    law = get_law(saved["law"])
    return FitSpec(
        law=law,
        likelihood=get_likelihood(saved["likelihood"]),
        priors={k: Prior.from_dict(v) for k, v in saved["priors"].items()},
        pooling=settings.get("pooling") or dict.fromkeys(law.parameters, "shared"),
        inputs=settings["inputs"],
        y=saved["y"],
        group=saved["group"],
        labels=settings.get("labels") or (),
        y_log_sd=settings.get("y_log_sd"),
        flops_per_token=settings["flops_per_token"],
        sampler=settings["sampler"],
        chains=settings["chains"],
        draws=settings["draws"],
        tune=settings["tune"],
        target_accept=settings["target_accept"],
        random_seed=settings["random_seed"],
        versions=saved["versions"],
    )


_READERS = {2: _format2, 3: lambda saved: FitSpec.from_dict(saved["spec"])}
_READERS[FORMAT] = _READERS[3]  # 4 adds the coordinates' checksum, nothing to migrate
"""Spec reader per file format this version reads."""
