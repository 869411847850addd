"""From a user's table to validated, named arrays; every failure names column and rows.

Columns are matched to a law's inputs by name (``N``, ``D``, ``x``...). ``inputs=`` renames
(``{"N": "Model Size"}``). For laws in ``N`` and ``D``, a compute column ``C`` together with
``N`` gives ``D = C / (k N)``, with ``k`` FLOPs per parameter per token (6 by default, the
usual forward+backward estimate).
"""

import io
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.arguments import is_number
from bayescale.errors import DataError

_MAX_ROWS_LISTED = 8


@dataclass(frozen=True)
class FitData:
    """Validated inputs and response of one fit.

    Attributes
    ----------
    frame : pandas.DataFrame
        One column per law input, plus the response; index = the user's row labels.
    inputs : tuple of str
        The law's input names (columns of ``frame``).
    y : str
        Name of the response column.
    group : str or None
        Name of the group column (labels as strings in ``frame``), if any.
    y_log_sd : str or None
        Name of the column of known standard deviations of ``log y``, if any.
    """

    frame: pd.DataFrame
    inputs: tuple[str, ...]
    y: str
    group: str | None = None
    y_log_sd: str | None = None

    def codes(self, labels):
        """Integer code of each row's group in ``labels`` (-1 for a label not in it)."""
        index = {label: i for i, label in enumerate(labels)}
        return np.array([index.get(v, -1) for v in self.frame[self.group]], dtype=np.int64)

    def y_values(self):
        """The response as float64."""
        return self.frame[self.y].to_numpy(float)

    def known_sd(self):
        """Known standard deviations of ``log y`` (measurement error), or ``None``."""
        return self.frame[self.y_log_sd].to_numpy(float) if self.y_log_sd else None


def row_labels(index, mask):
    """The rows ``mask`` selects, counted and named for an error message (the first few)."""
    bad = list(index[np.asarray(mask)])
    shown = ", ".join(map(str, bad[:_MAX_ROWS_LISTED]))
    more = f" and {len(bad) - _MAX_ROWS_LISTED} more" if len(bad) > _MAX_ROWS_LISTED else ""
    return f"{len(bad)} {'row' if len(bad) == 1 else 'rows'} ({shown}{more})"


SUPPORTS = {
    "positive": (lambda v: v > 0, "values must be > 0 because the law is fitted on logs"),
    "nonnegative": (lambda v: v >= 0, "values must be >= 0"),
    "unit": (lambda v: (v >= 0) & (v <= 1), "values must be fractions in [0, 1]"),
    "open_unit": (
        lambda v: (v > 0) & (v < 1),
        "values must be strictly between 0 and 1 (a Beta likelihood; use a Binomial one "
        "with the item count when accuracies of exactly 0 or 1 occur)",
    ),
}
"""Allowed ranges of a column: a test and what to tell the user when it fails."""


def _non_number_kind(raw):
    """What a column holds if its dtype converts to numbers that would not mean numbers.

    ``pd.to_numeric`` turns True/False into 1/0 and dates into nanoseconds since 1970, so a
    boolean flag or a date mapped to an input would be fitted without complaint.
    """
    if pd.api.types.is_bool_dtype(raw):
        return "True/False values"
    if (
        pd.api.types.is_datetime64_any_dtype(raw)
        or pd.api.types.is_timedelta64_dtype(raw)
        or isinstance(raw.dtype, pd.PeriodDtype)  # read as the period's ordinal
    ):
        return f"dates or durations ({raw.dtype})"
    if pd.api.types.is_complex_dtype(raw):
        return "complex numbers"
    return None


def numeric_column(df, column, role, support="positive"):
    """Column as float64, with one clear error for non-numeric, NaN/inf and out-of-range values.

    ``support`` names an entry of :data:`SUPPORTS`.
    """
    raw = df[column]
    if isinstance(raw, pd.DataFrame):
        raise DataError(
            f"column {column!r} ({role}) appears {raw.shape[1]} times in the table: rename them"
        )
    kind = _non_number_kind(raw)
    if kind:
        raise DataError(f"column {column!r} ({role}) holds {kind}: expected numbers")
    values = pd.to_numeric(raw, errors="coerce")
    non_numeric = values.isna() & raw.notna()
    if raw.dtype == object:  # a True among numbers would be read as 1.0, 3+5j as 3.0
        odd = (bool, np.bool_, complex, np.complexfloating)
        non_numeric |= raw.map(lambda v: isinstance(v, odd)).to_numpy(bool)
    if non_numeric.any():
        examples = ", ".join(list(dict.fromkeys(map(repr, raw[non_numeric])))[:3])  # lists too
        raise DataError(
            f"column {column!r} ({role}) has non-numeric values at "
            f"{row_labels(df.index, non_numeric)},"
            f" e.g. {examples}: expected numbers"
        )
    values = values.to_numpy(float)
    missing = ~np.isfinite(values)
    if missing.any():
        raise DataError(
            f"column {column!r} ({role}) has NaN or infinite values at "
            f"{row_labels(df.index, missing)}: drop or fill those rows first"
        )
    test, expected = SUPPORTS[support]
    bad = ~test(values)
    if bad.any():
        raise DataError(
            f"column {column!r} ({role}) has out-of-range values at {row_labels(df.index, bad)}, "
            f"e.g. {values[bad][0]:g}: {expected}"
        )
    return values


def read_table(data):
    """Accept a DataFrame, a dict of equal-length columns or of single values, or a CSV path.

    Anything else, a file pandas cannot parse, or a dict it cannot make a table of, is a
    :class:`DataError` with the reason.
    """
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        if data and all(np.ndim(v) == 0 for v in data.values()):
            # {"N": 7e10, "D": 1.4e12}: one row (a 0-d array too, which a list left unsized)
            data = {k: np.asarray(v).reshape(1) for k, v in data.items()}
        try:
            return pd.DataFrame(data)
        except ValueError as err:
            raise DataError(f"data given as a dict must hold equal-length columns: {err}") from err
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise DataError(f"data file {str(path)!r} does not exist")
        try:
            raw = path.read_bytes()  # once: a pipe (/dev/stdin, <(...)) cannot be read twice
            header = pd.read_csv(io.BytesIO(raw), header=None, nrows=1).iloc[0]
            # index_col=False: rows ending in a delimiter ("1e9,2e10,2.5,") made pandas take
            # the first column as the index, shifting every value into its neighbour's column;
            # a row with more values than the header then warns, and is refused here
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                table = pd.read_csv(io.BytesIO(raw), index_col=False)
        except pd.errors.ParserWarning as err:
            raise DataError(
                f"data file {str(path)!r} has rows with more values than its header names: {err}"
            ) from err
        except (OSError, ValueError, UnicodeDecodeError) as err:
            raise DataError(f"data file {str(path)!r} is not a readable CSV table: {err}") from err
        if repeated := sorted(set(header[header.duplicated()].astype(str))):
            # pandas would rename the second 'N' to 'N.1' and the fit would ignore it
            raise DataError(f"data file {str(path)!r} names column(s) {repeated} twice")
        return table
    raise DataError(
        f"data must be a pandas DataFrame, a dict of columns or a CSV path, "
        f"not {type(data).__name__}"
    )


def group_labels(df, group, fitting=False):
    """The labels of ``df``'s group column as text, every row's; else a :class:`DataError`.

    The one reading of a group column, for fits, rows to predict and the baseline's
    per-group fits alike: a missing column or label, labels that are not text or numbers,
    and distinct labels that read the same as text (``1`` and ``"1"``) are refused;
    ``fitting`` also refuses a single label.
    """
    if group not in df.columns:
        raise DataError(f"group column {group!r} is missing; the table has {list(df.columns)}")
    raw = df[group]
    missing = raw.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"group column {group!r} has missing labels at {row_labels(df.index, missing)}: "
            "every row needs a group"
        )
    try:
        distinct = pd.Series(raw.unique())
    except TypeError:  # lists or arrays as labels
        kinds = sorted({type(v).__name__ for v in raw if not isinstance(v, Hashable)})
        raise DataError(
            f"group column {group!r} holds {', '.join(kinds)} values: labels must be text or "
            "numbers"
        ) from None
    labels = raw.astype(str)
    if (same_text := distinct.astype(str).duplicated(keep=False)).any():
        clash = distinct[same_text][:2]  # labels are kept as strings, e.g. in saved fits
        raise DataError(
            f"group column {group!r} has distinct labels that read the same as text "
            f"({', '.join(map(repr, clash))}): make the labels one type"
        )
    if fitting and labels.nunique() < 2:
        raise DataError(
            f"group column {group!r} has a single label ({labels.iloc[0]!r}): groups need at "
            "least two labels; drop group= to fit one curve"
        )
    return labels


def prepare(
    data,
    law,
    y,
    inputs=None,
    flops_per_token=6.0,
    n_params=0,
    group=None,
    y_log_sd=None,
    y_support="positive",
):
    """Validate ``data`` for ``law`` and return a :class:`FitData`.

    Parameters
    ----------
    data : DataFrame or path
    law : ScalingLaw
    y : str or None
        Response column (losses, error rates...). ``None`` validates inputs only, for
        prediction: then constant inputs and any number of rows are fine.
    inputs : dict, optional
        Law input -> column name, for columns not named as the law's inputs.
    flops_per_token : float
        ``k`` in ``D = C / (k N)`` when ``D`` is derived from compute.
    n_params : int
        Number of free parameters; at least ``n_params + 2`` rows are required.
    group : str, optional
        Column of group labels (kept as strings).
    y_log_sd : str, optional
        Column of known standard deviations of ``log y`` (>= 0), e.g. bootstrap errors of
        an estimated quantity. Ignored for prediction (``y=None``).
    y_support : str
        Allowed range of the response (a key of :data:`SUPPORTS`), set by the likelihood.

    Raises
    ------
    DataError
        Naming the column and rows, for every problem listed in the module docstring.
    """
    df = read_table(data)
    if df.empty:
        raise DataError(f"the table has no rows (columns: {list(df.columns)})")
    if inputs is not None and not isinstance(inputs, dict):
        raise DataError(
            f"inputs= must map law inputs to columns, e.g. {{'N': 'params'}}; got {inputs!r}"
        )
    if not is_number(flops_per_token) or not 0 < flops_per_token < np.inf:
        raise DataError(f"flops_per_token must be a positive number, got {flops_per_token!r}")
    mapping = dict(inputs or {})
    for argument, name in [("y", y), ("group", group), ("y_log_sd", y_log_sd)] + [
        (f"inputs[{k!r}]", v) for k, v in mapping.items()
    ]:
        try:
            hash(name)
        except TypeError:
            raise DataError(f"{argument}= must name a column, got {name!r}") from None
        if name is None and argument.startswith("inputs"):
            raise DataError(f"{argument}= must name a column, got None")
    unknown = set(mapping) - set(law.inputs) - {"C"}
    if unknown:
        raise DataError(
            f"inputs= names {sorted(unknown)}, which law {law.name!r} does not take; "
            f"its inputs are {list(law.inputs)}"
        )
    if "C" in mapping and not {"N", "D"} <= set(law.inputs):
        raise DataError(
            f"inputs= maps compute 'C', but law {law.name!r} takes {list(law.inputs)}: "
            "compute gives tokens D = C / (k N) only to laws of N and D"
        )
    if {"C", "D"} <= set(mapping):
        raise DataError(
            f"inputs= maps both tokens 'D' ({mapping['D']!r}) and compute 'C' "
            f"({mapping['C']!r}): map one; D is derived from C when it is not given"
        )
    cols = {k: mapping.get(k, k) for k in (*law.inputs, "C", "D")}
    if y is None:  # rows to predict may name an input as the law does, whatever the fit read
        cols = {k: c if c in df.columns or k not in df.columns else k for k, c in cols.items()}
    has_c, has_d = cols["C"] in df.columns, cols["D"] in df.columns
    if "C" in mapping:  # named compute wins over a column that happens to be called D (depth)
        derive_d = y is not None or has_c or not has_d  # a prediction table may give tokens
    else:
        derive_d = has_c and not has_d
    derive_d = derive_d and "D" in law.inputs
    needed = [cols[k] for k in law.inputs if not (k == "D" and derive_d)]
    if derive_d:
        needed.append(cols["C"])
    if y_log_sd is not None and y_log_sd in (y, *needed):
        raise DataError(f"y_log_sd={y_log_sd!r} is also the response or an input column")
    if group is not None and group in (y, *needed):
        raise DataError(
            f"group={group!r} is also the response or an input column: group by a column of "
            "its own (a copy of it, if that is what you mean)"
        )
    for argument, name in (("y", y), ("group", group), ("y_log_sd", y_log_sd)):
        if name in law.inputs and name not in needed:  # the table keeps inputs by law name
            source = cols["C"] if name == "D" and derive_d else cols[name]
            raise DataError(
                f"{argument}={name!r} is a column named like input {name} of law {law.name!r}, "
                f"which this fit reads from column {source!r}: rename column {name!r}"
            )
    roles = [c for c in [*needed, y] if c is not None]
    if twice := sorted({c for c in roles if roles.count(c) > 1}, key=str):
        raise DataError(
            f"column(s) {twice} are mapped to more than one of law {law.name!r}'s inputs "
            f"{list(law.inputs)} and the response y={y!r}: each needs its own column"
        )
    extra = [y, y_log_sd] if y is not None else []
    missing = [c for c in [*needed, *extra] if c is not None and c not in df.columns]
    if missing:
        hint = ""
        if set(missing) & set(needed):
            first = next(k for k in (*law.inputs, "C") if cols.get(k) in missing)  # by law name
            hint = (
                f" (map columns with inputs={{{first!r}: 'your column'}})"
                if y is not None
                else f" (inputs are read from columns {needed})"
            )
        raise DataError(
            f"missing column(s) {missing} for law {law.name!r} with y={y!r}; "
            f"the table has {list(df.columns)}{hint}"
        )
    used = [c for c in [*needed, *extra, group] if c is not None]
    if repeated := sorted(
        {c for c in used if c in df.columns and (df.columns == c).sum() > 1}, key=str
    ):
        raise DataError(f"column(s) {repeated} appear more than once in the table: rename them")
    out = {}
    for k in law.inputs:
        if k == "D" and derive_d:
            continue
        out[k] = numeric_column(df, cols[k], f"input {k}", law.input_support(k))
    if derive_d:
        compute = numeric_column(df, cols["C"], "compute C")
        with np.errstate(over="ignore", under="ignore"):
            out["D"] = compute / (flops_per_token * out["N"])
        if (bad := ~(np.isfinite(out["D"]) & (out["D"] > 0))).any():
            raise DataError(
                f"tokens D = C / ({flops_per_token:g} N) from columns {cols['C']!r} and "
                f"{cols['N']!r} overflow or underflow float64 at {row_labels(df.index, bad)}: "
                "give a column of tokens D, or C and N in units that keep D within "
                "1e-300 to 1e300"
            )
    if group is not None:
        out[group] = group_labels(df, group, fitting=y is not None)
    if y is None:
        frame = pd.DataFrame(out, index=df.index)
        return FitData(frame=frame, inputs=tuple(law.inputs), y="", group=group)
    out[y] = numeric_column(df, y, "response", y_support)
    if len(df) < n_params + 2:  # before the checks below, which one or two rows also fail
        raise DataError(
            f"{len(df)} {'row' if len(df) == 1 else 'rows'} is too few for law {law.name!r} "
            f"with {n_params} free parameters:"
            f" need at least {n_params + 2}"
        )
    if np.ptp(out[y]) == 0:
        raise DataError(f"response {y!r} is {out[y][0]:g} in every row: there is no trend to fit")
    if y_log_sd is not None:
        out[y_log_sd] = numeric_column(df, y_log_sd, "known sd of log y", "nonnegative")
    frame = pd.DataFrame(out, index=df.index)
    encoded = law.encode(frame)
    for k in set(law.inputs) - set(law.fixed_inputs):
        if np.ptp(encoded[k]) < 1e-12:
            raise DataError(
                f"input {k} (column {cols.get(k, k)!r}) is constant ({frame[k].iloc[0]:g}) in "
                "every row: a law cannot learn how loss scales with it"
            )
    return FitData(frame=frame, inputs=tuple(law.inputs), y=y, group=group, y_log_sd=y_log_sd)
