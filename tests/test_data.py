import numpy as np
import pandas as pd
import pytest

import bayescale
from bayescale.data import prepare

LAW = bayescale.get_law("chinchilla")


def frame(n=12):
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "N": np.geomspace(1e7, 1e10, n),
            "D": np.geomspace(1e9, 1e12, n)[::-1],
            "loss": 2.0 + rng.uniform(0, 1, n),
        }
    )


def test_columns_matched_by_name_and_index_kept():
    df = frame().set_index(pd.Index([f"run{i}" for i in range(12)]))
    out = prepare(df, LAW, "loss")
    assert list(out.frame.columns) == ["N", "D", "loss"]
    assert list(out.frame.index) == list(df.index)


def test_mapping_and_compute_to_tokens():
    df = frame().rename(columns={"N": "Model Size"})
    df["FLOPs"] = 6 * df["Model Size"] * df.pop("D")
    out = prepare(df, LAW, "loss", inputs={"N": "Model Size", "C": "FLOPs"})
    np.testing.assert_allclose(out.frame["D"], np.geomspace(1e9, 1e12, 12)[::-1])
    out8 = prepare(df, LAW, "loss", inputs={"N": "Model Size", "C": "FLOPs"}, flops_per_token=8)
    np.testing.assert_allclose(out8.frame["D"] * 8 / 6, out.frame["D"])


def test_csv_path(tmp_path):
    path = tmp_path / "runs.csv"
    frame().to_csv(path, index=False)
    assert len(prepare(str(path), LAW, "loss").frame) == 12
    with pytest.raises(bayescale.DataError, match="does not exist"):
        prepare(tmp_path / "nope.csv", LAW, "loss")
    with pytest.raises(TypeError, match="DataFrame or a CSV path"):
        prepare([1, 2, 3], LAW, "loss")


def test_missing_column_lists_what_exists():
    df = frame().drop(columns="D")
    with pytest.raises(bayescale.DataError, match=r"missing column\(s\) \['D'\].*'N', 'loss'"):
        prepare(df, LAW, "loss")
    with pytest.raises(bayescale.DataError, match=r"missing column\(s\) \['val_loss'\]"):
        prepare(frame(), LAW, "val_loss")


def test_unknown_mapping_key():
    with pytest.raises(bayescale.DataError, match="does not take"):
        prepare(frame(), LAW, "loss", inputs={"x": "N"})


def test_non_numeric_values_named_with_rows():
    df = frame().astype({"loss": object})
    df.loc[[3, 7], "loss"] = "diverged"
    with pytest.raises(
        bayescale.DataError, match=r"'loss'.*non-numeric.*2 rows \(3, 7\).*'diverged'"
    ):
        prepare(df, LAW, "loss")


def test_nan_and_inf_named_with_rows():
    df = frame()
    df.loc[2, "N"] = np.nan
    df.loc[5, "N"] = np.inf
    with pytest.raises(bayescale.DataError, match=r"'N'.*NaN or infinite.*2 rows \(2, 5\)"):
        prepare(df, LAW, "loss")


def test_non_positive_values_named_with_rows():
    df = frame()
    df.loc[[4, 9], "loss"] = [0.0, -1.0]
    with pytest.raises(bayescale.DataError, match=r"'loss'.*out-of-range.*2 rows \(4, 9\).*> 0"):
        prepare(df, LAW, "loss")


def test_many_bad_rows_are_summarised():
    df = frame(30)
    df["loss"] = -1.0
    with pytest.raises(
        bayescale.DataError, match=r"30 rows \(0, 1, 2, 3, 4, 5, 6, 7 and 22 more\)"
    ):
        prepare(df, LAW, "loss")


def test_too_few_rows():
    with pytest.raises(
        bayescale.DataError, match="5 rows is too few.*6 free parameters.*at least 8"
    ):
        prepare(frame(5), LAW, "loss", n_params=6)


def test_constant_input():
    df = frame()
    df["D"] = 1e11
    with pytest.raises(bayescale.DataError, match=r"input D .*constant"):
        prepare(df, LAW, "loss")


def test_prediction_mode_allows_one_row():
    out = prepare(pd.DataFrame({"N": [1e12], "D": [1e13]}), LAW, y=None)
    assert out.frame.shape == (1, 2)


def test_fit_rejects_bad_input_before_sampling():
    df = frame()
    df.loc[0, "loss"] = np.nan
    with pytest.raises(bayescale.DataError, match="NaN"):
        bayescale.fit(df, law="chinchilla", y="loss")


def test_known_sd_column_validated():
    df = frame().assign(sd=0.1)
    df.loc[0, "sd"] = 0.0  # an exact measurement is allowed
    out = prepare(df, LAW, "loss", y_log_sd="sd")
    assert out.y_log_sd == "sd" and out.known_sd()[0] == 0.0
    assert prepare(frame(), LAW, "loss").known_sd() is None
    df.loc[[3, 7], "sd"] = -0.2
    with pytest.raises(bayescale.DataError, match=r"'sd'.*out-of-range.*2 rows \(3, 7\).*>= 0"):
        prepare(df, LAW, "loss", y_log_sd="sd")
    with pytest.raises(bayescale.DataError, match=r"missing column\(s\) \['err'\]"):
        prepare(frame(), LAW, "loss", y_log_sd="err")
    with pytest.raises(bayescale.DataError, match="also the response"):
        prepare(frame(), LAW, "loss", y_log_sd="loss")
