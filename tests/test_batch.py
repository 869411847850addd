"""``fit_many``: the same bits as serial fits, in task order, on a real 2-worker Dask cluster.

The fits are tiny (a 3-parameter power law on 20 simulated runs, 2 chains x 100 draws), so
every one fails the ESS check: ConvergenceWarning is ignored here except where a test
checks that it comes home from a worker.
"""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import bayescale
from bayescale import batch
from bayescale.simulate import from_law

pytestmark = pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")

SAMPLER = {"chains": 2, "draws": 100, "tune": 100}
SETTINGS = {"law": "power_law", **SAMPLER}
SLOW = {"draws": 8000, "tune": 2000}
"""Settings of a task that takes many times longer than the others (with 2,000 draws and
1,000 tuning steps, a worker that started late finished its fast tasks after it)."""
TRUTH = {"E": 1.8, "a_ref": 0.6, "alpha": 0.3}


@pytest.fixture(scope="module")
def table():
    x = np.geomspace(1e7, 1e10, 20)
    df = from_law("power_law", TRUTH, {"x": x}, noise=0.01)
    return df[["x", "loss"]]


@pytest.fixture(scope="module")
def tasks(table):
    """Three tasks; the first takes longest, so on two workers another finishes first."""
    return [
        {"data": table, **SETTINGS, **SLOW, "random_seed": 0},
        {"data": table, **SETTINGS, "random_seed": 1},
        {"data": table, **SETTINGS, "random_seed": 2},
    ]


@pytest.fixture(scope="module")
def serial(tasks):
    return [bayescale.fit(**task) for task in tasks]


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster, set_as_default=False) as connected,
    ):
        yield connected


def assert_same_fits(got, expected):
    assert len(got) == len(expected)
    for one, other in zip(got, expected, strict=True):
        assert isinstance(one, bayescale.ScalingFit)
        assert one.spec.to_dict() == other.spec.to_dict()
        assert one.posterior.identical(other.posterior)  # every draw, bit for bit


def no_cluster(*args):
    raise AssertionError("one task with no client and no address must run in this process")


def test_in_process_fits_equal_serial_fits_bit_for_bit(tasks, serial, monkeypatch):
    assert_same_fits(bayescale.fit_many(tasks, client=False, progress=False), serial)
    monkeypatch.delenv(batch.ADDRESS_VARIABLE, raising=False)
    monkeypatch.setattr(batch, "_dask_client", no_cluster)
    assert_same_fits(bayescale.fit_many(tasks[1:2], progress=False), serial[1:2])
    assert bayescale.fit_many([], progress=False) == []


def test_cluster_fits_equal_serial_fits_in_task_order(client, tasks, serial, monkeypatch):
    finished, decode = [], batch._decode

    def record(outcome, path, index):
        finished.append(index)
        return decode(outcome, path, index)

    monkeypatch.setattr(batch, "_decode", record)
    # each worker first imports JAX and loads the fast tasks' compiled program, so what orders
    # the finishing is the tasks' own length, not which worker started late (a fresh clone's
    # run finished them in task order once, the slow task included)
    client.run(lambda: bayescale.fit(**tasks[1]).converged)
    fits = bayescale.fit_many(tasks, client=client, progress=False)
    assert finished != sorted(finished)  # the slow first task finished after another ...
    assert_same_fits(fits, serial)  # ... and still fills the first slot
    assert not any(client.has_what().values())  # the workers hold no copies of the fits


def test_warnings_raised_on_a_worker_come_home_naming_the_task(client, tasks):
    with pytest.warns(bayescale.ConvergenceWarning, match="fit_many task 1: power_law fit"):
        bayescale.fit_many(tasks[1:], client=client, progress=False)


def test_bad_tasks_are_refused_before_any_fit(table, tmp_path, monkeypatch):
    def no_fit(**task):
        raise AssertionError("a fit started before every task was checked")

    monkeypatch.setattr(batch, "fit_law", no_fit)
    good = {"data": table, **SETTINGS}
    cases = {
        r"task 2 has key\(s\) \['draw'\] that bayescale.fit does not take": [
            good,
            good,
            {**good, "draw": 100},
        ],
        "task 1 is a list, not a dict": [good, [good]],
        "task 0 has no 'data'": [{"law": "power_law"}],
        "task 1: unknown scaling law 'powr_law'": [good, {**good, "law": "powr_law"}],
        "wrap a single task in a list": good,
    }
    for message, bad in cases.items():
        with pytest.raises(bayescale.SpecError, match=message):
            bayescale.fit_many(bad, progress=False)
    missing = tmp_path / "missing.csv"
    with pytest.raises(bayescale.DataError, match="task 1: data file .* does not exist"):
        bayescale.fit_many([good, {**good, "data": missing}], progress=False)
    with pytest.raises(bayescale.SpecError, match="errors must be one of"):
        bayescale.fit_many([good], errors="ignore", progress=False)
    with pytest.raises(bayescale.SpecError, match="client must be a distributed.Client"):
        bayescale.fit_many([good, good], client=3, progress=False)
    with pytest.raises(bayescale.SpecError, match="cannot reach the Dask scheduler at 'nonsense'"):
        bayescale.fit_many([good, good], client="nonsense", progress=False)


def test_a_failed_task_leaves_its_error_in_its_slot_or_raises(client, table, tasks, serial):
    bad = {**tasks[1], "data": table.assign(loss=-table["loss"])}  # losses must be > 0
    fits = bayescale.fit_many(
        [tasks[1], bad, tasks[2]], client=client, errors="return", progress=False
    )
    assert (
        isinstance(fits[1], bayescale.DataError)
        and "raised by fit_many task 1" in fits[1].__notes__
    )
    assert_same_fits([fits[0], fits[2]], serial[1:])
    with pytest.raises(bayescale.DataError, match="out-of-range values") as raised:
        bayescale.fit_many([bad, tasks[1]], client=False, progress=False)
    assert "raised by fit_many task 0" in raised.value.__notes__


def test_backtest_on_a_cluster_scores_as_the_serial_backtest(client, table):
    larger = from_law("power_law", TRUTH, {"x": np.geomspace(2e10, 1e11, 5)}, random_seed=1)
    runs = pd.concat([table, larger[["x", "loss"]]], ignore_index=True)
    options = {"split": {"x": 1e10}, "baseline": False, "fit_options": SAMPLER}
    serial_bt = bayescale.backtest(runs, "power_law", **options)
    cluster_bt = bayescale.backtest(runs, "power_law", client=client, **options)
    pd.testing.assert_frame_equal(serial_bt.table, cluster_bt.table)
    pd.testing.assert_frame_equal(serial_bt.predictions, cluster_bt.predictions)


def test_sbc_on_a_cluster_ranks_as_the_serial_sbc(client):
    options = {"n_sims": 3, "n_ranks": 19, "chains": 2, "draws": 100, "tune": 150}
    options |= {"progress": False}
    serial_sbc = bayescale.sbc("power_law", {"x": np.geomspace(1e7, 1e9, 8)}, **options)
    cluster_sbc = bayescale.sbc(
        "power_law", {"x": np.geomspace(1e7, 1e9, 8)}, client=client, **options
    )
    pd.testing.assert_frame_equal(serial_sbc.ranks, cluster_sbc.ranks)
    columns = ["divergences", "max_r_hat", "min_ess_bulk", "converged"]
    pd.testing.assert_frame_equal(serial_sbc.diagnostics[columns], cluster_sbc.diagnostics[columns])
    assert cluster_sbc.diagnostics["seconds"].isna().all()
    assert "s fitting" not in cluster_sbc.report() and "s fitting" in serial_sbc.report()


def test_cli_backtest_on_a_scheduler_prints_the_serial_table(client, table, tmp_path, capsys):
    from bayescale.cli import main

    larger = from_law("power_law", TRUTH, {"x": np.geomspace(2e10, 1e11, 5)}, random_seed=1)
    pd.concat([table, larger[["x", "loss"]]]).to_csv(tmp_path / "runs.csv", index=False)
    args = ["backtest", str(tmp_path / "runs.csv"), "--law", "power_law", "--law", "exponential"]
    args += ["--split", "x=1e10", "--no-baseline", "--draws", "100", "--tune", "100"]
    args += ["--chains", "2", "--quiet"]
    main(args)
    serial = capsys.readouterr().out
    main([*args, "--scheduler", client.scheduler.address])
    assert capsys.readouterr().out == serial and "exponential" in serial


@pytest.mark.slow
def test_a_worker_killed_mid_batch_has_its_fits_rerun(client, table, tmp_path):
    """SIGKILL a worker while it holds a fit (as the OOM killer would): the fit is rerun."""
    tasks = [{"data": table, **SETTINGS, **SLOW, "random_seed": seed} for seed in range(4)]
    expected = [bayescale.fit(**task) for task in tasks]
    pids = client.run(os.getpid)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(bayescale.fit_many, tasks, client=client, progress=False)
        deadline = time.monotonic() + 120
        while not (busy := [w for w, keys in client.processing().items() if keys]):
            assert time.monotonic() < deadline and not running.done()
            time.sleep(0.05)
        victim = busy[0]
        os.kill(pids[victim], signal.SIGKILL)
        fits = running.result(timeout=600)
    assert victim not in client.scheduler_info()["workers"]
    assert_same_fits(fits, expected)


@pytest.mark.slow
def test_pymc_chains_run_on_a_worker_as_in_this_process(client, table):
    """A Dask worker is a daemon process, which may not start PyMC's chain processes:
    every ``sampler="pymc"`` task of two or more chains failed."""
    task = {"data": table, **SETTINGS, "sampler": "pymc", "random_seed": 3}
    (remote,) = bayescale.fit_many([task], client=client, progress=False)
    local = bayescale.fit(**task)
    assert (
        remote.posterior["posterior"].to_dataset().equals(local.posterior["posterior"].to_dataset())
    )
    clocks = ["perf_counter_diff", "process_time_diff", "perf_counter_start"]  # PyMC's timings
    stats = [
        fit.posterior["sample_stats"].to_dataset().drop_vars(clocks) for fit in (remote, local)
    ]
    assert stats[0].equals(stats[1])
