import os
import threading

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

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


def test_compute_mapped_by_name_wins_over_a_column_called_d():
    # A column D that is not tokens (a model's depth) must not shadow the compute the user named.
    df = frame()
    df["FLOPs"] = 6 * df["N"] * df.pop("D")
    df["D"] = np.arange(12) + 6  # layers
    out = prepare(df, LAW, "loss", inputs={"C": "FLOPs"})
    np.testing.assert_allclose(out.frame["D"], np.geomspace(1e9, 1e12, 12)[::-1])
    # a prediction table of the same fit may give tokens instead of compute
    tokens = frame().drop(columns="loss")
    assert_frame_equal(prepare(tokens, LAW, None, inputs={"C": "FLOPs"}).frame, tokens)
    with pytest.raises(bayescale.DataError, match=r"missing column\(s\) \['FLOPs'\]"):
        prepare(frame(), LAW, "loss", inputs={"C": "FLOPs"})
    with pytest.raises(bayescale.DataError, match="maps both tokens 'D'"):
        prepare(df, LAW, "loss", inputs={"C": "FLOPs", "D": "D"})
    with pytest.raises(bayescale.DataError, match="only to laws of N and D"):
        prepare(df.assign(x=df["N"]), bayescale.get_law("power_law"), "loss", inputs={"C": "FLOPs"})


def test_missing_column_hints_match_the_call():
    # Fitting suggests inputs=; predicting (y=None) names the fit's columns; y_log_sd gets neither.
    renamed = frame().rename(columns={"N": "params"})
    with pytest.raises(bayescale.DataError, match=r"map columns with inputs="):
        prepare(renamed, LAW, "loss")
    with pytest.raises(bayescale.DataError, match=r"inputs are read from columns \['size', 'D'\]"):
        prepare(renamed, LAW, None, inputs={"N": "size"})
    with pytest.raises(bayescale.DataError) as err:
        prepare(frame(), LAW, "loss", y_log_sd="loss_sd")
    assert "inputs=" not in str(err.value)


def test_csv_path(tmp_path):
    path = tmp_path / "runs.csv"
    frame().to_csv(path, index=False)
    assert len(prepare(str(path), LAW, "loss").frame) == 12
    with pytest.raises(bayescale.DataError, match="does not exist"):
        prepare(tmp_path / "nope.csv", LAW, "loss")
    with pytest.raises(bayescale.DataError, match="DataFrame, a dict of columns or a CSV path"):
        prepare([1, 2, 3], LAW, "loss")


def test_rows_ending_in_a_delimiter_keep_their_columns(tmp_path):
    """pandas took N as the index: N read D's values, D the losses, predictions ~2150."""
    from bayescale.data import read_table

    path = tmp_path / "trailing.csv"
    path.write_text("N,D,loss\n1e9,2e10,2.5,\n2e9,4e10,2.4,\n")
    table = read_table(path)
    assert list(table.columns) == ["N", "D", "loss"] and list(table["N"]) == [1e9, 2e9]
    path.write_text("N,D,loss\n1e9,2e10,2.5,7\n")  # a value no header names: refused
    with pytest.raises(bayescale.DataError, match="more values than its header names"):
        read_table(path)
    one = read_table({"N": np.asarray(1e9), "D": np.asarray(2e10)})  # 0-d arrays: one row
    assert one["N"].tolist() == [1e9] and one["D"].dtype == float


def test_a_csv_from_a_pipe_is_read_once(tmp_path):
    # `bayescale fit /dev/stdin`, `<(...)`: a second read of a pipe finds it empty
    fifo = tmp_path / "runs.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(frame().to_csv(index=False)))
    writer.start()
    out = prepare(str(fifo), LAW, "loss")
    writer.join()
    assert_frame_equal(out.frame, frame())


def test_missing_column_lists_what_exists():
    df = frame().drop(columns="D")
    with pytest.raises(bayescale.DataError, match=r"missing column\(s\) \['D'\].*'N', 'loss'"):
        prepare(df, LAW, "loss")
    # the hint named N whatever was missing, for laws without an N too
    downstream = bayescale.get_law("downstream")
    table = pd.DataFrame({"loss": [2.0, 2.2, 2.4, 2.6], "acc": [0.6, 0.5, 0.4, 0.3]})
    with pytest.raises(bayescale.DataError, match=r"inputs=\{'L': 'your column'\}"):
        prepare(table, downstream, "acc")
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
    with pytest.raises(bayescale.DataError, match="1 row is too few"):  # not "no trend"
        prepare(frame(1), LAW, "loss", n_params=6)


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


def test_unreadable_tables_are_data_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(bayescale.DataError, match="'.*empty.csv' is not a readable CSV table"):
        prepare(empty, LAW, "loss")
    with pytest.raises(bayescale.DataError, match="is not a readable CSV table"):
        prepare(tmp_path, LAW, "loss")  # a folder
    with pytest.raises(bayescale.DataError, match="the table has no rows"):
        prepare(frame().iloc[:0], LAW, "loss")
    twice = tmp_path / "twice.csv"
    twice.write_text("N,N,loss\n1e9,2e9,2.5\n")  # pandas would read the second N as N.1
    with pytest.raises(bayescale.DataError, match=r"names column\(s\) \['N'\] twice"):
        prepare(twice, LAW, "loss")
    with pytest.raises(bayescale.DataError, match="flops_per_token must be a positive number"):
        prepare(frame().assign(C=1e20).drop(columns="D"), LAW, "loss", flops_per_token="6")
    with pytest.raises(bayescale.DataError, match="equal-length columns"):
        prepare({"N": [1e9, 2e9], "D": [1e11], "loss": [2.0, 2.1]}, LAW, "loss")
    assert len(prepare(frame().to_dict("list"), LAW, "loss").frame) == 12


def test_a_column_is_one_thing():
    with pytest.raises(bayescale.DataError, match=r"\['D'\] are mapped to more than one"):
        prepare(frame(), LAW, "loss", inputs={"N": "D"})
    with pytest.raises(bayescale.DataError, match=r"\['loss'\] are mapped to more than one"):
        prepare(frame(), LAW, "loss", inputs={"N": "loss"})
    twice = pd.concat([frame(), frame()[["N"]]], axis=1)
    with pytest.raises(bayescale.DataError, match=r"\['N'\] appear more than once"):
        prepare(twice, LAW, "loss")
    # the validated table keeps inputs under the law's names: a group, response or known-sd
    # column of such a name used to replace the input read from another column, silently
    flops = frame().assign(C=lambda df: 6 * df["N"] * df["D"], depth=12)
    depth = flops.drop(columns="D").rename(columns={"depth": "D"})
    with pytest.raises(bayescale.DataError, match="group='D' is a column named like input D"):
        prepare(depth, LAW, "loss", inputs={"C": "C"}, group="D")
    params = frame().rename(columns={"N": "params"}).assign(N=lambda df: df["loss"])
    with pytest.raises(bayescale.DataError, match="y='N' is a column named like input N"):
        prepare(params, LAW, "N", inputs={"N": "params"})
    with pytest.raises(bayescale.DataError, match="y_log_sd='D' is a column named like"):
        prepare(depth.assign(D=0.01), LAW, "loss", inputs={"C": "C"}, y_log_sd="D")
    with pytest.raises(bayescale.DataError, match="group='N' is also the response or an input"):
        prepare(frame(), LAW, "loss", group="N")


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("loss", lambda df: df["loss"] > 2.5, "'loss' \\(response\\) holds True/False values"),
        ("N", lambda df: pd.to_datetime(df["N"]), "'N' \\(input N\\) holds dates or durations"),
        ("N", lambda df: df["N"] + 0j, "'N' \\(input N\\) holds complex numbers"),
        (
            "N",
            lambda df: pd.period_range("2020-01-01", periods=len(df), freq="D"),
            "'N' \\(input N\\) holds dates or durations \\(period",
        ),
        (
            "N",
            lambda df: df["N"].astype(object).where(df.index != 2, 1e9 + 5e8j),
            r"'N' \(input N\) has non-numeric values at 1 row \(2\), e.g. \(1",
        ),
        ("loss", lambda df: 2.0, "response 'loss' is 2 in every row"),
        (
            "loss",
            lambda df: df["loss"].astype(object).where(df.index != 3, True),
            r"'loss' \(response\) has non-numeric values at 1 row \(3\), e.g. True",
        ),
    ],
)
def test_values_that_convert_to_numbers_but_are_not_data(column, values, expected):
    """``pd.to_numeric`` would turn each of these into numbers a law could be fitted to."""
    df = frame()
    with pytest.raises(bayescale.DataError, match=expected):
        prepare(df.assign(**{column: values(df)}), LAW, "loss")


def test_loss_input_must_be_positive():
    """``Lx`` of loss_to_loss is a loss, unlike other linear inputs that may be zero."""
    law = bayescale.get_law("loss_to_loss")
    df = pd.DataFrame({"Lx": np.linspace(2, 4, 12), "loss": np.linspace(1.5, 3, 12)})
    with pytest.raises(bayescale.DataError, match=r"'Lx' \(input Lx\).*1 row \(0\).*> 0"):
        prepare(df.assign(Lx=[0.0, *df["Lx"][1:]]), law, "loss")
    downstream = bayescale.get_law("downstream")
    assert "L" in downstream.linear_inputs and downstream.input_support("L") == "nonnegative"


def test_simulators_refuse_what_would_give_nan():
    from bayescale.simulate import CHINCHILLA_TRUTH, chinchilla_sweep, from_law

    with pytest.raises(bayescale.SpecError, match="budgets must be positive"):
        chinchilla_sweep(budgets=[-1e20, 1e21])
    with pytest.raises(bayescale.SpecError, match="budgets must be positive"):
        chinchilla_sweep(budgets=[])
    with pytest.raises(bayescale.SpecError, match="flops_per_token must be a positive"):
        chinchilla_sweep(flops_per_token=0)
    with pytest.raises(bayescale.SpecError, match="noise .* must be a number >= 0"):
        chinchilla_sweep(noise=-0.1)
    with pytest.raises(bayescale.SpecError, match="sizes_per_budget must be an integer >= 1"):
        chinchilla_sweep(sizes_per_budget=0)
    with pytest.raises(bayescale.SpecError, match="no finite positive loss"):
        chinchilla_sweep(params={**CHINCHILLA_TRUTH, "E": -3.0})
    with pytest.raises(
        bayescale.SpecError, match="random_seed must be an integer in \\[0, 2\\*\\*63\\), got -1"
    ):
        chinchilla_sweep(random_seed=-1)
    law, x = bayescale.get_law("power_law"), {"x": np.geomspace(1e7, 1e9, 5)}
    with pytest.raises(bayescale.SpecError, match=r"missing \['alpha'\], unknown \['a'\]"):
        from_law(law, {"E": 1.8, "a_ref": 0.6, "a": 0.3}, x)
    with pytest.raises(bayescale.SpecError, match=r"inputs lack \['x'\]"):
        from_law("power_law", {"E": 1.8, "a_ref": 0.6, "alpha": 0.3}, {"N": x["x"]})
    with pytest.raises(bayescale.DataError, match="'x' \\(input x\\) has out-of-range"):
        from_law(law, {"E": 1.8, "a_ref": 0.6, "alpha": 0.3}, {"x": [-1.0, 1e8]})
    with pytest.raises(bayescale.SpecError, match="no finite positive loss"):
        from_law(law, {"E": -1.8, "a_ref": 0.6, "alpha": 0.3}, x)


def test_group_labels_that_read_the_same_are_refused():
    df = frame().assign(corpus=[1, "1", 2] * 4)
    with pytest.raises(bayescale.DataError, match=r"read the same as text \(1, '1'\)"):
        prepare(df, LAW, "loss", group="corpus")
