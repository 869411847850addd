"""Self-contained posterior reports: what a researcher opens, reads, mails and pastes.

A fit is read as pictures and judged by its diagnostics, and it is reproduced from what
it records. :func:`write_report` puts all three in one file a reader can open anywhere:

- ``.html``: ONE file. Figures are inline PNGs (``data:`` URIs), the stylesheet is inline,
  there is no script and no font or anything else to fetch (a Content-Security-Policy
  forbids it), so it opens offline, survives being mailed, and renders the same in a year.
- ``.md``: Markdown with the figures written as PNGs into a folder beside it
  (``report_files/`` for ``report.md``), for a repository or a paper's supplement.

What it holds, in reading order: a loud banner when any fit in it failed a convergence
check (each check's value beside its requirement; every figure is stamped too, so one cut
out of the report cannot pass for a good fit) or a calm line when all passed; the
diagnostics; the data (rows, groups, each input's range); the law with its formula and
reference; priors, likelihood and pooling; sampler settings, seed and versions; the
posterior table; the figures of :mod:`bayescale.plots`; predictions at the user's targets
with each row's reach and extrapolation share, and for laws in ``N`` and ``D`` the
compute-optimal allocation at target budgets; a comparison with other fits
(:func:`bayescale.compare`); a backtest when one is given; and a reproducibility checklist
after Li, Kudugunta and Zettlemoyer's "(Mis)Fitting: A Survey of Scaling Laws" (ICLR 2025,
arXiv:2502.18969), each item filled from the fit or marked "not recorded" where the fit
cannot know it.

The report is assembled once as a list of blocks (headings, paragraphs, tables, images)
and rendered by the block's own ``html`` or ``markdown`` method, so the two formats cannot
drift apart. Every string that reaches the page (column names, group labels, file names,
messages quoting them) is escaped where it is rendered.
"""

import base64
import html
import inspect
import io
import itertools
import re
import warnings
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayescale import errors, plots
from bayescale import pooling as pooling_mod
from bayescale.arguments import check_probability
from bayescale.data import numeric_column, read_table
from bayescale.evaluation import decisions
from bayescale.evaluation.backtesting import Backtest
from bayescale.evaluation.comparison import compare as compare_fits
from bayescale.io import as_path, writable, write_atomically
from bayescale.result import ScalingFit, check_fit
from bayescale.spec import resolve_priors

__all__ = ["write_report"]

DPI = 100
"""Resolution of the figures: sharp on a screen, 30-80 kB per panel, a few MB per report."""

NOT_RECORDED = "not recorded"
"""What the report says where the fit cannot know the answer."""

MISFITTING = (
    "Li, Kudugunta, Zettlemoyer, (Mis)Fitting: A Survey of Scaling Laws, ICLR 2025, "
    "arXiv:2502.18969"
)

_POOLING_TEXT = {
    "shared": "one value for all groups",
    "pooled": "hierarchical (non-centred)",
    "pooled_centred": "hierarchical, sampled centred",
    "pooled_noncentred": "hierarchical, sampled non-centred",
    "pooled_partial": "hierarchical, sampled around each group's own estimate",
    "separate": "independent per group",
}

_INITIALISATION = {
    "numpyro": "PyMC-style jitter: each chain starts uniformly within +-1 of the model's "
    "initial point on the unconstrained scale, seeded by random_seed",
    "pymc": "PyMC's default (jitter+adapt_diag), seeded by random_seed",
    "nutpie": "nutpie's default initialisation, seeded by random_seed",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
max-width:1100px;margin:0 auto;padding:0 1.5rem 3rem;color:#1a1a1a;line-height:1.45}
h1{font-size:1.7rem;margin-top:1.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
p.caption{font-weight:600;margin:.8rem 0 .2rem}
tr.fail td{background:#fde2e4;font-weight:600}
figure{margin:1rem 0 1.6rem}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#444}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.85rem}
.note{color:#555;font-size:.92rem}.warn{color:#8a4b00;font-weight:600}
.banner{position:sticky;top:0;z-index:10;background:#b00020;color:#fff;padding:1rem 1.3rem;
margin:0 -1.5rem 1rem;border-bottom:6px solid #6d0014;font-size:1.05rem}
.banner strong{font-size:1.45rem;display:block;letter-spacing:.02em}
.banner ul{margin:.5rem 0 0}
.calm{border-left:6px solid #2e7d32;background:#eef7ee;padding:.6rem 1rem;margin:1rem 0}
nav{font-size:.9rem}nav a{margin-right:.8rem;color:#0b57d0}
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""Content-Security-Policy of the HTML: inline styles and ``data:`` images, nothing fetched."""


def write_report(
    fit,
    path,
    compare=None,
    targets=None,
    *,
    ci=0.9,
    name=None,
    backtest=None,
    unique_tokens=None,
    extrapolation="calibrated",
):
    """Write a self-contained report of ``fit``: HTML (one file) or Markdown with PNGs.

    Parameters
    ----------
    fit : ScalingFit
    path : str or os.PathLike
        Ending ``.html`` (one file, everything inline) or ``.md`` (figures as PNGs in a
        folder ``<stem>_files`` beside it).
    compare : dict of str to ScalingFit, optional
        Other fits of the same data, by label: a LOO comparison table
        (:func:`bayescale.compare`) and their predictions overlaid.
    targets : DataFrame, dict of columns or CSV path, optional
        Rows to predict at, named like the fitted data (as :meth:`ScalingFit.predict`
        takes them; a grouped fit needs its group column), or, for a law in ``N`` and
        ``D``, FLOP budgets alone (``{"C": [1e23, 1e24]}``), answered at each draw's
        compute-optimal allocation. With targets the report adds the extrapolation fan to
        the largest one and, where budgets are known, the compute-optimal table and the
        isoFLOP and frontier figures.
    ci : float
        Probability of every interval in the tables.
    name : str, optional
        Label of ``fit`` in the title and the comparison (default: the law's name).
    backtest : Backtest, optional
        A :func:`bayescale.backtest` of this model: its scores and figure, and the
        checklist's held-out validation item filled from it.
    unique_tokens : float, optional
        ``U`` for laws with a unique-token input (``data_constrained``), for the
        compute-optimal answers.
    extrapolation : {"calibrated", "population", "none"} or ExtrapolationError
        As in :meth:`ScalingFit.predict`: the error of the law's shape beyond the fitted
        runs, in predictions, the compute-optimal loss and the fans.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    SpecError
        For a path that is neither ``.html`` nor ``.md``, a ``compare`` that is not a dict
        of fits (or reuses ``name``), a ``backtest`` that is not a Backtest, a bad ``ci``,
        targets without the group column of a grouped fit, and whatever
        :meth:`ScalingFit.predict` or :func:`bayescale.compare` refuse.
    DataError
        For targets that :meth:`ScalingFit.predict` cannot read (a missing input column,
        a budget that is not a positive number).
    FitFileError
        When ``path``'s folder does not exist.
    """
    check_fit(fit)
    path = as_path(path, "write_report")
    if path.suffix.lower() not in (".html", ".md"):
        raise errors.SpecError(
            f"report path {str(path)!r} must end in .html (one self-contained file) or .md "
            "(Markdown with PNGs beside it)"
        )
    writable(path, "the report")
    check_probability(ci, "ci")
    name = fit.law.name if name is None else str(name)
    others = _check_compare(compare, name)
    if backtest is not None and not isinstance(backtest, Backtest):
        raise errors.SpecError(f"backtest= takes a bayescale.Backtest, not {backtest!r}")
    read = None if targets is None else _read_targets(fit, targets)
    failed = {label: f for label, f in {name: fit, **others}.items() if not f.converged}
    stamp = name in failed  # the figures of this fit; the comparison's carry any failure
    compared = bool(failed)
    if backtest is not None:  # its fits' scores are in the report: their failures too
        failed |= {  # an average fails through its components, which are named themselves
            f"backtest fit {method!r}": f
            for method, f in backtest.fits.items()
            if isinstance(f, ScalingFit) and not f.converged
        }
    with warnings.catch_warnings():  # the banner, title and stamps say it, not a warning
        warnings.simplefilter("ignore", errors.ConvergenceWarning)
        blocks = _blocks(
            fit,
            name,
            others,
            failed,
            stamp,
            compared,
            read,
            ci,
            unique_tokens,
            extrapolation,
            backtest,
        )
    title = f"{name}: {fit.law.name} posterior report"
    html = path.suffix.lower() == ".html"

    def write(temporary):  # a Markdown page's PNGs are written first, beside it
        page = _html_page(title, blocks, stamp) if html else _markdown_page(blocks, path)
        temporary.write_text(page, encoding="utf-8")

    write_atomically(path, write, "the report")
    return path


def _blocks(
    fit, name, others, failed, stamp, compared, read, ci, unique_tokens, extrapolation, backtest
):
    """The report's blocks, in order (:func:`write_report`'s arguments, checked).

    The banner is made last, as the sections may compute the fit's own backtest, whose
    failure it reports too.
    """
    body = [
        Heading(f"{name}: posterior report{' (NOT CONVERGED)' if stamp else ''}", 1),
        Text(_overview(fit)),
        Contents(),
        *_diagnostics_section(fit),
        *_data_section(fit),
        *_law_section(fit),
        *_model_section(fit),
        *_sampler_section(fit),
        *_posterior_section(fit, ci),
        *_figures_section(fit, stamp),
        *_targets_section(fit, read, ci, unique_tokens, extrapolation, stamp),
        *_comparison_section(name, fit, others, read, compared, extrapolation),
        *_backtest_section(backtest),
        *_checklist_section(fit, backtest),
    ]
    return [_banner(fit, name, failed, own=extrapolation == "calibrated"), *body]


# ---------------------------------------------------------------------------- blocks
# Each block renders itself both ways; user text is escaped here and nowhere else.


def escape(text):
    """``text`` safe as text inside HTML and Markdown (both render raw HTML tags)."""
    return html.escape(str(text), quote=False)


def _attribute(text):
    """``text`` safe inside a double-quoted HTML attribute."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Heading:
    """A section title; level-2 headings are listed in the contents."""

    text: str
    level: int = 2

    @property
    def anchor(self):
        """The heading's id: its words, lower case, joined by hyphens."""
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-")

    def html(self):
        """``<hN id=...>``."""
        return f'<h{self.level} id="{self.anchor}">{escape(self.text)}</h{self.level}>'

    def markdown(self, save):
        """``## title``."""
        return f"{'#' * self.level} {escape(self.text)}"


@dataclass(frozen=True)
class Contents:
    """Links to the level-2 headings (filled in by the page renderer)."""

    headings: tuple = ()

    def html(self):
        """A ``<nav>`` of in-page links (fragments only: nothing is fetched)."""
        links = " ".join(f'<a href="#{h.anchor}">{escape(h.text)}</a>' for h in self.headings)
        return f"<nav>{links}</nav>"

    def markdown(self, save):
        """Markdown viewers build their own outline."""
        return ""


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind`` ``"note"`` (quiet) or ``"warn"`` (a warning raised on the way)."""

    text: str
    kind: str = "p"

    def html(self):
        """``<p>``, classed by kind."""
        cls = "" if self.kind == "p" else f' class="{self.kind}"'
        return f"<p{cls}>{escape(self.text)}</p>"

    def markdown(self, save):
        """The paragraph; a warning in bold, a note quoted."""
        prefix, suffix = {"p": ("", ""), "note": ("> ", ""), "warn": ("**", "**")}[self.kind]
        return f"{prefix}{escape(self.text)}{suffix}"


@dataclass(frozen=True)
class Table:
    """A table of a DataFrame, numbers to 4 significant digits; ``flagged`` rows in red."""

    frame: pd.DataFrame
    caption: str = ""
    index: bool = True
    flagged: frozenset = frozenset()

    def _rows(self):
        """The escaped header, and rows of ``(escaped text, is a number)`` cells."""
        frame = self.frame.reset_index() if self.index else self.frame
        header = ["" if self.index and i == 0 and c == "index" else c for i, c in enumerate(frame)]
        rows = [
            [(escape(_cell(v)), _is_number(v)) for v in row]
            for row in frame.itertuples(index=False)
        ]
        return [escape(h) for h in header], rows

    def html(self):
        """A captioned ``<table>``, numbers right-aligned."""
        header, rows = self._rows()
        caption = f'<p class="caption">{escape(self.caption)}</p>' if self.caption else ""
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join(
            f"<tr{' class="fail"' if i in self.flagged else ''}>"
            + "".join(f"<td{' class="n"' if number else ''}>{text}</td>" for text, number in row)
            + "</tr>"
            for i, row in enumerate(rows)
        )
        return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def markdown(self, save):
        """A pipe table; flagged rows in bold."""
        header, rows = self._rows()

        def line(cells, bold=False):
            cells = [c.replace("|", "\\|") for c in cells]
            return "| " + " | ".join(f"**{c}**" if bold and c else c for c in cells) + " |"

        out = [f"**{escape(self.caption)}**", ""] if self.caption else []
        out += [line(header), "|" + "---|" * len(header)]
        out += [line([text for text, _ in row], i in self.flagged) for i, row in enumerate(rows)]
        return "\n".join(out)


@dataclass(frozen=True)
class Image:
    """A PNG and its caption; ``name`` (a fixed slug, never user text) names its file."""

    png: bytes
    caption: str
    name: str

    def html(self):
        """A ``<figure>`` with the PNG inline as a ``data:`` URI."""
        data = base64.b64encode(self.png).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{_attribute(self.caption)}">'
            f"<figcaption>{escape(self.caption)}</figcaption></figure>"
        )

    def markdown(self, save):
        """``![caption](folder/NN-name.png)``, the PNG written by ``save``."""
        return f"![{escape(self.caption)}]({save(self.name, self.png)})\n\n{escape(self.caption)}"


@dataclass(frozen=True)
class Formula:
    """A law's formula: LaTeX source, and its rendering where matplotlib's mathtext can."""

    tex: str
    png: bytes | None = None

    def html(self):
        """The rendered image over the copyable LaTeX source."""
        image = (
            f'<img src="data:image/png;base64,{base64.b64encode(self.png).decode("ascii")}" '
            f'alt="formula">'
            if self.png
            else ""
        )
        return f"<figure>{image}<pre>{escape(self.tex)}</pre></figure>"

    def markdown(self, save):
        """A ``math`` block (GitHub and most Markdown viewers render it)."""
        return f"```math\n{self.tex}\n```"


@dataclass(frozen=True)
class Banner:
    """The report's first block: loud when a fit failed its checks, calm otherwise."""

    failed: bool
    headline: str
    lines: tuple = field(default_factory=tuple)

    def html(self):
        """A sticky red alert, or a green-edged line."""
        if not self.failed:
            return f'<p class="calm">{escape(self.headline)}</p>'
        items = "".join(f"<li>{escape(line)}</li>" for line in self.lines)
        return (
            f'<div class="banner" role="alert"><strong>{escape(self.headline)}</strong>'
            f"<ul>{items}</ul></div>"
        )

    def markdown(self, save):
        """A block quote, headline in capitals and bold, each failed check listed."""
        if not self.failed:
            return f"> {escape(self.headline)}"
        return "\n".join(
            [f"> **⚠ {escape(self.headline)}**", ">", *(f"> - {escape(x)}" for x in self.lines)]
        )


def _is_number(value):
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _cell(value):
    """A table cell's text: numbers to 4 significant digits, NaN as a dash."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "–" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def _html_page(title, blocks, stamp):
    """The whole HTML document: inline style, no script, nothing fetched."""
    headings = tuple(b for b in blocks if isinstance(b, Heading) and b.level == 2)
    blocks = [Contents(headings) if isinstance(b, Contents) else b for b in blocks]
    prefix = "NOT CONVERGED: " if stamp else ""
    body = "\n".join(b.html() for b in blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(prefix + title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _markdown_page(blocks, path):
    """The Markdown text; each image saved as ``<stem>_files/NN-name.png`` beside ``path``."""
    folder = path.with_name(f"{path.stem}_files")
    count = itertools.count(1)

    def save(name, png):
        folder.mkdir(exist_ok=True)
        file = folder / f"{next(count):02d}-{name}.png"
        file.write_bytes(png)
        return f"{folder.name}/{file.name}"

    parts = (b.markdown(save) for b in blocks)
    return "\n\n".join(p for p in parts if p) + "\n"


# ---------------------------------------------------------------------------- figures


def _png(fig, stamp=False, tight=False):
    """``fig`` as PNG bytes, stamped "NOT CONVERGED" when ``stamp``; the figure is closed.

    The stamp is drawn into the image itself, so a figure copied out of the report still
    says that the fit behind it failed its checks. ``tight`` crops to what was drawn.
    """
    try:
        if stamp:
            fig.text(
                0.5,
                0.5,
                "NOT CONVERGED",
                ha="center",
                va="center",
                rotation=20,
                fontsize=42,
                color="#b00020",
                alpha=0.3,
                zorder=100,
            )
        buffer = io.BytesIO()
        fig.savefig(
            buffer,
            format="png",
            dpi=DPI,
            bbox_inches="tight" if tight else None,
            pad_inches=0.08,
        )
        return buffer.getvalue()
    finally:
        plt.close(fig)  # a no-op for figures pyplot does not hold, as plots.py's are
        fig.clear()


def _figure(draw, caption, name, stamp):
    """``[Image]`` of the figure ``draw()`` returns, or a note saying why there is none.

    Figures that depend on the law's shape (a fan needs a scale to extrapolate along, an
    isoFLOP view needs ``N`` and ``D``) refuse other laws with a :class:`SpecError`
    that says why; the report passes that on instead of failing.
    """
    try:
        fig = draw()
    except errors.SpecError as err:
        return [Text(f"No figure '{caption}': {err}", "note")]
    return [Image(_png(fig, stamp), caption, name)]


def _formula_png(tex):
    r"""The formula rendered by matplotlib's mathtext, or None where it cannot parse it.

    mathtext lacks ``\big``-style delimiter sizes, so they are dropped (plain parentheses
    read the same); anything else it cannot parse leaves the LaTeX source alone.
    """
    line = re.sub(r"\\[bB]igg?[lr]?(?![a-zA-Z])", "", " ".join(tex.split()))
    fig = Figure(figsize=(0.1, 0.1))
    fig.text(0, 0, f"${line}$", fontsize=15)
    try:
        return _png(fig, tight=True)
    except ValueError:  # mathtext's parse errors
        return None


# ---------------------------------------------------------------------------- sections


def _check_compare(compare, name):
    """The fits to compare with, checked: a dict of ScalingFit whose labels differ from ``name``."""
    if compare is None:
        return {}
    if not isinstance(compare, dict) or not compare:
        raise errors.SpecError(f"compare= takes a dict of label -> ScalingFit, got {compare!r}")
    if wrong := [k for k, f in compare.items() if not isinstance(f, ScalingFit)]:
        raise errors.SpecError(f"compare= takes bayescale fits; {wrong} are not")
    if name in compare:
        raise errors.SpecError(
            f"compare= uses the label {name!r}, which is this fit's: pass name= or relabel"
        )
    return {str(k): f for k, f in compare.items()}


def _checks(d):
    """``(check, value, requirement, status)`` of every check of ``d`` (:meth:`Diagnostics.checks`).

    ``status`` is ``"pass"``, ``"FAIL"`` or ``"not recorded"`` (a statistic the sampler did
    not keep); ``d.ok`` and ``d.messages`` remain the verdict.
    """
    return [
        (check, NOT_RECORDED, requirement, NOT_RECORDED)
        if passed is None
        else (check, shown, requirement, "pass" if passed else "FAIL")
        for check, shown, requirement, passed in d.checks()
    ]


def _banner(fit, name, failed, own=True):
    """Loud when any fit in the report failed a check: each failure and every value.

    The fits are the report's own, those compared with it and a backtest's (``failed``,
    by label); the fit's own backtest, where one was computed and failed, is named too
    where its error is used (``own``: ``extrapolation="calibrated"``).
    """
    own = own and fit.own_backtest_failure()
    if not failed and not own:
        values = "; ".join(f"{check} {value}" for check, value, *_ in _checks(fit.diagnostics))
        return Banner(False, f"Converged: every convergence check passed ({values}).")
    lines = []
    for label, f in failed.items():
        d = f.diagnostics
        who = "this fit" if label == name else _other(label)
        lines += [f"{who}: {m}" for m in d.messages]
        values = "; ".join(
            f"{check} {value} ({'FAILS ' if status == 'FAIL' else ''}{requirement})"
            for check, value, requirement, status in _checks(d)
        )
        lines.append(f"{who}, every check: {values}")
    if own:
        lines.append(f"this fit: {own}")
    if name in failed:
        headline = "NOT CONVERGED: do not use these results"
    elif failed:
        headline = (
            "A FIT BEHIND THIS REPORT DID NOT CONVERGE: its numbers here are not to be trusted"
        )
    else:
        headline = (
            "THE FIT'S OWN BACKTEST DID NOT CONVERGE: the extrapolation error it centres is suspect"
        )
    return Banner(True, headline, tuple(lines))


def _other(label):
    """How the banner names a fit other than the report's: compared, or a backtest's."""
    return label if label.startswith("backtest fit ") else f"compared fit {label!r}"


def _overview(fit):
    """One sentence: what was fitted to what, how."""
    spec, data = fit.spec, fit.data
    groups = f" in {len(fit.group_labels)} groups of {spec.group!r}" if spec.group else ""
    return (
        f"Law {fit.law.name!r} fitted to {len(data.frame)} rows of {data.y!r}{groups}, "
        f"likelihood {fit.likelihood.name!r}, NUTS ({spec.sampler}) with {spec.chains} chains "
        f"of {spec.draws} draws, seed {spec.random_seed}; "
        f"bayescale {spec.versions.get('bayescale', NOT_RECORDED)}."
    )


def _diagnostics_section(fit):
    d = fit.diagnostics
    checks = _checks(d)
    table = pd.DataFrame(checks, columns=["check", "value", "requirement", "status"])
    flagged = frozenset(i for i, row in enumerate(checks) if row[3] == "FAIL")
    blocks = [Heading("Convergence"), Table(table, index=False, flagged=flagged)]
    blocks += [Text(m, "warn") for m in d.messages]
    if np.isfinite(d.mean_steps):
        blocks.append(Text(f"Mean leapfrog steps per draw: {d.mean_steps:.0f}.", "note"))
    return blocks


def _has_nd(fit):
    return {"N", "D"} <= set(fit.law.inputs)


def _data_section(fit):
    data, spec = fit.data, fit.spec
    frame = data.frame
    rows = [
        (fit.spec.column(k), f"input {k}", frame[k].min(), frame[k].max(), frame[k].nunique())
        for k in fit.law.inputs
    ]
    if _has_nd(fit):
        c = decisions.fitted_compute(fit)
        rows.append((f"{spec.flops_per_token:g} N D", "compute C", c.min(), c.max(), None))
    y = frame[data.y]
    rows.append((data.y, "response", y.min(), y.max(), y.nunique()))
    if data.y_log_sd:
        sd = frame[data.y_log_sd]
        rows.append((data.y_log_sd, "known sd of log y", sd.min(), sd.max(), sd.nunique()))
    ranges = pd.DataFrame(rows, columns=["column", "role", "min", "max", "distinct values"])
    blocks = [
        Heading("Data"),
        Text(f"{len(frame)} rows fitted. {_exclusions(frame.index)}"),
        Table(ranges, index=False),
    ]
    if spec.group:
        counts = frame[spec.group].value_counts().reindex(fit.group_labels)
        table = pd.DataFrame({"group": counts.index, "rows": counts.to_numpy()})
        blocks.append(Table(table, f"groups of column {spec.group!r}", index=False))
    return blocks


def _exclusions(index):
    """What the fitted rows' labels say about rows left out before fitting.

    A table read from a file is numbered from 0, and pandas keeps the numbers of the rows
    a filter keeps: labels missing below the largest are rows left out. Rows after the
    largest, or dropped before the table was numbered, leave no trace.
    """
    unknown = f"rows after the last label, or left out before numbering, are {NOT_RECORDED}"
    if not pd.api.types.is_integer_dtype(index) or index.min() < 0:
        return f"Rows carry labels, not row numbers: which rows were left out is {NOT_RECORDED}."
    last = int(index.max())
    missing = last + 1 - index.nunique()
    if missing == 0:
        return f"Row labels run 0-{last} without gaps: no rows left out ({unknown})."
    return (
        f"Row labels run {int(index.min())}-{last}: {missing} of the labels 0-{last} are "
        f"missing, rows left out before fitting (why is {NOT_RECORDED}; {unknown})."
    )


def _plain(rst):
    """Docstring text as plain text: one line, without double backticks or ``:role:`` marks."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(rst.split()))
    return text.replace("``", "")


def _law_text(law):
    """``(summary, formula, references)`` from the law class's docstring (None where absent).

    Laws document themselves: a one-line summary, the formula as a ``.. math::`` block
    (the first is the law as published; later ones its sampled parameterisation) and a
    References section.
    """
    doc = inspect.getdoc(type(law)) or ""
    summary = _plain(doc.split("\n\n")[0])
    block = re.search(r"\.\. math::\n\n((?:(?: {4}.*)?\n?)+)", doc)
    formula = inspect.cleandoc(block.group(1)) if block else None
    refs = re.search(r"References\n-+\n(.*?)(?=\n\S[^\n]*\n-{3,}\n|\Z)", doc, re.S)
    references = _plain(refs.group(1)) if refs else None
    return summary or None, formula, references


def _law_section(fit):
    law = fit.law
    summary, formula, references = _law_text(law)
    blocks = [
        Heading("Law"),
        Text(f"{law.label}: {summary or NOT_RECORDED}"),
    ]
    if formula:
        blocks.append(Formula(formula, _formula_png(formula)))
    else:
        blocks.append(Text(f"Formula: {NOT_RECORDED} in the law's docstring.", "note"))
    blocks.append(Text(f"Reference: {references or law.citation or NOT_RECORDED}"))
    scales = pd.DataFrame(
        {
            "input": list(fit.log_ref),
            "column": [fit.spec.column(k) for k in fit.log_ref],
            "reference scale": np.exp(list(fit.log_ref.values())),
        }
    )
    blocks.append(
        Table(
            scales,
            "reference scales: the law sees inputs relative to these (the data's geometric "
            "centre, one significant figure)",
            index=False,
        )
    )
    return blocks


def _priors_table(fit):
    """Every prior with its role, whether the user set it and (with groups) the pooling."""
    spec = fit.spec
    defaults = resolve_priors(
        fit.law, fit.likelihood, None, pooling_mod.hyper_priors(dict(spec.pooling))
    )
    rows = []
    for name, prior in spec.priors.items():
        role = (
            "law"
            if name in fit.law.priors
            else "likelihood"
            if name in fit.likelihood.priors
            else "group scale"
        )
        pooling = _POOLING_TEXT.get(spec.pooling.get(name, ""), "")
        setter = "default" if defaults.get(name) == prior else "user"
        rows.append((name, repr(prior), role, pooling, setter))
    table = pd.DataFrame(rows, columns=["parameter", "prior", "role", "pooling", "set by"])
    return table if spec.group else table.drop(columns="pooling")


def _likelihood_text(fit):
    lik = fit.likelihood
    options = ", ".join(f"{k}={v!r}" for k, v in lik.to_dict().items() if k != "name")
    doc = (inspect.getdoc(type(lik)) or "").split("\n\n")[0]
    known = (
        f"; known sd of log y per row from column {fit.spec.y_log_sd!r}, added in quadrature"
        if fit.spec.y_log_sd
        else ""
    )
    return f"{lik.name}{f'({options})' if options else ''}: {_plain(doc)}{known}"


def _model_section(fit):
    spec = fit.spec
    if spec.group:
        pooling = (
            f"Groups: column {spec.group!r}, {len(spec.labels)} labels; each law parameter's "
            "pooling is in the table (the group scales are the hierarchies' spreads)."
        )
    else:
        pooling = "No groups: every parameter is shared by all rows."
    return [
        Heading("Model"),
        Text(f"Likelihood: {_likelihood_text(fit)}"),
        Text(pooling),
        Table(_priors_table(fit), "priors", index=False),
    ]


def _sampler_section(fit):
    spec = fit.spec
    depth = fit.posterior["sample_stats"].attrs.get("max_tree_depth")
    settings = {
        "sampler": f"NUTS ({spec.sampler})",
        "chains": spec.chains,
        "draws per chain": spec.draws,
        "tuning steps per chain": spec.tune,
        "target_accept": spec.target_accept,
        "max tree depth": NOT_RECORDED if depth is None else int(depth),
        "random_seed": spec.random_seed,
        "initialisation": _INITIALISATION.get(spec.sampler, NOT_RECORDED),
        "flops_per_token": spec.flops_per_token,
    }
    versions = dict(spec.versions) or {"versions": NOT_RECORDED}
    return [
        Heading("Sampler and versions"),
        Table(pd.DataFrame({"value": [str(v) for v in settings.values()]}, index=settings)),
        Table(pd.DataFrame({"version": list(versions.values())}, index=list(versions))),
    ]


def _posterior_section(fit, ci):
    return [
        Heading("Posterior"),
        Table(
            fit.summary(ci=ci),
            f"posterior medians, means and {ci:.0%} equal-tailed intervals; derived "
            "quantities after the sampled ones",
        ),
    ]


def _figures_section(fit, stamp):
    grouped = bool(fit.spec.group)
    figures = [
        (lambda: plots.fit_plot(fit), "runs with the law's posterior median and bands", "fit"),
        (
            lambda: plots.residual_plot(fit),
            "residuals against the quantities a wrong shape shows along",
            "residuals",
        ),
        (lambda: plots.posterior_plot(fit), "marginal posteriors (90% intervals)", "posterior"),
        (lambda: plots.prior_posterior_plot(fit), "priors under posteriors", "prior-posterior"),
        (lambda: plots.ppc_plot(fit), "posterior predictive check", "ppc"),
    ]
    if grouped:
        figures.insert(
            3, (lambda: plots.forest_plot(fit), "parameters by group (50%, 90%)", "forest")
        )
    blocks = [Heading("Figures")]
    for draw, caption, name in figures:
        blocks += _figure(draw, caption, name, stamp)
    rank = "rank ECDFs of each chain (convergence)"
    if fit.diagnostics.chains < 2:  # ranks compare chains: one chain has nothing to compare
        blocks.append(Text(f"No figure '{rank}': it needs two or more chains.", "note"))
    else:
        blocks += _figure(lambda: plots.rank_plot(fit), rank, "rank", stamp)
    return blocks


@dataclass(frozen=True)
class _Targets:
    """The user's targets, read: rows to predict, FLOP budgets and each target's scale.

    Attributes
    ----------
    rows : DataFrame or None
        The targets as given, to predict at; None when they are budgets alone.
    budgets : DataFrame or None
        Columns ``C`` and ``group``, for a law in ``N`` and ``D`` given compute.
    scale_key : str or None
        What a fan runs along: ``"C"``, or the law's one input (None for other laws).
    scale : DataFrame or None
        Columns ``value`` (each target's value of ``scale_key``) and ``group``.
    labels : ndarray
        Each target's group label (None for an ungrouped fit).
    """

    rows: pd.DataFrame | None
    budgets: pd.DataFrame | None
    scale_key: str | None
    scale: pd.DataFrame | None
    labels: np.ndarray


def _read_targets(fit, targets):
    """Read ``targets`` as rows to predict, or as budgets when they give ``C`` alone."""
    if isinstance(targets, dict) and all(np.ndim(v) == 0 for v in targets.values()):
        targets = {k: [v] for k, v in targets.items()}  # one row given as scalars
    table = read_table(targets)
    group = fit.spec.group
    if group and group not in table:
        raise errors.SpecError(
            f"targets for a fit grouped by {group!r} need that column (a fitted group, or a "
            f"new label for a new group); the targets have {list(table.columns)}"
        )
    labels = table[group].astype(str).to_numpy() if group else np.full(len(table), None)
    # a target names an input as the fit's table did, or as the law does ("C=1e23")
    compute_column = c if (c := fit.spec.column("C")) in table else "C"
    nd = _has_nd(fit)
    budgets = None
    if nd and compute_column in table:
        compute = numeric_column(table, compute_column, "compute C of a target")
        budgets = pd.DataFrame({"C": compute, "group": labels})
    # budgets alone only where no other input is given: "C=1e23,D=1e13" is a row to
    # predict, which predict refuses for its missing N, not a budget with D dropped
    inputs = {c for k in fit.law.inputs for c in (k, fit.spec.column(k)) if c != compute_column}
    rows = None if budgets is not None and not inputs & set(table.columns) else table
    if nd:
        key = "C"
        values = (
            budgets["C"].to_numpy()
            if budgets is not None
            else decisions.row_compute(fit.spec.prediction_frame(table), fit.spec.flops_per_token)
        )
    elif len(fit.law.inputs) == 1:
        key = fit.law.inputs[0]
        values = fit.spec.prediction_frame(table)[key].to_numpy(float)
    else:
        key = values = None
    scale = None if key is None else pd.DataFrame({"value": values, "group": labels})
    return _Targets(rows, budgets, key, scale, labels)


def _recorded(call):
    """``(result, notes)``: ``call()``'s result and the bayescale warnings it raised, as notes.

    A report shows its own warnings (unreliable LOO, draws undefined at a target) where
    they apply; other warnings are passed on unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    notes = []
    for w in caught:
        if w.category.__module__ == errors.__name__:
            notes.append(Text(f"Warning: {w.message}", "warn"))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, notes


def _interval_columns(table, names, ci):
    """Collapse ``{q}_median/_lower/_upper`` columns into one ``"median [lower, upper]"`` each."""
    out = table.drop(columns=[f"{q}_{p}" for q in names for p in ("median", "lower", "upper")])
    for q in names:
        out[f"{q} (median [{ci:.0%}])"] = [
            f"{m:.4g} [{lo:.4g}, {hi:.4g}]"
            for m, lo, hi in table[[f"{q}_median", f"{q}_lower", f"{q}_upper"]].to_numpy()
        ]
    return out[[c for c in out if c != "reach"] + ["reach"]]


def _targets_section(fit, read, ci, unique_tokens, extrapolation, stamp):
    if read is None:
        return []
    blocks = [Heading("Predictions at the targets")]
    if read.rows is not None:
        table, notes = _recorded(lambda: fit.predict(read.rows, ci=ci, extrapolation=extrapolation))
        blocks += [
            Table(
                table,
                f"median and {ci:.0%} interval of the law's value (kind='mean'), reach and "
                "extrapolation share",
                index=False,
            ),
            *notes,
            *_new_groups_text(table),
            Text(
                "reach: the row's scale over the largest fitted run's (1 inside the data); "
                "extrapolation_share: the part of the interval's width (on the log scale) "
                f"that the extrapolation error adds (extrapolation={extrapolation!r}"
                + (f": {table.attrs['extrapolation']}" if "extrapolation" in table.attrs else "")
                + ").",
                "note",
            ),
        ]
    else:
        blocks.append(
            Text(
                "The targets are FLOP budgets alone: each is answered at every posterior "
                "draw's compute-optimal allocation (below), the loss there being the prediction."
            )
        )
    if read.scale_key is None:
        blocks.append(Text(f"No fan: law {fit.law.name!r} has no single scale axis.", "note"))
    else:
        for label, rows in _by_group(read.scale):
            to = {read.scale_key: float(rows["value"].max())}
            where = "" if label is None else f" for group {label}"
            blocks += _figure(
                lambda to=to, label=label: plots.extrapolation_plot(
                    fit, to, group=label, extrapolation=extrapolation, unique_tokens=unique_tokens
                ),
                f"extrapolation to {read.scale_key} = {to[read.scale_key]:.3g}{where}",
                "fan",
                stamp,
            )
    if read.budgets is not None:
        blocks += _optimal_blocks(fit, read.budgets, ci, unique_tokens, extrapolation, stamp)
    return blocks


def _new_groups_text(table):
    """A warning naming the group labels of ``table`` its fit has not seen, if any."""
    new = table.attrs.get("new_groups")
    text = f"Groups not in the fit, predicted from the population of groups: {new}."
    return [Text(text, "warn")] if new else []


def _by_group(frame):
    """``(label, rows)`` per group label of ``frame`` (one ``(None, frame)`` without groups)."""
    if frame["group"].isna().all():
        return [(None, frame)]
    return list(frame.groupby("group", sort=False))


def _optimal_blocks(fit, budgets, ci, unique_tokens, extrapolation, stamp):
    """The compute-optimal table at the target budgets, the isoFLOP and frontier figures."""
    blocks = [Heading("Compute-optimal allocation at the target budgets", 3)]
    tables = []
    for label, rows in _by_group(budgets):
        c = rows["C"].to_numpy()
        table, notes = _recorded(
            lambda c=c, label=label: decisions.compute_optimal(
                fit,
                c,
                ci=ci,
                group=label,
                unique_tokens=unique_tokens,
                extrapolation=extrapolation,
            )
        )
        if label is not None:
            table.insert(0, "group", label)
        tables.append(table)
        blocks += notes
        where = "" if label is None else f" for group {label}"
        blocks += _figure(
            lambda c=c, label=label: plots.isoflop_plot(
                fit, c, group=label, unique_tokens=unique_tokens, extrapolation=extrapolation
            ),
            f"isoFLOP curves at the target budgets{where}",
            "isoflop",
            stamp,
        )
        blocks += _figure(
            lambda c=c, label=label: plots.frontier_plot(
                fit, c, group=label, unique_tokens=unique_tokens
            ),
            f"compute-optimal N*(C) and D*(C){where}",
            "frontier",
            stamp,
        )
    table = _interval_columns(pd.concat(tables, ignore_index=True), decisions.SUMMARIES, ci)
    caption = (
        "per posterior draw: the N and D that minimise the law's loss at C = "
        f"{fit.spec.flops_per_token:g} N D, and the loss there; reach = C / largest fitted C"
    )
    blocks.insert(1, Table(table, caption, index=False))
    return blocks


def _comparison_section(name, fit, others, read, stamp, extrapolation):
    if not others:
        return []
    fits = {name: fit, **others}
    table, notes = _recorded(lambda: compare_fits(fits))
    group = None
    if fit.spec.group:  # one group's predictions; the first target's, or the first fitted
        group = read.labels[0] if read is not None else fit.group_labels[0]
    to = None
    if read is not None and read.scale is not None:
        to = {fit.spec.column(read.scale_key): float(read.scale["value"].max())}
    where = "" if group is None else f" (group {group})"
    unconverged = [label for label, f in others.items() if not f.converged]
    blocks = [
        Heading("Comparison"),
        Table(
            table,
            "PSIS-LOO: expected log predictive density (elpd; higher is better), its "
            "standard error, the difference to the best and stacking weights",
        ),
        *notes,
        *(Text(f"Compared fit {label!r} did NOT converge.", "warn") for label in unconverged),
    ]
    blocks += _figure(
        lambda: plots.comparison_plot(fits, to=to, group=group, extrapolation=extrapolation),
        f"the fits' predictions overlaid{where}",
        "comparison",
        stamp,
    )
    return blocks


def _backtest_section(backtest):
    if backtest is None:
        return []
    return [
        Heading("Backtest"),
        Table(backtest.table, "scores on held-out rows, by method"),
        *_figure(
            lambda: plots.backtest_plot(backtest),
            "held-out predictions and coverage",
            "backtest",
            False,  # its fits' own convergence is in the table
        ),
    ]


def _checklist_section(fit, backtest):
    spec, data, law = fit.spec, fit.data, fit.law
    summary, formula, _ = _law_text(law)
    priors = _priors_table(fit)
    user = priors.loc[priors["set by"] == "user", "parameter"].tolist()
    derived = [k for k in fit.parameter_names if k not in fit.sampled_names]
    scales = ", ".join(f"{k}_ref = {np.exp(v):.3g}" for k, v in fit.log_ref.items())
    items = {
        "Functional form": (
            f"{law.name}, {summary or NOT_RECORDED} "
            f"({law.citation or 'citation ' + NOT_RECORDED}); "
            + ("formula under Law" if formula else f"formula {NOT_RECORDED}")
        ),
        "Parameterisation": (
            f"free: {', '.join(law.parameters)}, on inputs relative to reference scales "
            f"({scales}); the likelihood is a density of {fit.likelihood.scale}"
            + (f"; reported as derived: {', '.join(derived)}" if derived else "")
        ),
        "Data subset and exclusions": (
            f"{len(data.frame)} rows of response {data.y!r}"
            + (f", {len(spec.labels)} groups of {spec.group!r}" if spec.group else "")
            + f". {_exclusions(data.frame.index)}"
        ),
        "FLOP rule": _flop_rule(fit),
        "Model size N": (
            f"column {fit.spec.column('N')!r} as given; whether it counts embedding parameters "
            f"is {NOT_RECORDED}"
            if "N" in law.inputs
            else f"not applicable: law {law.name!r} has no model-size input"
        ),
        "Likelihood / loss": _likelihood_text(fit),
        "Priors": (
            f"{len(priors)} priors, "
            + (f"set by the user: {', '.join(user)}" if user else "all bayescale's defaults")
            + "; listed under Model"
        ),
        "Sampler and initialisation": (
            f"NUTS ({spec.sampler}), {spec.chains} chains x {spec.draws} draws after "
            f"{spec.tune} tuning steps, target_accept {spec.target_accept}, random_seed "
            f"{spec.random_seed}; initialisation: "
            f"{_INITIALISATION.get(spec.sampler, NOT_RECORDED)}"
        ),
        "Number of runs": _runs(fit),
        "Held-out validation": _validation(backtest),
        "Convergence": (
            "every check passed (under Convergence)"
            if fit.converged
            else "NOT CONVERGED: " + "; ".join(fit.diagnostics.messages)
        ),
        "Software": ", ".join(f"{k} {v}" for k, v in spec.versions.items()) or NOT_RECORDED,
    }
    table = pd.DataFrame({"item": list(items), "this fit": list(items.values())})
    return [
        Heading("Reproducibility checklist"),
        Text(f"After {MISFITTING}; '{NOT_RECORDED}' marks what the fit cannot know.", "note"),
        Table(table, index=False),
    ]


def _flop_rule(fit):
    spec = fit.spec
    if not _has_nd(fit):
        return f"not applicable: law {fit.law.name!r} has no N and D to count FLOPs from"
    k = spec.flops_per_token
    if "C" in spec.inputs:
        source = f"tokens D derived as C / ({k:g} N) from compute column {spec.inputs['C']!r}"
    else:
        source = f"whether D was given or derived from a compute column is {NOT_RECORDED}"
    return f"C = {k:g} N D (flops_per_token = {k:g}); {source}"


def _runs(fit):
    frame = fit.data.frame
    settings = frame[list(fit.law.inputs)].drop_duplicates()
    text = f"{len(frame)} rows at {len(settings)} distinct input settings"
    if "N" in fit.law.inputs:
        text += f", {frame['N'].nunique()} model sizes"
    return text + f"; whether rows are separate runs or checkpoints of one run is {NOT_RECORDED}"


def _validation(backtest):
    if backtest is None:
        return (
            f"{NOT_RECORDED}: no backtest was given to this report "
            "(bayescale backtest / bayescale.backtest)"
        )
    table = backtest.table
    text = f"done: {len(backtest.predictions)} held-out rows, methods {', '.join(table.index)}"
    if "coverage_90" in table:
        coverage = ", ".join(f"{m} {c:.0%}" for m, c in table["coverage_90"].items())
        text += f"; coverage of the 90% intervals: {coverage}"
    return text + " (under Backtest)"
