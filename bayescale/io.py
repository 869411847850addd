"""Save and load fits: netCDF holding the posterior, the fitted data and the spec as JSON.

The spec (law, priors, likelihood, reference scales, settings, seed, versions) travels in
the file's root attributes together with a SHA-256 over the spec and every stored array, so
a truncated or edited file is refused with :class:`~bayescale.errors.FitFileError` instead of
silently predicting something else.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayescale.data import FitData
from bayescale.errors import FitFileError
from bayescale.laws import get_law
from bayescale.likelihoods import get_likelihood
from bayescale.priors import Prior

FORMAT = 2
_SPEC, _HASH = "bayescale_spec", "bayescale_sha256"


def _digest(spec_json, tree):
    h = hashlib.sha256(spec_json.encode())
    for node in sorted(tree.subtree, key=lambda n: n.path):
        for name in sorted(node.ds.data_vars):
            h.update(f"{node.path}/{name}".encode())
            values = node.ds[name].to_numpy()
            if values.dtype.kind in "OUS":  # labels: hash the text, not object pointers
                h.update("\x00".join(map(str, values.ravel())).encode())
            else:
                h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def writable(path, what):
    """``path`` as a Path, if a file can be written there; else a :class:`FitFileError`.

    Checked before the work whose result is written, so a mistyped folder does not cost
    a fit.
    """
    path = Path(path)
    if path.is_dir():
        raise FitFileError(f"cannot write {what} to {str(path)!r}: it is a folder")
    if not path.parent.is_dir():
        raise FitFileError(
            f"cannot write {what} to {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )
    return path


def save(fit, path):
    """Write ``fit`` to ``path`` (netCDF4 via h5netcdf)."""
    path = writable(path, "the fit")
    frame = fit.data.frame
    group = fit.data.group
    fit_data = xr.Dataset(
        {c: (("row",), frame[c].to_numpy(str if c == group else float)) for c in frame.columns},
        coords={"row": np.asarray(frame.index.astype(str))},
    )
    tree = fit.posterior.copy()
    tree["fit_data"] = xr.DataTree(fit_data)
    spec = {
        "format": FORMAT,
        "law": fit.law.to_dict(),
        "likelihood": fit.likelihood.to_dict(),
        "priors": {k: p.to_dict() for k, p in fit.priors.items()},
        "log_ref": fit.log_ref,
        "inputs": list(fit.data.inputs),
        "y": fit.data.y,
        "group": group,
        "settings": fit.settings,
        "versions": fit.versions,
    }
    spec_json = json.dumps(spec, sort_keys=True)
    tree.attrs = {_SPEC: spec_json, _HASH: _digest(spec_json, tree)}
    tree.to_netcdf(path, engine="h5netcdf")


def load(path):
    """Read a fit written by :meth:`ScalingFit.save`.

    Raises
    ------
    FitFileError
        If the file is missing, unreadable, not a bayescale fit, or fails its checksum.
    """
    from bayescale.result import ScalingFit

    if not isinstance(path, str | Path):
        raise FitFileError(f"load takes a file path, not {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FitFileError(f"no saved fit at {str(path)!r}")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except (OSError, ValueError) as err:
        raise FitFileError(f"{str(path)!r} is not a readable netCDF file: {err}") from err
    spec_json = tree.attrs.get(_SPEC)
    if spec_json is None:
        raise FitFileError(f"{str(path)!r} is netCDF but was not written by bayescale.save")
    if _digest(spec_json, tree) != tree.attrs.get(_HASH):
        raise FitFileError(f"{str(path)!r} fails its checksum: the file was modified or truncated")
    spec = json.loads(spec_json)
    if spec["format"] != FORMAT:
        raise FitFileError(
            f"{str(path)!r} has format {spec['format']}; this bayescale reads {FORMAT}"
        )
    fd = tree["fit_data"].to_dataset()
    frame = pd.DataFrame({c: fd[c].to_numpy() for c in fd.data_vars}, index=fd["row"].to_numpy())
    data = FitData(
        frame=frame,
        inputs=tuple(spec["inputs"]),
        y=spec["y"],
        group=spec["group"],
        y_log_sd=spec["settings"].get("y_log_sd"),
    )
    posterior = tree.copy()
    del posterior["fit_data"]
    posterior.attrs = {}
    return ScalingFit(
        posterior=posterior,
        law=get_law(spec["law"]),
        priors={k: Prior.from_dict(v) for k, v in spec["priors"].items()},
        likelihood=get_likelihood(spec["likelihood"]),
        data=data,
        log_ref=spec["log_ref"],
        settings=spec["settings"],
        versions=spec["versions"],
    )
