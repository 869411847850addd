"""The on-disk program cache under concurrency, damage and unwritable folders (issue 23).

The fits run in real subprocesses, each with its own ``BAYESCALE_CACHE_DIR``: a process is
what a lab runs in parallel, and a fresh one is the only reader that has nothing in memory.
Fits are tiny (power law, 10 rows, 2 chains x 100 draws), so these run in the fast lane.
"""

import json
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import bayescale
from bayescale.engine import jax_nuts

CHILD = r"""
import hashlib, json, os, sys, time, warnings

import numpy as np
import pandas as pd

import bayescale
from bayescale.engine import jax_nuts

barrier = os.environ.get("TEST_BARRIER")  # a folder: save only once two processes have built
saved = []
save = jax_nuts.Program.save


def save_together(self, folder):
    saved.append(str(folder))
    if barrier:
        open(os.path.join(barrier, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 120
        while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    save(self, folder)


jax_nuts.Program.save = save_together
x = np.geomspace(1e7, 1e10, 10)
noise = np.exp(np.random.default_rng(0).normal(0, 0.01, 10))
df = pd.DataFrame({"x": x, "loss": 1.8 + 40 * x**-0.3 * noise})
draws = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for tune in map(int, sys.argv[1:]):
        fit = bayescale.fit(df, law="power_law", chains=2, draws=100, tune=tune, random_seed=0)
        post = fit.posterior["posterior"]
        blob = b"".join(post[v].to_numpy().tobytes() for v in sorted(post.data_vars))
        draws.append(hashlib.sha256(blob).hexdigest())
print(json.dumps({
    "draws": draws,
    "saved": saved,
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
}))
"""


def start(cache, *tunes, barrier=None, tmp=None):
    env = {**os.environ, "BAYESCALE_CACHE_DIR": str(cache)}
    if barrier:
        env["TEST_BARRIER"] = str(barrier)
    if tmp:
        env["TMPDIR"] = str(tmp)
    args = [sys.executable, "-c", CHILD, *map(str, tunes or (100,))]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def result(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def cache_warnings(res):
    return [message for category, message in res["warnings"] if category == "CacheWarning"]


def entry(cache):
    """The one program folder under ``cache/nuts``."""
    (folder,) = (cache / "nuts").iterdir()
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two processes fitting the same model at once in one fresh cache, saving together.

    Their system temporary folder is ``tmp`` under the cache (see
    ``test_compiling_leaves_no_file_in_the_system_temporary_folder``).
    """
    cache = tmp_path_factory.mktemp("cache")
    barrier = tmp_path_factory.mktemp("barrier")
    (cache / "tmp").mkdir()
    processes = [start(cache, barrier=barrier, tmp=cache / "tmp") for _ in range(2)]
    return cache, [result(p) for p in processes]


def test_two_processes_compiling_the_same_program_at_once_both_succeed(pair):
    """Both build, both save at the same moment (a barrier holds the first), same draws.

    The entry left is complete and readable, and no temporary file is left beside it.
    """
    cache, (first, second) = pair
    assert len(first["saved"]) == len(second["saved"]) == 1
    assert first["draws"] == second["draws"]
    assert cache_warnings(first) == cache_warnings(second) == []
    assert [p.name for p in entry(cache).iterdir()] == [jax_nuts.ENTRY]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jax_nuts.Program.load(entry(cache)) is not None


def test_compiling_leaves_no_file_in_the_system_temporary_folder(pair):
    """PyTensor's generated source of the compiled model goes to the cache, by contents.

    Without ``generated_src_dir`` every compiled function leaves a file of its own in the
    system's temporary folder, never removed.
    """
    cache, _ = pair
    assert list((cache / "tmp").iterdir()) == []
    sources = list((cache / "pytensor_source").iterdir())
    assert sources and all(p.suffix == ".py" for p in sources)


def truncate(blob):
    return blob[: len(blob) // 2]


def flip_a_bit(blob):
    at = len(blob) * 2 // 3  # inside the run program
    return blob[:at] + bytes([blob[at] ^ 0x10]) + blob[at + 1 :]


@pytest.mark.parametrize("damage", [truncate, flip_a_bit])
def test_a_damaged_entry_warns_once_and_is_compiled_anew_and_replaced(pair, tmp_path, damage):
    cache, (reference, _) = pair
    shutil.copytree(cache, tmp_path / "cache")
    path = entry(tmp_path / "cache") / jax_nuts.ENTRY
    path.write_bytes(damage(path.read_bytes()))
    res = result(start(tmp_path / "cache"))
    (message,) = cache_warnings(res)
    assert str(path) in message and "compiling it anew" in message
    assert res["saved"] and res["draws"] == reference["draws"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jax_nuts.Program.load(path.parent) is not None  # replaced by a good one


def test_an_unwritable_cache_folder_warns_once_and_fits_without_disk(pair, tmp_path):
    """A cache path under a regular file cannot be created, even by root.

    ``chmod`` cannot make a folder read-only for root, who runs these tests here; a path
    whose parent is a file fails for every user (the ``chmod`` case is checked in
    ``test_writable_probes_by_writing_and_warns_once`` when not root). Two fits of two
    programs: still one warning, and JAX's cache is pointed nowhere (no warning of its own).
    """
    _, (reference, _) = pair
    (tmp_path / "file").write_text("not a folder")
    cache = tmp_path / "file" / "cache"
    res = result(start(cache, 100, 50))
    (message,) = cache_warnings(res)
    assert str(cache) in message and "BAYESCALE_CACHE_DIR" in message
    assert not [m for _, m in res["warnings"] if "persistent compilation cache" in m]
    assert res["draws"][0] == reference["draws"][0]
    assert len(res["saved"]) == 0  # neither program was saved


@pytest.fixture
def fresh_verdicts(monkeypatch):
    monkeypatch.setattr(jax_nuts, "_WRITABLE", set())
    monkeypatch.setattr(jax_nuts, "_UNWRITABLE", set())


def is_a_file(tmp_path):
    (tmp_path / "cache").write_text("")
    return tmp_path / "cache"


def under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "cache"


def read_only(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a folder of mode 0o555; the other cases cover root")
    (tmp_path / "cache").mkdir(mode=0o555)
    return tmp_path / "cache"


@pytest.mark.parametrize("unwritable", [is_a_file, under_a_file, read_only])
def test_writable_probes_by_writing_and_warns_once(fresh_verdicts, tmp_path, unwritable):
    folder = unwritable(tmp_path)
    with pytest.warns(bayescale.CacheWarning, match="BAYESCALE_CACHE_DIR") as caught:
        assert not jax_nuts.writable(folder)
    assert len(caught) == 1 and str(folder) in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not jax_nuts.writable(folder)
        assert not jax_nuts.writable(folder / "nuts", probe=False)
        assert jax_nuts.writable(tmp_path / "elsewhere")
    assert list((tmp_path / "elsewhere").iterdir()) == []  # the probe file is removed


def header_cut(blob):
    return blob[:40]


def magic_changed(blob):
    return b"X" + blob[1:]


def last_byte_flipped(blob):
    return blob[:-1] + bytes([blob[-1] ^ 1])


def byte_appended(blob):
    return blob + b"\0"


def emptied(blob):
    return b""


@pytest.mark.parametrize(
    "damage",
    [truncate, flip_a_bit, header_cut, magic_changed, last_byte_flipped, byte_appended, emptied],
)
def test_load_turns_any_damage_into_one_warning_and_none(pair, tmp_path, damage):
    cache, _ = pair
    program = jax_nuts.Program.load(entry(cache))
    program.save(tmp_path / "entry")
    path = tmp_path / "entry" / jax_nuts.ENTRY
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(bayescale.CacheWarning, match="compiling it anew") as caught:
        assert jax_nuts.Program.load(tmp_path / "entry") is None
    assert len(caught) == 1


def test_load_finds_nothing_silently_where_there_is_no_entry(pair, tmp_path):
    """A missing folder, a folder without the file (an older layout) or a file in its place."""
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "meta.json").write_text("{}")
    (tmp_path / "file").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for folder in ("missing", "old", "file"):
            assert jax_nuts.Program.load(tmp_path / folder) is None


def test_generated_source_follows_the_cache_folder_but_not_over_a_user_s_own(tmp_path, monkeypatch):
    from pytensor import config

    from bayescale.engine import sample

    monkeypatch.setattr(config, "generated_src_dir", "")
    monkeypatch.setattr(sample, "_generated_source", None)
    for name in ("first", "second"):
        monkeypatch.setenv("BAYESCALE_CACHE_DIR", str(tmp_path / name))
        sample.generated_source_in_cache()
        assert config.generated_src_dir == str(tmp_path / name / "pytensor_source")
    config.generated_src_dir = str(tmp_path / "the user's")
    sample.generated_source_in_cache()
    assert config.generated_src_dir == str(tmp_path / "the user's")


def test_an_empty_cache_dir_variable_means_the_default(monkeypatch):
    """``BAYESCALE_CACHE_DIR=`` put the caches in whatever folder the user ran from."""
    from pathlib import Path

    from bayescale.engine import sample

    monkeypatch.setenv("BAYESCALE_CACHE_DIR", "")
    assert sample.cache_dir() == Path.home() / ".cache" / "bayescale"


def test_a_damaged_jax_cache_entry_is_cleared_once_not_read_by_every_process(pair, tmp_path):
    """JAX writes its entries in place and never replaces one: a torn entry (a full disk)
    was read, warned about and compiled anew by every later process, for good."""
    cache, (reference, _) = pair
    shutil.copytree(cache, tmp_path / "cache")
    entries = [p for p in (tmp_path / "cache" / "jax").iterdir() if p.name.endswith("-cache")]
    assert entries
    for path in entries:
        path.write_bytes(truncate(path.read_bytes()))
    res = result(start(tmp_path / "cache"))
    assert res["draws"] == reference["draws"]
    (message,) = cache_warnings(res)
    assert "JAX's compilation cache" in message and "emptied" in message
    assert not any("persistent compilation cache" in m for _, m in res["warnings"] if m != message)
    again = result(start(tmp_path / "cache"))  # it refilled the folder: nothing to warn of
    assert cache_warnings(again) == [] and again["draws"] == reference["draws"]
    assert not any("persistent compilation cache" in m for _, m in again["warnings"])
