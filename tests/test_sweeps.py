"""The real-sweep loaders in bayescale.sweeps: shapes, dtypes, counts, groups and sources.

Reads the real data from the resolved data folder ($BAYESCALE_DATA or ../shared/data) and
skips, naming the folder, when it is absent. No sampling.
"""

import functools
import shutil

import numpy as np
import pandas as pd
import pytest

from bayescale import DataError, sweeps

ROOT = sweeps.data_root()

# rows, {group label: rows} (None: ungrouped). The counts are what the files hold; where they
# differ from the data README's totals the comment says why.
EXPECTED = {
    # README: 245 rows; nothing is dropped (besiroglu_dropped flags Besiroglu's 5).
    "epoch_chinchilla": (245, None),
    # README: 1,745 isoFLOP points = 1,164 RefinedWeb + 581 OpenWebText2; 10 + 5 configurations
    # (the README's "15 configurations x 12 budgets" is nominal: some have 11 budgets, and
    # the number of model sizes per budget varies).
    "porian_rw": (
        1164,
        {
            "base/long/kaplan/attention/train": 126,
            "base/long/kaplan/kaplan/train": 107,
            "base/long/kaplan/standard/val": 131,
            "base/short/chinchilla/attention/train": 106,
            "base/short/chinchilla/standard/val": 88,
            "base/short/kaplan/attention/train": 126,
            "base/short/kaplan/standard/val": 132,
            "tuned/long/const/kaplan/train": 104,
            "tuned/short/const/attention/train": 123,
            "tuned/short/const/standard/val": 121,
        },
    ),
    "porian_owt2": (
        581,
        {
            "base/long/kaplan/kaplan/train": 113,
            "base/long/kaplan/standard/val": 132,
            "base/short/chinchilla/standard/val": 88,
            "base/short/kaplan/standard/val": 132,
            "tuned/short/const/standard/val": 116,
        },
    ),
    # README: 261 rows (final checkpoints); grouped by peak LR.
    "misfitting": (261, {"0.0004": 12, "0.001": 65, "0.002": 84, "0.004": 76, "0.008": 24}),
    # README: 220 and 770 rows = 22 models x 10 and x 35 checkpoints.
    "gemstones": (220, {"deep": 50, "balanced": 100, "wide": 70}),
    "gemstones_350b": (770, {"deep": 175, "balanced": 350, "wide": 245}),
    # README: 123, 124, 266 (= 133 points x 2 conditions, one row per point here), 176 rows.
    "open_athena_epochai_chinchilla": (
        123,
        {
            "6e+18": 9,
            "1e+19": 24,
            "3e+19": 16,
            "6e+19": 12,
            "1e+20": 13,
            "3e+20": 14,
            "6e+20": 13,
            "1e+21": 14,
            "3e+21": 8,
        },
    ),
    "open_athena_ml_scalefit": (
        124,
        {
            "6e+18": 9,
            "1e+19": 19,
            "3e+19": 17,
            "6e+19": 12,
            "1e+20": 13,
            "3e+20": 15,
            "6e+20": 14,
            "1e+21": 16,
            "3e+21": 9,
        },
    ),
    "open_athena_llama_3": (
        133,
        {
            "6e+18": 16,
            "1e+19": 17,
            "3e+19": 16,
            "6e+19": 16,
            "1e+20": 18,
            "3e+20": 14,
            "6e+20": 12,
            "1e+21": 12,
            "3e+21": 6,
            "1e+22": 6,
        },
    ),
    "open_athena_misfitting": (176, None),  # 26 budget groups, checked below
    # README: 203 and 317 rows; 9 unfinished (val_loss == 0) and 12 unparsed dedup runs are
    # dropped from each, as the authors' notebook does.
    "datablations": (182, None),
    "datablations_all": (296, None),
    # 15 runs (8 deduped sizes, 7 Pile sizes: no Pile 1B LAMBADA) x 15 checkpoints after the
    # warmup (27 zero-shot checkpoints per run in the file; steps 0-1000 are dropped).
    "pythia_lambada": (225, {"deduped": 120, "pile": 105}),
    # README: vision 18,883; lang 1,399 = 53 NMT + 916 LM (229 distinct x 4) + 430 BB.
    "revisiting_nsl_ic": (18883, None),  # 72 curves, checked below
    "revisiting_nsl_nmt": (
        53,
        {
            "log_perplexity | 28 Enc, 6 Dec": 10,
            "log_perplexity | 6 Enc, 28 Dec": 11,
            "log_perplexity | 6 Enc, 6 Dec": 11,
            "log_perplexity | Dec-only": 11,
            "log_perplexity | TEnc-LSTM": 10,
        },
    ),
    "revisiting_nsl_lm": (
        229,
        {
            "val_loss | 1.07e+09": 21,
            "val_loss | 1.34e+08": 24,
            "val_loss | 1.68e+07": 119,
            "val_loss | 2.62e+08": 44,
            "val_loss | 4.53e+08": 21,
        },
    ),
    "revisiting_nsl_bb": (430, None),  # 10 curves of 43, checked below
    "bnsl_4_digit_addition": (17, {"4_digit_addition": 17}),
}

NAMES = sorted(sweeps.SWEEPS)


@pytest.fixture(scope="module")
def root():
    if not ROOT.is_dir():
        pytest.skip(f"real data not available: {ROOT} is missing (set {sweeps.ENV_VAR})")
    return ROOT


@functools.cache
def _load(name):
    return sweeps.load(name, ROOT)


@pytest.fixture
def load(root):
    return _load


def test_every_sweep_has_expectations():
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_sweep_loads_tidy_and_valid(name, load):
    sweep = sweeps.SWEEPS[name]
    df = load(name)
    rows, groups = EXPECTED[name]
    assert len(df) == rows
    assert f"{rows:,}" in sweep.description  # the one-line description states the row count
    assert isinstance(df.index, pd.RangeIndex)
    assert not df.isna().any().any()
    numeric = ["N", "D", "C", "loss"] if sweep.law_inputs == "N,D" else ["x", "loss"]
    assert sweep.inputs == (("N", "D") if sweep.law_inputs == "N,D" else ("x",))
    for col in numeric:
        assert df[col].dtype == np.float64, col
        assert np.isfinite(df[col]).all() and (df[col] > 0).all(), col
    if sweep.law_inputs == "x":
        assert sweep.group == "group" and sweep.flops == ""
        assert df["held_out"].dtype == bool
        assert 0 < df["held_out"].sum() < len(df)
    else:
        assert sweep.flops
    if sweep.group is None:
        assert "group" not in df.columns
    else:
        assert sweep.group == "group"
        assert pd.api.types.is_string_dtype(df["group"])
        if groups is not None:
            assert df["group"].value_counts().to_dict() == groups
    if sweep.budget_groups:  # each group is one isoFLOP budget, labelled by it
        budgets = df.groupby("group")["C"].agg(["min", "max"])
        assert (budgets["min"] == budgets["max"]).all()
        np.testing.assert_allclose(budgets.index.astype(float), budgets["min"], rtol=1e-2)


def test_nd_sweeps_tokens_and_flops_conventions(load):
    for name in ("porian_rw", "porian_owt2", "open_athena_epochai_chinchilla"):
        df = load(name)
        np.testing.assert_allclose(df["C"], 6 * df["N"] * df["D"], rtol=1e-9)
    chin = load("epoch_chinchilla")
    np.testing.assert_allclose(chin["D"], chin["C"] / (6 * chin["N"]), rtol=1e-12)
    scalefit = load("open_athena_ml_scalefit")  # original N and D, budget snapped within 10%
    ratio = 6 * scalefit["N"] * scalefit["D"] / scalefit["C"]
    assert ratio.between(0.9, 1.1).all() and not np.allclose(ratio, 1)
    mis = load("misfitting")
    np.testing.assert_allclose(mis["C"], 6 * mis["N"] * mis["D"], rtol=1e-9)


def test_chinchilla_flags_besiroglus_five(load):
    df = load("epoch_chinchilla")
    assert df["besiroglu_dropped"].sum() == 5
    kept = df.loc[~df["besiroglu_dropped"], "loss"]
    assert len(kept) == 240
    assert kept.max() < df.loc[df["besiroglu_dropped"], "loss"].min()


def test_porian_datasets_partition_the_isoflop_file(load, root):
    raw = pd.read_csv(root / sweeps.SWEEPS["porian_rw"].file)
    assert len(raw) == 1745 == len(load("porian_rw")) + len(load("porian_owt2"))
    rw = load("porian_rw")
    # train losses in the kaplan- and attention-count configurations, val in standard
    split = rw.groupby("param_count")["loss_split"].unique().map(tuple).to_dict()
    assert split == {"attention": ("train",), "kaplan": ("train",), "standard": ("val",)}
    assert rw.groupby("group")["C"].nunique().between(11, 12).all()


def test_misfitting_flags_the_relabelled_block(load, root):
    df = load("misfitting")
    flagged = df[df["repeated_loss"]]
    assert len(flagged) == 42
    assert flagged.drop_duplicates(["N", "D", "loss"]).shape[0] == 21  # each loss twice
    assert set(flagged["model"]) == {"misfitting_17m"}
    assert set(flagged["sweep"]) == {"2024_11_10-23_08_29_sweep_test"}
    assert df["model"].nunique() == 11
    raw = pd.read_csv(root / sweeps.SWEEPS["misfitting"].file)
    assert raw.duplicated().sum() == 1  # one exact duplicate row in the file, kept as published


def test_gemstones_families(load):
    df = load("gemstones")
    runs = df.groupby("run")[["group", "width", "depth", "N"]].first()
    assert len(runs) == 22 and (df.groupby("run").size() == 10).all()
    aspect = runs["width"] / runs["depth"]
    assert (aspect[runs["group"] == "deep"] < 16).all()
    assert aspect[runs["group"] == "balanced"].between(16, 64).all()
    assert (aspect[runs["group"] == "wide"] >= 64).all()
    assert runs["group"].value_counts().to_dict() == {"balanced": 10, "wide": 7, "deep": 5}
    big = load("gemstones_350b")  # a superset: the 100B file's checkpoints are in it
    merged = df.merge(big, on=["run", "step"], suffixes=("", "_350b"))
    assert len(merged) == len(df)
    np.testing.assert_array_equal(merged["loss"], merged["loss_350b"])


def test_open_athena_budgets_and_llama_losses(load):
    mis = load("open_athena_misfitting")
    assert mis["group"].nunique() == mis["C"].nunique() == 26
    llama = load("open_athena_llama_3")
    assert llama["loss"].between(0.69, 0.94).all()  # the figure's axis: 0.70 to 0.95
    np.testing.assert_allclose(llama["exp_loss"], np.exp(llama["loss"]), rtol=1e-9)


def test_datablations_drops_only_unfinished_and_unparsed_runs(load, root):
    for name, total in (("datablations", 203), ("datablations_all", 317)):
        raw = pd.read_csv(root / sweeps.SWEEPS[name].file)
        assert len(raw) == total
        unfinished = (raw["val_loss"] == 0).sum()
        unparsed = raw["note"].fillna("").str.startswith("dedup").sum()
        assert (unfinished, unparsed) == (9, 12)
        df = load(name)
        assert len(df) == total - unfinished - unparsed
        assert (df["U"] <= df["D"]).all()
        np.testing.assert_allclose(df["epochs"], df["D"] / df["U"])
    assert set(load("datablations")["name"]) <= set(load("datablations_all")["name"])
    assert load("datablations_all")["seed"].value_counts().to_dict() == {
        0: 232,
        1: 16,
        2: 16,
        3: 16,
        4: 16,
    }


def test_pythia_checkpoints_after_warmup(load):
    df = load("pythia_lambada")
    assert df["step"].min() == 3000 and df["step"].max() == 143_000
    assert df.groupby(["group", "size_label"]).size().eq(15).all()
    assert df.loc[df["group"] == "pile", "size_label"].nunique() == 7  # no Pile 1B LAMBADA
    np.testing.assert_allclose(df["loss"], np.log(df["ppl"]))
    np.testing.assert_array_equal(df["D"], df["step"] * 2_097_152.0)
    assert sorted(df["N"].unique()) == [
        70e6,
        160e6,
        410e6,
        1e9,
        1.4e9,
        2.8e9,
        6.9e9,
        12e9,
    ]


@pytest.mark.parametrize(
    ("name", "curves", "held_out"),
    [
        ("revisiting_nsl_ic", 72, 14_981),
        ("revisiting_nsl_nmt", 5, 5),
        ("revisiting_nsl_lm", 5, 97),
        ("revisiting_nsl_bb", 10, 240),
        ("bnsl_4_digit_addition", 1, 3),
    ],
)
def test_learning_curves_split(name, curves, held_out, load):
    df = load(name)
    assert df["group"].nunique() == curves
    assert df["held_out"].sum() == held_out
    assert not df.duplicated(["group", "x"]).any()
    # the held-out points lie beyond every fitted point of their curve
    for _, curve in df.groupby("group"):
        if curve["held_out"].any():
            assert (
                curve.loc[~curve["held_out"], "x"].max() < curve.loc[curve["held_out"], "x"].min()
            )


def test_revisiting_lm_block_is_deduplicated(load, root):
    raw = pd.read_csv(root / sweeps.SWEEPS["revisiting_nsl_lm"].file)
    lm = raw[raw["Domain"] == "LM"]
    assert len(lm) == 916 == 4 * len(load("revisiting_nsl_lm"))
    assert len(raw) == 1399 and raw.duplicated().sum() == 687


def test_bnsl_holds_out_the_rows_after_the_first_14(load):
    df = load("bnsl_4_digit_addition")
    assert df["held_out"].tolist() == [False] * 14 + [True] * 3


def test_copies_share_a_source():
    src = {name: sweep.source for name, sweep in sweeps.SWEEPS.items()}
    assert (
        src["epoch_chinchilla"]
        == src["open_athena_epochai_chinchilla"]
        == src["open_athena_ml_scalefit"]
    )
    assert src["misfitting"] == src["open_athena_misfitting"]
    assert src["gemstones"] == src["gemstones_350b"]
    assert src["datablations"] == src["datablations_all"]
    assert src["open_athena_llama_3"] not in {src["epoch_chinchilla"], src["misfitting"]}
    assert src["porian_rw"] != src["porian_owt2"]  # different training sets: different runs
    assert len(set(src.values())) == 13


def test_missing_root_raises_with_the_path(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match=str(missing)) as info:
        sweeps.load("epoch_chinchilla", missing)
    assert sweeps.ENV_VAR in str(info.value)
    assert sweeps.available(missing) == []


def test_missing_file_raises_with_the_path(tmp_path):
    sweep = sweeps.SWEEPS["bnsl_4_digit_addition"]
    with pytest.raises(FileNotFoundError, match=str(tmp_path / sweep.file)):
        sweep.load(tmp_path)
    assert not sweep.available(tmp_path)


def test_unknown_name_raises():
    with pytest.raises(KeyError, match="unknown sweep"):
        sweeps.load("no_such_sweep")


def test_environment_variable_names_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv(sweeps.ENV_VAR, str(tmp_path))
    assert sweeps.data_root() == tmp_path
    assert sweeps.available() == []
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        sweeps.load("gemstones")
    monkeypatch.delenv(sweeps.ENV_VAR)
    assert sweeps.data_root() == sweeps.DEFAULT_ROOT
    assert sweeps.DEFAULT_ROOT.parts[-2:] == ("shared", "data")


def test_damaged_file_fails_validation(tmp_path, root):
    sweep = sweeps.SWEEPS["bnsl_4_digit_addition"]
    target = tmp_path / sweep.file
    target.parent.mkdir(parents=True)
    shutil.copy(root / sweep.file, target)
    assert sweep.available(tmp_path) and len(sweep.load(tmp_path)) == 17
    raw = pd.read_csv(target)
    raw.loc[3, "test_cross_entropy"] = -1.0
    raw.to_csv(target, index=False)
    with pytest.raises(DataError, match=r"'loss'.*\[3\]"):
        sweep.load(tmp_path)
    raw.loc[3, "test_cross_entropy"] = np.nan
    raw.to_csv(target, index=False)
    with pytest.raises(DataError, match="missing values"):
        sweep.load(tmp_path)
