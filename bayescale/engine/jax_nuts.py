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
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import xarray as xr

from bayescale.errors import SamplingError
from bayescale.versions import versions

_STATS = ("diverging", "energy", "n_steps", "acceptance_rate", "step_size")
MAX_TREE_DEPTH = 10
"""numpyro's default ``max_tree_depth`` (of ``hmc``'s ``init_kernel``), passed explicitly so
that the program and the saturation test of :func:`tree_depth_stats` agree by construction."""
_VERSIONED = ("jax", "jaxlib", "numpyro", "pymc", "pytensor")
_PROGRAMS: dict = {}


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
        ``value_names`` (unconstrained parameters, in order), ``init`` (PyMC's initial point
        on the unconstrained scale), ``names`` and ``dims`` of the constrained outputs.
    """

    def __init__(self, meta, log_density, run):
        self.meta = meta
        self._log_density = log_density
        self._run = run

    @classmethod
    def build(cls, model, data_names, data, settings):
        """Jaxify ``model``, export its programs and return them with their metadata."""
        import jax
        import pymc.sampling.jax as pmjax
        from pymc.initial_point import make_initial_point_expression
        from pymc.util import get_default_varnames
        from pytensor.graph.replace import graph_replace

        shared = [model[name] for name in data_names]
        data_vars = [v.type.clone(shape=(None,) * v.ndim)(name=v.name) for v in shared]
        logp = graph_replace(model.logp(), dict(zip(shared, data_vars, strict=True)))
        logp_fn = pmjax.get_jaxified_graph(inputs=[*model.value_vars, *data_vars], outputs=[logp])
        outputs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
        constrain = pmjax.get_jaxified_graph(inputs=model.value_vars, outputs=outputs)
        value_names = [v.name for v in model.value_vars]
        # PyMC's initial point, evaluated by JAX: model.initial_point() would compile
        # PyTensor's C linker in a fresh cache (~1 s) for a handful of constants.
        start = make_initial_point_expression(
            free_rvs=model.free_RVs,
            rvs_to_transforms=model.rvs_to_transforms,
            initval_strategies=model.rvs_to_initial_values,
            return_transformed=True,
        )
        point = pmjax.get_jaxified_graph(inputs=[], outputs=start)()
        meta = {
            "value_names": value_names,
            "init": {
                n: np.asarray(v, float).tolist() for n, v in zip(value_names, point, strict=True)
            },
            "names": [v.name for v in outputs],
            "dims": {v.name: list(model.named_vars_to_dims.get(v.name, ())) for v in outputs},
        }

        def log_density(params, data):
            return logp_fn(*[params[n] for n in value_names], *data)[0]

        chains = settings[0]
        init = {n: np.zeros((chains, *np.shape(v))) for n, v in meta["init"].items()}
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
        return cls(meta, exported_density, exported_run)

    def save(self, folder):
        """Write the program to ``folder`` (atomically: readers never see a partial file)."""
        folder.mkdir(parents=True, exist_ok=True)
        parts = {
            "meta.json": json.dumps(self.meta).encode(),
            "log_density.bin": bytes(self._log_density.serialize()),
            "run.bin": bytes(self._run.serialize()),
        }
        for name, blob in parts.items():
            tmp = folder / f"{name}.{os.getpid()}.tmp"
            tmp.write_bytes(blob)
            os.replace(tmp, folder / name)

    @classmethod
    def load(cls, folder):
        """Read a program written by :meth:`save`; ``None`` if ``folder`` holds none."""
        import jax

        try:
            meta = json.loads((folder / "meta.json").read_text())
            blobs = [(folder / f"{n}.bin").read_bytes() for n in ("log_density", "run")]
        except FileNotFoundError:
            return None
        return cls(meta, *[jax.export.deserialize(bytearray(b)) for b in blobs])

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

    def run(self, keys, init, data):
        """Warmup and sampling for every chain: constrained draws and sampler statistics."""
        import jax

        return jax.device_get(self._run_call(keys, init, tuple(data)))


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
        values = jax.vmap(constrain)(*[z[n] for n in value_names])
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
            program.save(folder / digest)
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
    centre = {n: np.asarray(v) for n, v in program.meta["init"].items()}
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
