"""NUTS with numpyro's kernel, compiled once per model and cached on disk as a JAX export.

Driving ``numpyro.infer.MCMC`` costs, per fit: re-tracing its ``pmap`` on every ``run``
(``jit_model_args`` does not apply to parallel chains; ~1 s and ~30 MB of traces per fit),
and in each new process jaxifying the PyMC graph and tracing NUTS again (~2.5 s), although
JAX's persistent cache already holds the compiled code. Here warmup and sampling of all
chains are one program: numpyro's ``hmc`` kernel in a ``lax.scan``, one chain per CPU
device under ``shard_map``, with the data as arguments and the constraining transforms
applied inside. It is exported with :mod:`jax.export`, serialised to the cache folder
under a digest of everything it depends on (model spec, sampler settings, data shapes,
library versions and bayescale's own source), and reused in memory within a process. A
process that finds the program on disk needs neither the PyMC model nor any tracing.

The cache is shared by every process of a user (or a lab) that points at it, and made
safe for fits running in parallel:

* An entry is one file, ``<digest>/program.bin``: a magic line, the SHA-256 of the body,
  and the metadata and the exported programs, length-prefixed. It is written under a
  temporary name in the same folder and renamed over the old one (``os.replace``, atomic
  on one file system), and read in one call, so a reader gets a whole entry from one
  writer or none; three files, each replaced on its own, let a reader pair a new
  ``meta.json`` with an old ``run.bin``. Two processes compiling the same program at once
  both save, and the last rename leaves an equivalent entry (``tests/test_cache.py`` holds
  both saves until both have built). A folder renamed into place was not chosen: a
  directory cannot be renamed over a non-empty one, so replacing a damaged entry would
  need a delete first, and a window in which readers find it missing or half deleted.
* A truncated, bit-flipped or unreadable entry gives one
  :class:`~bayescale.errors.CacheWarning`, is compiled anew and replaced. The checksum is
  checked before ``jax.export.deserialize`` sees the bytes: given a truncated ``run.bin``
  it raised ``struct.error`` out of the fit, and nothing promises that flipped bits fail
  rather than run. No ``fsync``: an entry torn by a crash fails its checksum and is
  rebuilt. A writer killed mid-write leaves a ``.program.bin.*.tmp`` that nothing reads
  (deleting the cache folder is always safe).
* A cache folder that cannot be written (read-only, a file, under a file) is found by
  writing a probe file, once per process: ``os.access`` answers for root that a folder of
  mode ``0o555`` is writable. A save that fails later (a full disk) counts the same. Either
  gives one ``CacheWarning`` naming the folder and ``BAYESCALE_CACHE_DIR``; programs are
  then kept in memory only (entries already there are still read), and JAX's persistent
  cache is pointed nowhere, since JAX warns about every compile it fails to store. JAX's
  cache itself is JAX's: it catches an entry it cannot read, warns and compiles again, but
  never replaces it, so :func:`bayescale.engine.sample.run_nuts` empties that folder then,
  with one ``CacheWarning``.

The mass matrix is diagonal, as numpyro's ``MCMC`` sets it up for a potential function. A
dense one was measured: it cuts the Chinchilla fit from 63 to 16 leapfrog steps per draw,
but diverges far more often. Simulation-based calibration of all ten laws (the designs
and settings of ``tests/test_sbc.py``, 20 simulations each): 99 of 200 fits diverged with
the dense matrix, 31 with the diagonal (Chinchilla 9 against 2, BNSL 17 against 11);
recovery fits of one-break BNSL: 6 of 12 against 0 of 12; the pooled six-group power law
of ``tests/test_groups_slow.py``: 22-40 divergences in three seeds against 0-1.

Tree depth. numpyro's ``HMCState`` records the leapfrog steps of a draw (``num_steps``, the
tree's ``num_proposals``), not the depth. Its iterative NUTS doubles the trajectory until
a U-turn, a divergence or ``max_tree_depth``; doubling ``k`` adds up to ``2**(k - 1)``
steps and stops early inside the new subtree on a U-turn or divergence. So a draw of depth
``d`` took between ``2**(d - 1)`` and ``2**d - 1`` steps (depth = bit length of the steps,
as numpyro's ``HMCState`` docstring says), and only a trajectory that completed all
``max_tree_depth`` doublings without turning or diverging took exactly
``2**max_tree_depth - 1``: Stan's "hit the maximum tree depth", which the sample
statistics record as ``reached_max_treedepth`` (PyMC's name, so ArviZ's ``diagnose``
reads it too).
"""

import hashlib
import json
import os
import secrets
import tempfile
import warnings
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import xarray as xr

from bayescale.errors import CacheWarning, SamplingError
from bayescale.versions import versions

_STATS = ("diverging", "energy", "n_steps", "acceptance_rate", "step_size")
MAX_TREE_DEPTH = 10
"""numpyro's default ``max_tree_depth`` (of ``hmc``'s ``init_kernel``), passed explicitly so
that the program and the saturation test of :func:`tree_depth_stats` agree by construction."""
_VERSIONED = ("jax", "jaxlib", "numpyro", "pymc", "pytensor")
_PROGRAMS: dict = {}
ENTRY = "program.bin"
"""File name of a cached program inside its digest's folder."""
_MAGIC = b"bayescale nuts program 2\n"  # a new layout gets a new number
_PARTS = 4  # the metadata, then the log density, run and start programs
_WRITABLE: set = set()  # cache folders this process wrote to
_UNWRITABLE: set = set()  # and those it could not: not tried again, warned about once


@cache
def source_digest(folders):
    """Digest of the source under ``folders`` and of the versions of the libraries used.

    A code change or an upgrade invalidates cached programs. The caller names the folders (bayescale's and its law catalogue's), so the engine
    needs no import of the package it serves.
    """
    h = hashlib.sha256()
    for folder in folders:
        root = Path(folder)
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    for name, version in versions(_VERSIONED).items():
        h.update(f"{name}={version}".encode())
    return h.hexdigest()


class Program:
    """Compiled NUTS for one model, settings and data shape.

    Attributes
    ----------
    meta : dict
        ``value_names`` (unconstrained parameters, in order), ``shapes`` (theirs),
        ``names`` and ``dims`` of the constrained outputs.

    Every one of its programs takes the data as arguments: the log density, the run, and
    the start (PyMC's initial point on the unconstrained scale, which depends on the data
    where a grouped parameter is centred on each group's own estimate). A program built
    for one data set therefore gives a second data set of the same shape exactly what a
    program built for that one would.
    """

    def __init__(self, meta, log_density, run, start):
        self.meta = meta
        self._log_density = log_density
        self._run = run
        self._start = start

    @classmethod
    def build(cls, model, data_names, data, settings):
        """Jaxify ``model``, export its programs and return them with their metadata."""
        import jax
        import pymc.sampling.jax as pmjax
        from pymc.initial_point import make_initial_point_expression
        from pymc.util import get_default_varnames

        shared = [model[name] for name in data_names]
        data_vars = [v.type.clone(shape=(None,) * v.ndim)(name=v.name) for v in shared]
        inputs = [*model.value_vars, *data_vars]
        logp_fn = pmjax.get_jaxified_graph(
            inputs=inputs, outputs=_data_as_inputs([model.logp()], data_vars)
        )
        outputs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
        # The data are inputs of the constraining transforms too: grouped parameters are
        # built from each group's own estimate (pooling.create), which is data.
        constrain = pmjax.get_jaxified_graph(
            inputs=inputs, outputs=_data_as_inputs(outputs, data_vars)
        )
        value_names = [v.name for v in model.value_vars]
        # PyMC's initial point, evaluated by JAX: model.initial_point() would compile
        # PyTensor's C linker in a fresh cache (~1 s) for a handful of constants.
        start = make_initial_point_expression(
            free_rvs=model.free_RVs,
            rvs_to_transforms=model.rvs_to_transforms,
            initval_strategies=model.rvs_to_initial_values,
            return_transformed=True,
        )
        start_fn = pmjax.get_jaxified_graph(
            inputs=data_vars, outputs=_data_as_inputs(start, data_vars)
        )
        meta = {
            "value_names": value_names,
            "shapes": [list(np.shape(v)) for v in start_fn(*data)],
            "names": [v.name for v in outputs],
            "dims": {v.name: list(model.named_vars_to_dims.get(v.name, ())) for v in outputs},
        }

        def log_density(params, data):
            return logp_fn(*[params[n] for n in value_names], *data)[0]

        chains = settings[0]
        init = {
            n: np.zeros((chains, *shape))
            for n, shape in zip(value_names, meta["shapes"], strict=True)
        }
        run = _run_program(log_density, constrain, value_names, settings)
        keys = jax.random.split(jax.random.PRNGKey(0), chains)
        mesh = _mesh(chains)
        sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chain"))
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

        def spec(x, sharding=None):
            return jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype, sharding=sharding)

        exported_run = jax.export.export(run)(
            spec(keys, sharded),
            {n: spec(v, sharded) for n, v in init.items()},
            tuple(spec(d, replicated) for d in data),
        )
        batch = jax.jit(jax.vmap(log_density, in_axes=(0, None)))
        exported_density = jax.export.export(batch)(
            {n: spec(v) for n, v in init.items()}, tuple(spec(d) for d in data)
        )
        exported_start = jax.export.export(jax.jit(lambda data: start_fn(*data)))(
            tuple(spec(d) for d in data)
        )
        return cls(meta, exported_density, exported_run, exported_start)

    def save(self, folder):
        """Write the program to ``folder`` as one file, renamed into place when complete.

        Metadata and the exported programs go into one file (see :func:`_pack`), written
        under a temporary name unique to this process and ``os.replace``-d over
        ``folder / ENTRY``. A reader opens either the old file or the new one, never a mix
        of parts from two writers nor a half-written file; two processes saving the same
        program at once both succeed, and the last rename leaves an equivalent entry.

        Raises
        ------
        OSError
            If ``folder`` cannot be created or written (the caller goes on without disk).
        """
        folder.mkdir(parents=True, exist_ok=True)
        blob = _pack(
            [
                json.dumps(self.meta).encode(),
                bytes(self._log_density.serialize()),
                bytes(self._run.serialize()),
                bytes(self._start.serialize()),
            ]
        )
        # os.open honours the umask (mkstemp would make the entry private to its writer,
        # and a lab's shared cache unreadable to everyone else).
        tmp = folder / f".{ENTRY}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, folder / ENTRY)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, folder):
        """Read a program written by :meth:`save`; ``None`` if there is none to use.

        An absent entry (or a folder that is missing or a file) is a silent ``None``. A
        damaged one (truncated, bits flipped, unreadable, not this format) is also
        ``None``, with one :class:`~bayescale.errors.CacheWarning`: the caller compiles
        the program anew and its save replaces the entry. The checksum is verified before
        anything is deserialised, since ``jax.export.deserialize`` is not written to
        survive arbitrary bytes.
        """
        path = folder / ENTRY
        try:
            blob = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            _warn_damaged(path, f"cannot be read: {err}")
            return None
        try:
            import jax

            meta, *programs = _unpack(blob)
            return cls(json.loads(meta), *(jax.export.deserialize(bytearray(p)) for p in programs))
        except Exception as err:  # any failure to decode means: compile it again
            _warn_damaged(path, f"is damaged ({type(err).__name__}: {err})")
            return None

    @cached_property
    def _density_call(self):
        import jax

        return jax.jit(self._log_density.call)

    @cached_property
    def _run_call(self):
        import jax

        chains = self._run.in_avals[0].shape[0]
        shardings = self._run.in_shardings_jax(_mesh(chains))
        return jax.jit(
            self._run.call, in_shardings=jax.tree.unflatten(self._run.in_tree, shardings)[0]
        )

    def log_density(self, params, data):
        """Log density of a batch of unconstrained points (leading axis) given ``data``."""
        return np.asarray(self._density_call(params, tuple(data)))

    @cached_property
    def _start_call(self):
        import jax

        return jax.jit(self._start.call)

    def start(self, data):
        """PyMC's initial point for ``data``, on the unconstrained scale, by value name."""
        import jax

        point = jax.device_get(self._start_call(tuple(data)))
        return dict(zip(self.meta["value_names"], map(np.asarray, point), strict=True))

    def run(self, keys, init, data):
        """Warmup and sampling for every chain: constrained draws and sampler statistics."""
        import jax

        return jax.device_get(self._run_call(keys, init, tuple(data)))


def _data_as_inputs(outputs, data_vars):
    """``outputs`` with each data container in their graph replaced by the input of its name.

    Matched by name, since PyMC's initial-point expression is built on a clone of the model's
    graph, data containers included. A container left in would be compiled in as a
    constant: the program would then answer for the data it was built with.
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.replace import graph_replace
    from pytensor.graph.traversal import graph_inputs

    by_name = {v.name: v for v in data_vars}
    found = {
        v: by_name[v.name]
        for v in graph_inputs(outputs)
        if isinstance(v, SharedVariable) and v.name in by_name
    }
    return graph_replace(list(outputs), found) if found else list(outputs)


def _pack(parts):
    """One blob of ``parts``: magic, SHA-256 of the body, then each part length-prefixed."""
    body = b"".join(len(part).to_bytes(8, "little") + part for part in parts)
    return _MAGIC + hashlib.sha256(body).digest() + body


def _unpack(blob):
    """The parts of a :func:`_pack` blob.

    Raises
    ------
    ValueError
        If ``blob`` is not one (another format), is cut short or fails its checksum.
    """
    start = len(_MAGIC) + hashlib.sha256().digest_size
    if len(blob) < start:
        raise ValueError(f"{len(blob)} bytes, less than a header: truncated")
    if not blob.startswith(_MAGIC):
        raise ValueError("not a bayescale program file")
    checksum, body = blob[len(_MAGIC) : start], blob[start:]
    if hashlib.sha256(body).digest() != checksum:
        raise ValueError(f"checksum mismatch ({len(blob)} bytes; truncated or altered)")
    parts, at = [], 0
    while at < len(body):
        size = int.from_bytes(body[at : at + 8], "little")
        parts.append(body[at + 8 : at + 8 + size])
        at += 8 + size
    if at != len(body) or len(parts) != _PARTS:
        raise ValueError("parts do not add up")
    return parts


def writable(folder, probe=True):
    """Whether this process may write the cache under ``folder``; warns once if not.

    With ``probe``, a folder not yet known is created and a file made and removed in it;
    without, only an earlier verdict on ``folder`` or a folder above it counts (a save
    that fails reports itself). The verdict holds for the rest of the process. The probe
    writes rather than asking ``os.access``, which answers for root that a read-only
    folder is writable, and for a network file system what the client guesses.
    """
    folder = Path(os.path.abspath(folder))
    if not _UNWRITABLE.isdisjoint((folder, *folder.parents)):
        return False
    if not probe or folder in _WRITABLE:
        return True
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=".probe.")
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        _warn_unwritable(folder, err)
        return False
    _WRITABLE.add(folder)
    return True


def _warn_unwritable(folder, err):
    folder = Path(os.path.abspath(folder))
    if _UNWRITABLE.isdisjoint((folder, *folder.parents)):
        warnings.warn(
            f"cache folder {folder} cannot be written ({type(err).__name__}: {err}); "
            "this process keeps compiled programs in memory only and every new process "
            "compiles them anew: set BAYESCALE_CACHE_DIR to a writable folder",
            CacheWarning,
            stacklevel=3,
        )
    _UNWRITABLE.add(folder)


def _warn_damaged(path, what):
    warnings.warn(
        f"cached program {path} {what}; compiling it anew and replacing it",
        CacheWarning,
        stacklevel=3,
    )


def _mesh(chains):
    """One CPU device per chain where there are enough (PyMC asks XLA for 100)."""
    import jax

    devices = jax.devices()
    n = max(d for d in range(1, min(chains, len(devices)) + 1) if chains % d == 0)
    return jax.sharding.Mesh(np.array(devices[:n]), ("chain",))


def _run_program(log_density, constrain, value_names, settings):
    """The jitted program: per-device chains of warmup + draws, constrained."""
    import jax
    from jax import lax
    from jax.sharding import PartitionSpec
    from numpyro.infer.hmc import hmc

    chains, draws, tune, target_accept = settings
    init_kernel, sample_kernel = hmc(
        potential_fn_gen=lambda data: lambda params: -log_density(params, data), algo="NUTS"
    )

    def one_chain(key, init, data):
        key = jax.random.split(key)[0]  # as numpyro's HMC.init does
        state = init_kernel(
            init,
            num_warmup=tune,
            target_accept_prob=target_accept,
            dense_mass=False,  # see the module docstring
            max_tree_depth=MAX_TREE_DEPTH,
            model_args=(data,),
            rng_key=key,
        )

        def step(state, _):
            state = sample_kernel(state, model_args=(data,))
            stats = (
                state.diverging,
                state.energy,
                state.num_steps,
                state.accept_prob,
                state.adapt_state.step_size,
            )
            return state, (state.z, stats)

        _, (z, stats) = lax.scan(step, state, None, length=tune + draws)
        z = {n: v[tune:] for n, v in z.items()}
        values = jax.vmap(lambda *z: constrain(*z, *data))(*[z[n] for n in value_names])
        return values, tuple(s[tune:] for s in stats)

    def local(keys, init, data):  # the chains on one device, one after the other
        return lax.map(lambda args: one_chain(*args, data), (keys, init))

    chain_spec = PartitionSpec("chain")
    return jax.jit(
        jax.shard_map(
            local,
            mesh=_mesh(chains),
            in_specs=(chain_spec, chain_spec, PartitionSpec()),
            out_specs=chain_spec,
            check_vma=False,
        )
    )


def sample(
    build, values, *, key, folder, source, coords, chains, draws, tune, random_seed, target_accept
):
    """Run NUTS and return a DataTree with ``posterior`` and ``sample_stats``.

    Parameters
    ----------
    build : callable
        Returns the PyMC model; called only when no compiled program is cached.
    values : dict
        Data by ``pm.Data`` container name.
    key : str
        Identifies the model graph (see :meth:`bayescale.spec.FitSpec.graph_key`).
    folder : pathlib.Path
        Folder of the on-disk program cache.
    source : str
        Digest of the code the program depends on (:func:`source_digest`).
    coords : dict
        Coordinates of the model's dimensions (group labels).
    """
    import jax

    data_names = list(values)
    data = tuple(np.asarray(values[name]) for name in data_names)
    settings = (int(chains), int(draws), int(tune), float(target_accept))
    identity = json.dumps(
        [key, settings, data_names, [[d.shape, str(d.dtype)] for d in data], len(jax.devices())]
    )
    digest = hashlib.sha256((identity + source).encode()).hexdigest()[:32]
    program = _PROGRAMS.get(digest)
    if program is None:
        program = Program.load(folder / digest)
        if program is None:
            program = Program.build(build(), data_names, data, settings)
            if writable(folder, probe=False):
                try:
                    program.save(folder / digest)
                except OSError as err:  # read-only, disk full: go on with it in memory
                    _warn_unwritable(folder, err)
        _PROGRAMS[digest] = program
    init = initial_points(program, chains, data, np.random.default_rng(random_seed))
    keys = jax.random.split(jax.random.PRNGKey(random_seed), chains)
    constrained, stats = program.run(keys, init, data)
    meta = program.meta
    chain_draw = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset(
        {
            name: (("chain", "draw", *_dims(meta, name, np.ndim(v) - 2)), np.asarray(v))
            for name, v in zip(meta["names"], constrained, strict=True)
        },
        coords={**chain_draw, **{dim: list(labels) for dim, labels in coords.items()}},
    )
    stats = {name: np.asarray(v) for name, v in zip(_STATS, stats, strict=True)}
    stats.update(tree_depth_stats(stats["n_steps"], stats["diverging"], MAX_TREE_DEPTH))
    stats = xr.Dataset(
        {name: (("chain", "draw"), v) for name, v in stats.items()},
        coords=chain_draw,
        attrs={"max_tree_depth": MAX_TREE_DEPTH},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


def tree_depth_stats(n_steps, diverging, max_tree_depth):
    """Tree depth of each draw and whether it hit ``max_tree_depth``, from its leapfrog steps.

    See the module docstring: depth is the bit length of the steps, and a draw hit the
    maximum when it took all ``2**max_tree_depth - 1`` steps without diverging (a
    divergence on the very last leaf also completes the count, but ended the trajectory).

    Returns
    -------
    dict
        ``tree_depth`` (int) and ``reached_max_treedepth`` (bool), shaped like ``n_steps``.
    """
    n_steps = np.asarray(n_steps)
    return {
        "tree_depth": np.frexp(n_steps)[1],  # n = m 2**e with 0.5 <= m < 1: e = bit length
        "reached_max_treedepth": (n_steps == 2**max_tree_depth - 1) & ~np.asarray(diverging),
    }


def initial_points(program, chains, data, rng, retries=10):
    """PyMC-style jittered starts (uniform +-1 on the unconstrained scale), checked.

    Draws are taken chain by chain, parameter by parameter. The chains that follow are
    not those numpyro's ``MCMC`` driver gave for the same seed (measured on the one-break
    recovery fits of ``tests/test_law_broken_power_law.py``: the same seeds give different
    r-hats), so a seed reproduces results within a bayescale version, not across drivers.

    Raises
    ------
    SamplingError
        If a chain finds no finite log density in ``retries`` tries.
    """
    centre = program.start(data)
    points = {n: np.empty((chains, *v.shape)) for n, v in centre.items()}
    pending = np.ones(chains, bool)
    for _ in range(retries):
        for chain in np.flatnonzero(pending):
            for n, v in centre.items():
                points[n][chain] = v + rng.uniform(-1, 1, v.shape)
        pending &= ~np.isfinite(program.log_density(points, data))
        if not pending.any():
            return points
    raise SamplingError(
        f"chain {int(np.flatnonzero(pending)[0])}: no finite log density at {retries} jittered "
        "starting points; check priors and data scale"
    )


def _dims(meta, name, ndim):
    dims = meta["dims"].get(name)
    return tuple(dims) if dims else tuple(f"{name}_dim_{i}" for i in range(ndim))
