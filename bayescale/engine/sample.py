"""Run NUTS, with compiled code reused across fits of the same spec.

Sampler choice, measured on the 240-point Chinchilla fit (4 chains x 1000 tune + 1000 draws,
2 cores; ``benchmarks/fit_speed.py`` on a fast host; the README's Speed section has the
latest numbers): numpyro's kernel, compiled once per model as one JAX program
(:mod:`bayescale.engine.jax_nuts`), takes 7.0 s in a fresh process with empty caches, 3.7 s
with warm ones and 1.2 s per refit; nutpie pays 13-40 s of Numba compilation per new graph
and then refits in 1.4 s. So ``"numpyro"`` is the default; ``"nutpie"`` and
``"pymc"`` (PyMC's own NUTS) stay selectable.

Every sampler's ``sample_stats`` carry the maximum tree depth it ran with as the attribute
``max_tree_depth`` (10 for all three): numpyro's is the compiled program's, which passes
numpyro's default explicitly (:data:`bayescale.engine.jax_nuts.MAX_TREE_DEPTH`); nutpie's is
read from the settings it records (``inference_library_settings``); PyMC's from the default
of ``pymc.NUTS``, which ``pm.sample`` uses here and does not record. The per-draw statistics
keep each sampler's own names (see :mod:`bayescale.diagnostics`).
"""

import contextlib
import inspect
import json
import multiprocessing
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from bayescale.arguments import check_count, check_seed, is_number
from bayescale.engine import jax_nuts
from bayescale.errors import CacheWarning, SpecError
from bayescale.ops import import_jax

SAMPLERS = ("numpyro", "nutpie", "pymc")

_MODEL_CACHE: dict = {}
_NUTPIE_CACHE: dict = {}


def check_settings(sampler, chains, draws, tune, target_accept, random_seed):
    """Refuse sampler settings NUTS cannot run with, naming the argument.

    Raises
    ------
    SpecError
        For an unknown sampler, non-integer or non-positive chains/draws (negative tune,
        or none with nutpie, whose Rust sampler panics past ``except Exception``),
        a target_accept outside (0, 1) or a bad seed.
    """
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise SpecError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    nutpie = sampler == "nutpie"  # its Rust sampler panics without tuning steps
    for label, value, least in (
        ("chains", chains, 1),
        ("draws", draws, 1),
        ("tune with sampler='nutpie'" if nutpie else "tune", tune, 1 if nutpie else 0),
    ):
        check_count(value, label, least)
    if not is_number(target_accept) or not 0 < target_accept < 1:
        raise SpecError(f"target_accept must be a number in (0, 1), got {target_accept!r}")
    check_seed(random_seed)


def cache_dir():
    """Folder for persistent compilation caches (``BAYESCALE_CACHE_DIR`` overrides).

    It may turn out unwritable (read-only, or a file): :func:`_enable_jax_cache` then
    warns once and the process writes nothing there (it still reads what is there).
    """
    default = Path.home() / ".cache" / "bayescale"
    return Path(os.environ.get("BAYESCALE_CACHE_DIR") or default)  # set but empty: unset


def _enable_jax_cache():
    """Point JAX's persistent compilation cache into :func:`cache_dir`, if it can be written.

    An unwritable folder points it nowhere: JAX would otherwise warn on every compile it
    fails to store. The one :class:`~bayescale.errors.CacheWarning` comes from
    :func:`jax_nuts.writable`, whose verdict also keeps the NUTS programs off disk.
    """
    jax = import_jax()
    folder = cache_dir()
    usable = jax_nuts.writable(folder)
    jax.config.update("jax_compilation_cache_dir", str(folder / "jax") if usable else None)
    # Cache every compile: PyMC's initial-point checks run ~70 small jitted functions
    # that together cost ~2 s per process when only large compiles are cached.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


JAX_CACHE_DAMAGE = "persistent compilation cache entry"
"""In JAX's warning that it could not read or write an entry of its compilation cache."""


@contextlib.contextmanager
def _jax_cache_repaired(folder):
    """Empty JAX's compilation cache ``folder`` where JAX could not use one of its entries.

    JAX writes an entry in place and never replaces one that exists: an entry torn by a
    full disk or a killed process was read, warned about and compiled anew by every later
    process (17-28 s a fit instead of 4-7 s). Its warnings are gathered here into one
    :class:`~bayescale.errors.CacheWarning`, and the folder is emptied for the next fit
    to fill; every other warning is passed on.
    """
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # seen before in this process or not
            yield
    finally:
        damaged = [str(w.message) for w in caught if JAX_CACHE_DAMAGE in str(w.message)]
        for w in caught:
            if JAX_CACHE_DAMAGE not in str(w.message):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if damaged:
        shutil.rmtree(folder, ignore_errors=True)
        warnings.warn(
            f"JAX's compilation cache in {folder} has an entry it cannot use ({damaged[0]}); "
            "the folder is emptied, so the next fit compiles and stores it anew",
            CacheWarning,
            stacklevel=4,
        )


def generated_source_in_cache():
    """Point PyTensor's generated source into :func:`cache_dir`, unless the user set it.

    PyTensor writes the Python source of every function it compiles (a model's JAX graph,
    its initial-point checks) to a file of its own in the system's temporary folder and
    never removes it: 4,097 files in ``/tmp`` after one day of this project's tests. With
    ``generated_src_dir`` set, it names each file by its contents and prunes those unused
    for a week. Called only where a PyMC model is built or sampled (PyTensor is imported
    then anyway; a fit from a cached program never imports it). It follows
    ``BAYESCALE_CACHE_DIR`` as the compiled programs do, as long as the folder set is the
    one this function chose.
    """
    from pytensor import config

    global _generated_source
    folder = str(cache_dir() / "pytensor_source")
    ours = config.generated_src_dir in ("", _generated_source)
    if ours and folder != config.generated_src_dir and jax_nuts.writable(Path(folder)):
        config.generated_src_dir = _generated_source = folder


_generated_source = None
"""The folder :func:`generated_source_in_cache` last set (a user's own setting is left alone)."""


def _source_in_cache(build):
    """``build``, calling :func:`generated_source_in_cache` first."""

    def build_with_source_in_cache():
        generated_source_in_cache()
        return build()

    return build_with_source_in_cache


def cached_model(key, build, values):
    """Return the model for ``key``, building it once and swapping data in afterwards.

    Parameters
    ----------
    key : str
        Identifies the graph (law, priors, likelihood): equal keys mean equal graphs.
    build : callable
        Builds the model when ``key`` is new.
    values : dict
        ``pm.Data`` values for this fit.
    """
    model = _MODEL_CACHE.get(key)
    if model is None:
        model = _MODEL_CACHE[key] = build()
    else:
        import pymc as pm

        pm.set_data(values, model=model)
    return model


def run_nuts(recipe, *, progressbar=False, sources=()):
    """Sample a fit's model with NUTS and return the posterior ``DataTree``.

    Parameters
    ----------
    recipe : ModelRecipe
        The fit's spec (its sampler settings, already checked by :func:`check_settings`,
        and :meth:`~bayescale.spec.FitSpec.graph_key`: equal keys share compiled code),
        its data values, and its model, built only when no compiled program is cached.
    progressbar : bool
        Shown by nutpie and PyMC; the compiled numpyro program runs without one.
    sources : tuple of str
        Folders of the source code the model depends on: numpyro's compiled programs are
        cached under a digest of their contents.
    """
    spec = recipe.spec
    key = spec.graph_key()
    if spec.sampler == "numpyro":
        _enable_jax_cache()
        with _jax_cache_repaired(cache_dir() / "jax"):
            return jax_nuts.sample(
                _source_in_cache(recipe.model),
                recipe.values,
                key=key,
                folder=cache_dir() / "nuts",
                source=jax_nuts.source_digest(tuple(sources)),
                coords=recipe.coords,
                chains=spec.chains,
                draws=spec.draws,
                tune=spec.tune,
                random_seed=spec.random_seed,
                target_accept=spec.target_accept,
            )
    model = cached_model(key, _source_in_cache(recipe.model), recipe.values)
    if spec.sampler == "nutpie":
        return _run_nutpie(model, key, recipe.values, spec, progressbar)
    import pymc as pm

    # a Dask worker is a daemon process, which may not start PyMC's chain processes; the
    # draws depend on the seed, not on how many processes ran the chains
    daemon = multiprocessing.current_process().daemon
    with model:
        idata = pm.sample(
            spec.draws,
            tune=spec.tune,
            chains=spec.chains,
            cores=1 if daemon else min(spec.chains, os.cpu_count() or 1),
            nuts_sampler=spec.sampler,
            random_seed=spec.random_seed,
            nuts={"target_accept": spec.target_accept},
            progressbar=progressbar,
            compute_convergence_checks=False,
        )
    depth = inspect.signature(pm.NUTS).parameters["max_treedepth"].default
    idata["sample_stats"].attrs["max_tree_depth"] = int(depth)
    return idata


def _run_nutpie(model, key, values, spec, progressbar):
    import nutpie

    compiled = _NUTPIE_CACHE.get(key)
    if compiled is None:
        compiled = _NUTPIE_CACHE[key] = nutpie.compile_pymc_model(model)
    else:
        compiled = compiled.with_data(**values)
    idata = nutpie.sample(
        compiled,
        chains=spec.chains,
        draws=spec.draws,
        tune=spec.tune,
        seed=spec.random_seed,
        cores=min(spec.chains, os.cpu_count() or 1),
        target_accept=spec.target_accept,
        progress_bar=progressbar,
        save_warmup=False,
    )
    stats = idata["sample_stats"]
    settings = json.loads(stats.attrs.get("inference_library_settings", "{}"))
    depth = settings.get("settings", {}).get("maxdepth")
    if depth is not None:
        stats.attrs["max_tree_depth"] = int(depth)
    if "divergence_message" in stats:  # None where a draw did not diverge: netCDF wrote
        # those as NaN, so a saved fit failed its checksum on load; text round-trips
        message = stats["divergence_message"]
        stats["divergence_message"] = message.copy(
            data=np.vectorize(lambda m: "" if m is None else str(m), otypes=[str])(message)
        )
    return idata
