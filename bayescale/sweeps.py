"""Loaders for the real scaling-law sweeps in ``../shared/data``, one tidy table per sweep.

The data are third-party results (provenance, licences and caveats in
``../shared/data/README.md``). Several source repositories have no licence, so the files are
never copied into this repository or its wheel: every loader reads them from a folder the
caller names, by default ``$BAYESCALE_DATA`` or else ``<repo>/../shared/data`` (the checkout's
sibling ``shared/data``, found from this module's location in an editable install).

Two kinds of sweep, told apart by :attr:`Sweep.law_inputs`:

``"N,D"``
    Runs (or checkpoints, or isoFLOP points: each sweep's description says which) for
    Chinchilla-type laws. Columns ``N`` (parameters), ``D`` (training tokens), ``C``
    (training FLOPs; :attr:`Sweep.flops` says which convention), ``loss`` (nats unless the
    description says otherwise) and, for grouped sweeps, ``group`` (string labels), plus
    the source columns worth keeping.
``"x"``
    1-D learning curves. Columns ``x`` (examples or tokens seen), ``loss`` (the source's
    metric), ``group`` (curve id) and ``held_out`` (bool: the source's own extrapolation
    split).

Every table is validated on the way out: the inputs and ``loss`` are finite and positive,
``group`` holds strings, ``held_out`` is boolean, and no column has a missing value.
Rows are dropped only where the source itself marks them unusable (unfinished or unparsed
datablations runs), where its README documents exact duplicates (the Revisiting-NSL LM
block) and, as a choice made here, for the Pythia checkpoints taken before the end of the
learning-rate warmup (initialisation included). Each loader's docstring says what and why;
everything else is kept as published, outliers included.

``source`` names a set of training runs: sweeps that share it are re-extractions or subsets
of the same runs (Epoch's Chinchilla points and Open-Athena's two Chinchilla isoFLOP sets;
(Mis)Fitting's runs and Open-Athena's isoFLOP rebuild of them; the two datablations files;
the two Gemstones checkpoint files) and must be left out together in leave-one-sweep-out
evaluation.

Examples
--------
>>> from bayescale import sweeps
>>> sweeps.available()  # doctest: +SKIP
['epoch_chinchilla', 'porian_rw', ...]
>>> df = sweeps.load("porian_owt2")  # doctest: +SKIP
>>> sweeps.SWEEPS["porian_owt2"].group  # doctest: +SKIP
'group'
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bayescale.errors import DataError

__all__ = ["DEFAULT_ROOT", "ENV_VAR", "SWEEPS", "Sweep", "available", "data_root", "load"]

ENV_VAR = "BAYESCALE_DATA"
"""Environment variable naming the real-data folder (the contents of ``shared/data``)."""

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""``<repo>/../shared/data``: the folder beside the checkout, used when nothing else is named."""

ND_COLUMNS = ("N", "D", "C", "loss")
X_COLUMNS = ("x", "loss")


def data_root(root=None):
    """The real-data folder: ``root`` if given, else ``$BAYESCALE_DATA``, else the default.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Folder holding the contents of ``shared/data`` (``epoch_analyzing_chinchilla/`` etc.).

    Returns
    -------
    pathlib.Path
        The folder (not checked for existence; :meth:`Sweep.load` does that).
    """
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


def _hint():
    return f"pass root= or set {ENV_VAR} to the folder holding shared/data's contents"


@dataclass(frozen=True)
class Sweep:
    """One real sweep: what it is, where its file lives and how to read it.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"porian_owt2"``.
    source : str
        The set of training runs the sweep comes from. Sweeps with the same ``source`` are
        copies, subsets or re-extractions of one set of runs and must be left out together
        in leave-one-sweep-out evaluation.
    law_inputs : str
        ``"N,D"`` for Chinchilla-type sweeps, ``"x"`` for 1-D learning curves.
    group : str or None
        Name of the group column (always ``"group"``), or None for an ungrouped sweep.
    description : str
        One line: what the rows are, how many, and the groups.
    citation : str
        The paper (and repository) the numbers come from.
    file : str
        Path of the source file, relative to the data folder.
    reader : callable
        ``reader(path) -> DataFrame``: the tidy table, before validation.
    flops : str
        For ``"N,D"`` sweeps, the convention of column ``C``: taken from the source or
        derived here as 6ND. Empty for 1-D sweeps.
    budget_groups : bool
        True where the groups are isoFLOP budgets: levels of compute, not corpora, model
        families or recipes. A fit that extrapolates in compute fits such a sweep without
        groups, since every held-out budget would be a group it has never seen.
    """

    name: str
    source: str
    law_inputs: str
    group: str | None
    description: str
    citation: str
    file: str
    reader: Callable[[Path], pd.DataFrame] = field(repr=False, compare=False)
    flops: str = ""
    budget_groups: bool = False

    @property
    def inputs(self):
        """The law inputs as a tuple of column names: ``("N", "D")`` or ``("x",)``."""
        return tuple(self.law_inputs.split(","))

    def path(self, root=None):
        """Where the sweep's file is expected under the data folder (see :func:`data_root`)."""
        return data_root(root) / self.file

    def available(self, root=None):
        """Whether the sweep's file exists under the data folder."""
        return self.path(root).is_file()

    def load(self, root=None):
        """Read, tidy and validate the sweep.

        Parameters
        ----------
        root : str or os.PathLike, optional
            The data folder; default :func:`data_root`.

        Returns
        -------
        pandas.DataFrame
            The tidy table described in the module docstring, with a fresh RangeIndex.

        Raises
        ------
        FileNotFoundError
            The data folder or the sweep's file is missing; the message names the path.
        bayescale.DataError
            The file was read but a required column is missing, non-positive, non-finite
            or has missing values (a changed or damaged file).
        """
        folder = data_root(root)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"real-data folder {folder} not found (sweep {self.name!r} reads "
                f"{folder / self.file}); {_hint()}"
            )
        path = folder / self.file
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: sweep {self.name!r} needs it; {_hint()}")
        df = self.reader(path).reset_index(drop=True)
        _validate(df, self, path)
        return df


def _validate(df, sweep, path):
    """Raise DataError unless ``df`` is a well-formed table for ``sweep``."""
    where = f"sweep {sweep.name!r} ({path})"
    if df.empty:
        raise DataError(f"{where}: no rows")
    required = ND_COLUMNS if sweep.law_inputs == "N,D" else (*X_COLUMNS, "held_out")
    if sweep.group is not None:
        required = (*required, sweep.group)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{where}: columns {missing} missing; the table has {list(df.columns)}")
    nan = [c for c in df.columns if df[c].isna().any()]
    if nan:
        raise DataError(f"{where}: missing values in columns {nan}")
    for col in required:
        if col in (sweep.group, "held_out"):
            continue
        values = df[col]
        if not pd.api.types.is_float_dtype(values):
            raise DataError(f"{where}: column {col!r} has dtype {values.dtype}, not float")
        bad = ~(np.isfinite(values.to_numpy()) & (values.to_numpy() > 0))
        if bad.any():
            rows = list(df.index[bad][:5])
            raise DataError(f"{where}: column {col!r} is not finite and positive at rows {rows}")
    if sweep.group is not None and not pd.api.types.is_string_dtype(df[sweep.group]):
        raise DataError(f"{where}: group column {sweep.group!r} does not hold strings")
    if "held_out" in required and not pd.api.types.is_bool_dtype(df["held_out"]):
        raise DataError(f"{where}: column 'held_out' has dtype {df['held_out'].dtype}, not bool")


# --- readers ---------------------------------------------------------------------------------


def _read_chinchilla(path):
    """Epoch's SVG reconstruction of Hoffmann et al.'s Figure 4 runs.

    All 245 points are kept. ``C`` is the figure's training FLOPs and ``D = C / (6 N)``,
    Epoch's derivation. ``besiroglu_dropped`` flags the 5 highest losses, which Besiroglu
    et al. leave out of their main fit (240 points); losses are read from a colour map, so
    they carry quantisation error.
    """
    raw = pd.read_csv(path)
    n = raw["Model Size"].astype(float)
    c = raw["Training FLOP"].astype(float)
    df = pd.DataFrame({"N": n, "D": c / (6.0 * n), "C": c, "loss": raw["loss"].astype(float)})
    df["besiroglu_dropped"] = df.index.isin(df["loss"].nlargest(5).index)
    return df


PORIAN_CONFIG = ("hparams", "warmup", "decay", "param_count", "loss_split")
"""Porian et al.'s configuration columns that vary within one dataset (the group label)."""


def _read_porian(path, dataset):
    """Porian et al.'s isoFLOP points for one training set, grouped by configuration.

    One row per (configuration, budget, model size): ``loss`` is the loss interpolated at
    that budget, the best over the authors' hyperparameter runs, so a row is an isoFLOP
    point, not a single run. The group label is ``hparams/warmup/decay/param_count/
    loss_split`` (the five columns that vary; ``source_file`` only repeats ``dataset`` and
    ``param_count``). ``N`` follows each configuration's ``param_count`` convention
    (``kaplan``: non-embedding; ``standard``: with the last layer; ``attention``: FLOPs per
    token / 6), so N is not on one scale across groups. ``loss_split`` says which loss:
    ``train`` (smoothed training loss) in the ``kaplan``- and ``attention``-count
    configurations, ``val`` (validation loss) in the ``standard`` ones. Several groups
    re-count the same training runs (e.g. the ``attention`` groups and their ``standard``
    twins), so groups are not independent runs. Nothing is dropped; the largest models at
    the smallest budgets (a few million tokens, long warmup) have losses up to 10 nats.
    """
    raw = pd.read_csv(path)
    raw = raw[raw["dataset"] == dataset]
    df = pd.DataFrame(
        {
            "N": raw["params"].astype(float),
            "D": raw["tokens"].astype(float),
            "C": raw["flops"].astype(float),
            "loss": raw["loss"].astype(float),
            "group": raw[list(PORIAN_CONFIG)].astype(str).agg("/".join, axis=1),
        }
    )
    for col in PORIAN_CONFIG:
        df[col] = raw[col].astype(str)
    return df


def _read_misfitting(path):
    """(Mis)Fitting's final checkpoints (one row per run), grouped by peak learning rate.

    ``N`` counts embeddings (``N_no_emb`` is kept); ``C`` is the source's ``C`` column,
    which equals 6ND to 1e-10 (it is stored as text because it overflows int64). The group
    is ``peak_lr`` (5 values, 0.0004 to 0.008): the one run setting the authors vary
    besides N and D. ``sweep`` (40 launch timestamps, many with 1-3 runs) is kept but is a
    batch id, not a family, and ``model`` is N itself. Nothing is dropped.

    ``repeated_loss`` flags the 42 rows (all ``misfitting_17m``, sweep
    ``2024_11_10-23_08_29``) whose (N, D, loss) appears twice: 21 distinct losses (7 token
    budgets x 3 learning rates) each listed twice, the copies differing in
    ``total_epochs`` (checkpoint count) and with the ``peak_lr`` labels permuted between
    them (one pair is an exact duplicate row). Their learning-rate labels, and so their
    group, are not reliable; best-LR selection per (N, D) is unaffected.
    """
    raw = pd.read_csv(path)
    df = pd.DataFrame(
        {
            "N": raw["N"].astype(float),
            "D": raw["D"].astype(float),
            "C": raw["C"].astype(float),
            "loss": raw["loss"].astype(float),
            "group": raw["peak_lr"].map("{:g}".format).astype(str),
            "N_no_emb": raw["N_no_emb"].astype(float),
            "peak_lr": raw["peak_lr"].astype(float),
            "model": raw["model"].astype(str),
            "sweep": raw["sweep"].astype(str),
        }
    )
    df["repeated_loss"] = df.duplicated(["N", "D", "loss"], keep=False)
    return df


GEMSTONES_SHAPES = ((16.0, "deep"), (64.0, "balanced"), (np.inf, "wide"))
"""Width/depth cut points of the Gemstones shape families (upper bound, label)."""


def _gemstones_family(aspect):
    for upper, label in GEMSTONES_SHAPES:
        if aspect < upper:
            return label
    raise ValueError(f"aspect ratio {aspect} out of range")


def read_gemstones(path):
    """Gemstones checkpoints of the constant-LR ("hot") runs, grouped by shape family.

    One row per checkpoint (22 models, checkpoints every 10B tokens); ``loss`` is the
    training loss at that checkpoint. The group is the model's width/depth ratio class:
    ``deep`` (< 16: 256x23, 256x27, 256x71, 256x80, 384x36; 48M-117M params),
    ``balanced`` (16-64: 384x13, 512x11-16, 768x45, 1024x28, 1280x36, 1536x50; 67M-1.9B)
    and ``wide`` (>= 64: 768x3, 1280x15, 1792x7, 1792x18, 2048x27, 2560x8, 3072x12;
    104M-2.0B). The ratios fall in clear clusters (3-11, 17-47, 76-320), the cut points sit
    in the gaps, and the two larger families span N, which a grouped N-D law needs; a
    group per width (11 groups, 6 with a single model) or per model (one N each) does not.
    ``run`` (e.g. ``"1024x28"``), ``width``, ``depth`` and ``step`` are kept for other
    groupings. The source has no FLOPs column, so ``C = 6 N D`` here (the authors' own
    FLOP count is a detailed per-token formula). Nothing is dropped. Gemstones' other
    files of the same fields (the half-rate ablation, whose runs are named ``cooler_...``)
    read the same way.
    """
    raw = pd.read_json(path, lines=True)
    aspect = raw["width"] / raw["depth"]
    n = raw["params_active_precise"].astype(float)
    d = raw["tokens"].astype(float)
    run = raw["run_name"].str.removeprefix("cooler_").str.removeprefix("PyGemma-")
    run = run.str.removesuffix("_pretrain")
    return pd.DataFrame(
        {
            "N": n,
            "D": d,
            "C": 6.0 * n * d,
            "loss": raw["final_loss"].astype(float),
            "group": aspect.map(_gemstones_family).astype(str),
            "run": run.astype(str),
            "width": raw["width"].astype(int),
            "depth": raw["depth"].astype(int),
            "step": raw["step"].astype(int),
        }
    )


def _read_open_athena(path):
    """One of Open-Athena's isoFLOP sets, grouped by isoFLOP budget.

    The only thing that varies besides N, D and loss is the budget, so the group is the
    isoFLOP curve (label: the budget, e.g. ``"6e+18"``) and ``C`` is that nominal budget.
    In ``llama_3`` the file holds each point twice, as ``condition=raw_loss`` (the Llama 3
    figure's validation loss, read off a linear axis with ticks 0.70-0.95) and
    ``exp_loss`` (exp of it, Open-Athena's transform). ``loss`` here is the measured
    ``raw_loss``: exp of a negative log-likelihood is a perplexity, not a cross-entropy,
    even though its values (2.0-2.5) look like one. ``exp_loss`` is kept as a column (one
    row per point, checked to equal exp(loss)). Nothing is dropped.
    """
    raw = pd.read_csv(path)
    if raw["condition"].notna().any():
        base = raw[raw["condition"] == "raw_loss"].reset_index(drop=True)
        exp = raw[raw["condition"] == "exp_loss"].reset_index(drop=True)
        same = len(base) == len(exp) and all(
            np.allclose(base[c], exp[c], rtol=1e-12) for c in ("tokens", "params", "budget")
        )
        if not same or not np.allclose(exp["loss"], np.exp(base["loss"]), rtol=1e-9):
            raise DataError(f"{path}: raw_loss and exp_loss rows do not pair up point by point")
        if len(base) + len(exp) != len(raw):
            raise DataError(f"{path}: conditions other than raw_loss/exp_loss")
        raw = base.assign(exp_loss=exp["loss"].astype(float))
    df = pd.DataFrame(
        {
            "N": raw["params"].astype(float),
            "D": raw["tokens"].astype(float),
            "C": raw["budget"].astype(float),
            "loss": raw["loss"].astype(float),
            "group": raw["budget"].map("{:.3g}".format).astype(str),
        }
    )
    if "exp_loss" in raw.columns:
        df["exp_loss"] = raw["exp_loss"]
    return df


def _read_datablations(path):
    """Muennighoff et al.'s final C4 validation losses with unique-token budgets ``U``.

    Dropped, as the authors' notebook skips them: runs with ``val_loss == 0`` (unfinished;
    9 in each file) and the 12 ``dedup`` runs whose names the notebook does not parse
    (their N, D and U are unknown). ``D`` counts all tokens, repeats included;
    ``epochs = D / U``; ``C = 6 N D`` (the paper's convention; the source has no FLOPs).
    ``name`` is the run name and ``seed`` its seed suffix (0 where the name has none):
    in the all-points file 16 (N, D, U) settings (2.8B params/55B tokens and 4.2B/84B, 8
    unique-token budgets each) appear once unsuffixed and once per seed 1-4, and
    ``8b7178b25b`` has an ``...opt`` twin; all are kept as separate runs.
    """
    raw = pd.read_csv(path)
    unparsed = raw["note"].fillna("").str.startswith("dedup")
    raw = raw[(raw["val_loss"] != 0) & ~unparsed]
    n = raw["params"].astype(float)
    d = raw["tokens"].astype(float)
    u = raw["unique_tokens"].astype(float)
    seed = raw["note"].fillna("").str.extract(r"seed(\d+)", expand=False)
    return pd.DataFrame(
        {
            "N": n,
            "D": d,
            "C": 6.0 * n * d,
            "loss": raw["val_loss"].astype(float),
            "U": u,
            "epochs": d / u,
            "name": raw["name_raw"].astype(str),
            "seed": seed.fillna("0").astype(int),
        }
    )


PYTHIA_STEP_TOKENS = 2_097_152
"""Tokens per Pythia optimizer step (1,024 sequences of 2,048 tokens)."""

PYTHIA_WARMUP_STEPS = 1_430
"""Pythia's learning-rate warmup: 1% of its 143,000 steps."""


def _nominal_params(label):
    scale = {"M": 1e6, "B": 1e9}[label[-1]]
    return float(label[:-1]) * scale


def _read_pythia(path):
    """Pythia checkpoints' zero-shot LAMBADA loss, grouped by training set (Pile or deduped).

    ``loss = ln(ppl)`` of ``lambada_openai``: the mean negative log-likelihood of each
    passage's final word, in nats per word (a task loss, not the Pile training loss).
    ``N`` is the nominal size in the model name (70M ... 12B: rounded total parameters;
    exact counts are not in the file), ``D = step x 2,097,152`` tokens, ``C = 6 N D``.
    Rows are checkpoints of one cosine-schedule run per model, not separate runs.
    Dropped: the 12 checkpoints per run inside the learning-rate warmup (steps 0-1000;
    warmup ends at step 1,430), before learning has properly started: ln ppl is 15-20 up
    to step 256 (above the uniform guess, ln 50,304 = 10.8) and still 7-9 at step 1000,
    and step 0 has D = 0. Kept but worth knowing: 70M and 160M get worse on LAMBADA over
    the second half of training (0.3-0.5 nats above their best checkpoint at the end); the
    Pile 1B run has no LAMBADA results; the 2.8B Pile and deduped runs report identical
    values up to step 1000 and perplexities within about 1% after. 5-shot results are the
    same checkpoints evaluated differently and are not included.
    """
    raw = pd.read_csv(path)
    rows = raw[
        (raw["task"] == "lambada_openai")
        & (raw["metric"] == "ppl")
        & (raw["shots"] == 0)
        & (raw["step"] > PYTHIA_WARMUP_STEPS)
    ]
    n = rows["size_label"].map(_nominal_params).astype(float)
    d = rows["tokens"].astype(float)
    if not np.array_equal(d.to_numpy(), rows["step"].to_numpy() * float(PYTHIA_STEP_TOKENS)):
        raise DataError(f"{path}: tokens != step x {PYTHIA_STEP_TOKENS}")
    return pd.DataFrame(
        {
            "N": n,
            "D": d,
            "C": 6.0 * n * d,
            "loss": np.log(rows["value"].astype(float)),
            "group": np.where(rows["deduped"].astype(bool), "deduped", "pile").astype(str),
            "size_label": rows["size_label"].astype(str),
            "step": rows["step"].astype(int),
            "ppl": rows["value"].astype(float),
            "ppl_stderr": rows["stderr"].astype(float),
        }
    )


def _read_revisiting(path, domain, dedupe=False):
    """One domain of the Revisiting-NSL benchmark: learning curves with a held-out tail.

    ``x`` is ``Seen Examples`` (examples, or tokens for LM and BIG-bench), ``loss`` the
    source's ``Loss`` (IC: error rate; NMT: log-perplexity; LM: validation loss; BB: the
    task loss as given), ``held_out`` is ``Training == 0`` (the larger-x points the
    benchmark scores extrapolation on). A curve (``group``) is ``"Task | Model"``: IC
    curves are Model x Task, NMT and LM one per Model, BB one per Task (one 262M model).
    With ``dedupe``, exact duplicate rows are dropped: the LM block lists every row 4
    times (916 rows, 229 distinct), as the data README warns. Nothing else is dropped.
    """
    raw = pd.read_csv(path)
    rows = raw[raw["Domain"] == domain]
    if dedupe:
        rows = rows.drop_duplicates()
    if not rows["Training"].isin([0, 1]).all():
        raise DataError(f"{path}: column 'Training' holds values other than 0 and 1")
    task = rows["Task"].astype(str)
    model = rows["Model"].astype(str)
    return pd.DataFrame(
        {
            "x": rows["Seen Examples"].astype(float),
            "loss": rows["Loss"].astype(float),
            "group": (task + " | " + model).astype(str),
            "held_out": rows["Training"] == 0,
            "task": task,
            "model": model,
        }
    )


BNSL_FIT_ROWS = 14
"""The BNSL script fits the first 14 points of the 4-digit-addition curve."""


def _read_bnsl(path):
    """BNSL's 4-digit addition curve: test cross-entropy against training-set size.

    ``held_out`` is the script's own split (``extrapolate``: the last 3 of 17 rows), checked
    to be exactly the rows after the first 14. One curve, ``group = "4_digit_addition"``.
    """
    raw = pd.read_csv(path)
    held_out = raw["split_in_bnsl_script"] == "extrapolate"
    if (
        not raw["split_in_bnsl_script"].isin(["fit", "extrapolate"]).all()
        or not (held_out.to_numpy() == (np.arange(len(raw)) >= BNSL_FIT_ROWS)).all()
    ):
        raise DataError(f"{path}: the fit/extrapolate split is not the first {BNSL_FIT_ROWS} rows")
    return pd.DataFrame(
        {
            "x": raw["train_dataset_size"].astype(float),
            "loss": raw["test_cross_entropy"].astype(float),
            "group": "4_digit_addition",
            "held_out": held_out,
        }
    ).astype({"group": str})


# --- registry --------------------------------------------------------------------------------

_CHINCHILLA = (
    "Hoffmann et al., Training Compute-Optimal Large Language Models, arXiv:2203.15556 "
    "(2022); points extracted by Besiroglu, Erdil, Barnett, You, Chinchilla Scaling: A "
    "replication attempt, arXiv:2404.10102 (2024), epoch-research/analyzing-chinchilla"
)
_PORIAN = (
    "Porian, Wortsman, Jitsev, Schmidt, Carmon, Resolving Discrepancies in Compute-Optimal "
    "Scaling of Language Models, NeurIPS 2024, arXiv:2406.19146; "
    "formll/resolving-scaling-law-discrepancies"
)
_MISFITTING = (
    "Li, Kudugunta, Zettlemoyer, (Mis)Fitting: A Survey of Scaling Laws, ICLR 2025, "
    "arXiv:2502.18969; hadasah/scaling_laws"
)
_GEMSTONES = (
    "McLeish et al., Gemstones: A Model Suite for Multi-Faceted Scaling Laws, NeurIPS 2025, "
    "arXiv:2502.06857; mcleish7/gemstone-scaling-laws"
)
_OPEN_ATHENA = "isoFLOP extraction by Open-Athena/scaling-law-analysis (data/isoflops/extract)"
_DATABLATIONS = (
    "Muennighoff et al., Scaling Data-Constrained Language Models, NeurIPS 2023, "
    "arXiv:2305.16264; huggingface/datablations utils/parametric_fit.ipynb"
)
_PYTHIA = (
    "Biderman et al., Pythia: A Suite for Analyzing Large Language Models Across Training "
    "and Scaling, ICML 2023, arXiv:2304.01373; EleutherAI/pythia evals/pythia-v1"
)
_REVISITING = (
    "Alabdulmohsin, Neyshabur, Zhai, Revisiting Neural Scaling Laws in Language and Vision, "
    "NeurIPS 2022, arXiv:2209.06640; google-research revisiting_neural_scaling_laws"
)
_BNSL = (
    "Caballero, Gupta, Rish, Krueger, Broken Neural Scaling Laws, ICLR 2023, "
    "arXiv:2210.14891 (Figure 4 left); ethancaballero/broken_neural_scaling_laws"
)
_OA_FLOPS = "source: the nominal budget of the point's isoFLOP curve"


def _oa(name, source, description, citation, flops):
    return Sweep(
        name=f"open_athena_{name}",
        source=source,
        law_inputs="N,D",
        group="group",
        description=description,
        citation=f"{citation}; {_OPEN_ATHENA}",
        file=f"open_athena_isoflops/{name}/isoflops.csv",
        flops=f"{_OA_FLOPS}; {flops}",
        reader=_read_open_athena,
        budget_groups=True,
    )


def _revisiting(domain, description, file, dedupe=False):
    return Sweep(
        name=f"revisiting_nsl_{domain.lower()}",
        source=f"revisiting_nsl_{domain.lower()}",
        law_inputs="x",
        group="group",
        description=description,
        citation=_REVISITING,
        file=f"revisiting_nsl_benchmark/{file}",
        reader=partial(_read_revisiting, domain=domain, dedupe=dedupe),
    )


_REGISTRY = (
    Sweep(
        name="epoch_chinchilla",
        source="chinchilla",
        law_inputs="N,D",
        group=None,
        description=(
            "Chinchilla final training losses on MassiveText, 245 runs as published (Epoch's "
            "SVG reconstruction; besiroglu_dropped flags the 5 highest losses that Besiroglu "
            "et al. leave out), no groups"
        ),
        citation=_CHINCHILLA,
        file="epoch_analyzing_chinchilla/svg_extracted_data.csv",
        flops=(
            "source: the figure's training FLOPs (Hoffmann et al.'s count); D = C/(6N) as "
            "Epoch derive it"
        ),
        reader=_read_chinchilla,
    ),
    *(
        Sweep(
            name=f"porian_{dataset}",
            source=f"porian_{dataset}",
            law_inputs="N,D",
            group="group",
            description=(
                f"Porian et al. isoFLOP points on {label} (budgets 1.25e16-2.56e19), "
                f"{rows:,} points, {groups} groups = configurations "
                "hparams/warmup/decay/param_count/loss_split"
            ),
            citation=_PORIAN,
            file="porian_resolving_discrepancies/summary_df_all.isoflop_points.csv",
            flops=(
                "source: the isoFLOP budget; C = 6ND with N under the row's param_count convention"
            ),
            reader=partial(_read_porian, dataset=dataset),
        )
        for dataset, label, rows, groups in (
            ("rw", "RefinedWeb", 1164, 10),
            ("owt2", "OpenWebText2", 581, 5),
        )
    ),
    Sweep(
        name="misfitting",
        source="misfitting",
        law_inputs="N,D",
        group="group",
        description=(
            "(Mis)Fitting final checkpoints (FineWeb training, C4 eval loss), 261 runs of 11 "
            "sizes 57M-1.18B, 5 groups = peak learning rate (repeated_loss flags 42 rows with "
            "unreliable LR labels)"
        ),
        citation=_MISFITTING,
        file="misfitting_li2025/scaling_results_last_ckpt_only.csv",
        flops="source: column C (N incl. embeddings), equal to 6ND to 1e-10",
        reader=_read_misfitting,
    ),
    Sweep(
        name="gemstones",
        source="gemstones",
        law_inputs="N,D",
        group="group",
        description=(
            "Gemstones constant-LR ('hot') checkpoints every 10B tokens to 100B, 220 rows "
            "(22 models x 10 checkpoints), 3 groups = width/depth shape family "
            "deep/balanced/wide"
        ),
        citation=_GEMSTONES,
        file="gemstones/wandb_df_for_fitting_hot.jsonl",
        flops="derived here: 6ND (the source has no FLOPs column)",
        reader=read_gemstones,
    ),
    Sweep(
        name="gemstones_350b",
        source="gemstones",
        law_inputs="N,D",
        group="group",
        description=(
            "Gemstones constant-LR ('hot') checkpoints every 10B tokens to 350B, 770 rows "
            "(22 models x 35 checkpoints; a superset of 'gemstones'), 3 groups = width/depth "
            "shape family deep/balanced/wide"
        ),
        citation=_GEMSTONES,
        file="gemstones/wandb_df_for_fitting_hot_100b+.jsonl",
        flops="derived here: 6ND (the source has no FLOPs column)",
        reader=read_gemstones,
    ),
    _oa(
        "epochai_chinchilla",
        "chinchilla",
        "Chinchilla isoFLOP points (Epoch's extraction snapped to the 9 budgets 6e18-3e21, "
        "near-duplicates dropped by Open-Athena), 123 points, 9 groups = isoFLOP budget",
        _CHINCHILLA,
        "D = budget/(6N), so C = 6ND exactly",
    ),
    _oa(
        "ml_scalefit",
        "chinchilla",
        "Chinchilla isoFLOP points (apple/ml-scalefit's copy snapped to the 9 budgets "
        "6e18-3e21, original N and D kept), 124 points, 9 groups = isoFLOP budget",
        _CHINCHILLA,
        "N and D are the source's, so 6ND is within 10% of C",
    ),
    _oa(
        "llama_3",
        "llama_3",
        "Llama 3 isoFLOP points digitised from the paper's Figure 2 (budgets 6e18-1e22), 133 "
        "points, 10 groups = isoFLOP budget; loss = the figure's validation NLL (0.69-0.93), "
        "exp_loss kept as a column",
        "Llama Team, The Llama 3 Herd of Models, arXiv:2407.21783 (2024); digitised by "
        "eric-czech/llama3_isoflop_extraction",
        "N = budget/(6D), so C = 6ND exactly",
    ),
    _oa(
        "misfitting",
        "misfitting",
        "(Mis)Fitting isoFLOP curves rebuilt by Open-Athena from all checkpoints (best LR per "
        "size, loss interpolated at each budget), 176 points, 26 groups = isoFLOP budget",
        _MISFITTING,
        "D = budget/(6N), so C = 6ND exactly",
    ),
    Sweep(
        name="datablations",
        source="datablations",
        law_inputs="N,D",
        group=None,
        description=(
            "Datablations final C4 validation losses with unique tokens U (notebook cell 25, "
            "outliers removed), 182 runs after dropping 9 unfinished and 12 unparsed dedup "
            "runs of 203, no groups"
        ),
        citation=_DATABLATIONS,
        file="datablations/parametric_fit.cell25_outliers_removed.csv",
        flops="derived here: 6ND (the paper's convention; D includes repeated tokens)",
        reader=_read_datablations,
    ),
    Sweep(
        name="datablations_all",
        source="datablations",
        law_inputs="N,D",
        group=None,
        description=(
            "Datablations final C4 validation losses with unique tokens U (notebook cell 1, "
            "all points incl. outliers up to 11 nats), 296 runs after dropping 9 unfinished "
            "and 12 unparsed dedup runs of 317, no groups"
        ),
        citation=_DATABLATIONS,
        file="datablations/parametric_fit.cell01_all_points.csv",
        flops="derived here: 6ND (the paper's convention; D includes repeated tokens)",
        reader=_read_datablations,
    ),
    Sweep(
        name="pythia_lambada",
        source="pythia",
        law_inputs="N,D",
        group="group",
        description=(
            "Pythia checkpoints after warmup (steps 3,000-143,000), zero-shot LAMBADA "
            "ln(perplexity) in nats per word, nominal N, 225 rows (15 runs x 15 checkpoints), "
            "2 groups = training set pile/deduped"
        ),
        citation=_PYTHIA,
        file="pythia_evals/pythia_v1_evals_long.csv",
        flops="derived here: 6ND with the nominal N",
        reader=_read_pythia,
    ),
    _revisiting(
        "IC",
        "Revisiting-NSL few-shot image classification error rate vs examples seen, 18,883 "
        "points, 72 curves = Task x Model, held_out = Training == 0 (14,981 points)",
        "benchmark.vision.csv",
    ),
    _revisiting(
        "NMT",
        "Revisiting-NSL translation log-perplexity vs examples seen, 53 points, 5 curves = "
        "Model, held_out = Training == 0 (5 points)",
        "benchmark.lang.csv",
    ),
    _revisiting(
        "LM",
        "Revisiting-NSL language-model validation loss vs tokens seen, 229 points after "
        "dropping the 3 extra copies of each of the 916 rows, 5 curves = Model, held_out = "
        "Training == 0 (97 points)",
        "benchmark.lang.csv",
        dedupe=True,
    ),
    _revisiting(
        "BB",
        "Revisiting-NSL BIG-bench task loss of one 262M model vs tokens seen, 430 points, 10 "
        "curves = Task, held_out = Training == 0 (240 points)",
        "benchmark.lang.csv",
    ),
    Sweep(
        name="bnsl_4_digit_addition",
        source="bnsl_4_digit_addition",
        law_inputs="x",
        group="group",
        description=(
            "BNSL 4-digit addition test cross-entropy vs training-set size, 17 points, 1 "
            "curve, held_out = the last 3 (the BNSL script's extrapolation points)"
        ),
        citation=_BNSL,
        file="bnsl/4_digit_addition_dataset_size.csv",
        reader=_read_bnsl,
    ),
)

SWEEPS = {sweep.name: sweep for sweep in _REGISTRY}
"""Every registered sweep by name."""


def load(name, root=None):
    """Load one registered sweep as a tidy, validated table.

    Parameters
    ----------
    name : str
        A key of :data:`SWEEPS`.
    root : str or os.PathLike, optional
        The data folder; default :func:`data_root` (``$BAYESCALE_DATA`` or
        ``<repo>/../shared/data``).

    Returns
    -------
    pandas.DataFrame
        See :meth:`Sweep.load`.

    Raises
    ------
    KeyError
        ``name`` is not registered.
    FileNotFoundError
        The data folder or the sweep's file is missing.
    """
    if name not in SWEEPS:
        raise KeyError(f"unknown sweep {name!r}; registered: {', '.join(SWEEPS)}")
    return SWEEPS[name].load(root)


def available(root=None):
    """Names of the registered sweeps whose files exist under the data folder.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The data folder; default :func:`data_root`.

    Returns
    -------
    list of str
        In registry order; empty when the folder is missing.
    """
    return [name for name, sweep in SWEEPS.items() if sweep.available(root)]
