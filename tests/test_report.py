"""Reports (issue 22, item 2): one self-contained file that cannot pass a failed fit as good.

The fast lane reads the HTML's structure on fits built from given draws (no sampling, no
browser): every image inline and a real PNG, nothing fetched, the banner first and loud for
a fit that failed its checks and absent otherwise, the checklist filled, user text escaped,
the Markdown variant's PNGs beside it. The slow lane renders a real Chinchilla fit's report
in headless Chromium, driven over the DevTools protocol on a pipe (standard library only).
"""

import base64
import dataclasses
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from test_plots import POWER, TRUTH, nd_design

import bayescale
from bayescale import Prior, SpecError, extrapolation, report
from bayescale.errors import FitFileError
from bayescale.report import write_report
from bayescale.testing import fake_fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELLS = re.compile(r"<tr><td>([^<]+)</td><td>([^<]*)</td></tr>")
"""Rows of a two-column text table (the checklist): item, value."""
CHECKLIST = (
    "Functional form",
    "Parameterisation",
    "Data subset and exclusions",
    "FLOP rule",
    "Model size N",
    "Likelihood / loss",
    "Priors",
    "Sampler and initialisation",
    "Number of runs",
    "Held-out validation",
    "Convergence",
    "Software",
)


def chinchilla_draws(n, seed, shift=0.0):
    """``n`` independent draws around the truth; ``shift`` moves the second half's exponents."""
    rng = np.random.default_rng(seed)
    draws = {k: v * np.exp(0.03 * rng.standard_normal(n)) for k, v in TRUTH.items()}
    draws["alpha"][n // 2 :] += shift
    return draws | {"sigma": 0.01 + 0.002 * rng.random(n)}


DRAWS = 600
"""Independent draws in 2 chains: ESS near 600, well above the 200 the checks ask for."""

ROWS = {"N": [1e9, 7e10], "D": [2e10, 1.4e12], "C": [1.2e20, 5.88e23]}
"""Targets: rows to predict (N, D) whose compute C also makes them budgets."""


@pytest.fixture(scope="module")
def good():
    """Every check passes."""
    fit = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 0), chains=2)
    assert fit.converged
    return fit


@pytest.fixture(scope="module")
def bad():
    """Two chains that disagree on alpha: r-hat fails."""
    fit = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 1, shift=0.05), chains=2)
    assert not fit.converged and fit.diagnostics.max_r_hat > 1.01
    return fit


def rendered(fit, path, **options):
    """The report's HTML and, per figure drawn, whether it was stamped NOT CONVERGED."""
    stamps = []
    draw = report._png

    def spy(fig, stamp=False, tight=False):
        png = draw(fig, stamp, tight)
        stamps.append(stamp)
        return png

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "_png", spy)
        text = write_report(fit, path, **options).read_text()
    return text, stamps


@pytest.fixture(scope="module")
def good_html(good, tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    text, stamps = rendered(good, folder / "report.html", targets=ROWS, ci=0.8)
    return folder, text, stamps


@pytest.fixture(scope="module")
def bad_html(bad, tmp_path_factory):
    return rendered(bad, tmp_path_factory.mktemp("bad") / "report.html")


@pytest.fixture
def no_figures(monkeypatch):
    """Reports without pixels, for tests of their text: drawing is most of a report's time."""
    monkeypatch.setattr(
        report, "_figure", lambda draw, caption, name, stamp: [report.Text(caption, "note")]
    )


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_a_full_disk_leaves_no_partial_report(good, tmp_path, no_figures, monkeypatch, suffix):
    from pathlib import Path

    def full_disk(self, text, **kwargs):
        Path.write_bytes(self, text[:100].encode())  # half a page, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(FitFileError, match=r"cannot write the report to .*No space left"):
        good.report(tmp_path / f"report{suffix}")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def grouped():
    """A fit grouped by labels that are markup, alpha pooled.

    Its draws ignore the data, so one chain's log-likelihood trails the other's by more
    than the checks allow: a failed fit, with a banner.
    """
    labels = ["<b>bold</b>", "a&b"]
    frame = pd.concat([nd_design(label) for label in labels], ignore_index=True)
    draws = chinchilla_draws(DRAWS, 2)
    alpha = draws.pop("alpha")
    rng = np.random.default_rng(3)
    draws |= {
        "alpha": np.stack([alpha * 0.97, alpha * 1.03], axis=1),
        "alpha_mu": alpha,
        "alpha_tau": 0.05 + 0.01 * rng.random(DRAWS),
    }
    pooling = dict.fromkeys(TRUTH, "shared") | {"alpha": "pooled"}
    return fake_fit(frame, "chinchilla", draws, group="g", pooling=pooling, chains=2)


class Page(HTMLParser):
    """Every tag with its attributes, in order, and the text of the body."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def png_size(data):
    """Width and height from a PNG's IHDR chunk (asserting it is a PNG)."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def inline_images(page):
    """Decoded PNGs of every ``<img>``, each checked to be an inline ``data:`` PNG."""
    out = []
    for tag, attrs in page.tags:
        if tag == "img":
            prefix = "data:image/png;base64,"
            assert attrs["src"].startswith(prefix), attrs["src"][:60]
            out.append(base64.b64decode(attrs["src"][len(prefix) :], validate=True))
    return out


def section(text, heading, tag="h2"):
    """The HTML between ``heading``'s title and the next heading of its level."""
    start = text.index(f">{heading}</{tag}>")
    end = text.find(f"<{tag} ", start)
    return text[start : end if end > 0 else None]


def test_html_report_is_one_self_contained_file(good_html):
    folder, text, stamps = good_html
    assert os.listdir(folder) == ["report.html"]
    assert plt.get_fignums() == []  # every figure closed, arviz-plots' included
    page = Page(text)
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert "@import" not in text and "url(" not in text and "@font-face" not in text
    for _, attrs in page.tags:
        for name in set(attrs) & {"src", "href"}:
            assert not re.match(r"\s*(https?:)?//", attrs[name]), attrs[name]
        assert attrs.get("href", "#").startswith("#"), attrs  # in-page links only
    policy = next(a for t, a in page.tags if t == "meta" and "http-equiv" in a)
    assert policy["content"].startswith("default-src 'none'")
    images = inline_images(page)
    # formula, fit, residuals, posterior, prior-posterior, ppc, rank, fan, isoFLOP, frontier
    assert len(images) == 10 and len(stamps) == 10 and not any(stamps)
    for png in images:
        width, height = png_size(png)
        assert width > 50 and height > 20 and len(png) > 1000
    for heading in ("Convergence", "Data", "Law", "Model", "Posterior", "Figures"):
        assert f">{heading}</h2>" in text, heading
    assert "Hoffmann et al. (2022)" in text and r"\frac{A}{N^{\alpha}}" in text
    assert "NOT CONVERGED" not in text and 'class="banner"' not in text
    calm = next(i for i, (t, a) in enumerate(page.tags) if a.get("class") == "calm")
    assert calm == min(i for i, (t, _) in enumerate(page.tags) if t in ("p", "div", "h1"))
    assert "Converged: every convergence check passed" in text


def test_an_unconverged_report_leads_with_a_loud_banner(bad, bad_html, tmp_path, no_figures):
    text, stamps = bad_html
    page = Page(text)
    body = [tag for tag in page.tags if tag[0] not in ("html", "head", "meta", "title", "style")]
    assert body[1] == ("div", {"class": "banner", "role": "alert"})  # first in the body
    d = bad.diagnostics
    banner = text[text.index('class="banner"') : text.index("</div>")]
    assert "NOT CONVERGED: do not use these results" in banner
    assert f"max r-hat {d.max_r_hat:.4f} (FAILS ≤ 1.01)" in banner
    for message in d.messages:
        assert message.replace(">", "&gt;").replace("<", "&lt;") in banner
    for value in (f"{d.min_ess_bulk:.0f}", f"{d.divergences}", "E-BFMI"):
        assert value in banner
    assert "<title>NOT CONVERGED: " in text and "(NOT CONVERGED)</h1>" in text
    assert '<tr class="fail"><td>max r-hat</td>' in text
    # every figure of the fit (the formula is no figure) carries the stamp in its pixels,
    # so one cut out of the report still says it
    assert len(stamps) == 7 and all(stamps[1:]) and not stamps[0]
    markdown = bad.report(tmp_path / "bad.md").read_text()
    assert markdown.startswith("> **⚠ NOT CONVERGED: do not use these results**")


def test_checklist_is_filled_from_the_fit(good, tmp_path, no_figures):
    user = dataclasses.replace(
        good,
        spec=dataclasses.replace(
            good.spec, priors={**good.priors, "alpha": Prior("Beta", alpha=3, beta=5)}
        ),
    )
    text = user.report(tmp_path / "r.html").read_text()
    checklist = section(text, "Reproducibility checklist")
    rows = dict(CELLS.findall(checklist))
    assert list(rows) == list(CHECKLIST)
    assert all(value.strip() for value in rows.values())
    assert rows["FLOP rule"].startswith("C = 6 N D (flops_per_token = 6)")
    assert "not recorded" in rows["FLOP rule"]  # the fake fit was given D, not C
    assert rows["Held-out validation"].startswith("not recorded")
    assert rows["Priors"] == "6 priors, set by the user: alpha; listed under Model"
    assert "2 chains x 300 draws" in rows["Sampler and initialisation"]
    assert "20 rows at 20 distinct input settings, 5 model sizes" in rows["Number of runs"]
    assert (
        "Row labels run 0-19 without gaps: no rows left out" in rows["Data subset and exclusions"]
    )
    assert "N_ref = 1e+09" in rows["Parameterisation"]
    assert rows["Convergence"].startswith("every check passed")
    assert "(Mis)Fitting: A Survey of Scaling Laws" in checklist
    priors = section(text, "Model")
    assert "<td>alpha</td><td>Prior(&#x27;Beta&#x27;" not in priors  # text is not quote-escaped
    assert "<td>alpha</td><td>Prior('Beta', alpha=3, beta=5)</td><td>law</td><td>user</td>" in (
        priors
    )


def test_dropped_rows_and_compute_columns_show_in_the_checklist(tmp_path, no_figures):
    frame = nd_design().drop(index=[0, 3, 4])
    frame["C"] = 6.0 * frame["N"] * frame["D"]
    fit = fake_fit(frame[["N", "C", "loss"]], "chinchilla", chinchilla_draws(400, 4))
    text = fit.report(tmp_path / "r.html").read_text()
    rows = dict(CELLS.findall(section(text, "Reproducibility checklist")))
    exclusions = rows["Data subset and exclusions"]
    assert "17 rows" in exclusions and "Row labels run 1-19: 3 of the labels 0-19 are missing" in (
        exclusions
    )
    assert "whether D was given" in rows["FLOP rule"]  # a column named C is not recorded
    assert "rank ECDFs of each chain (convergence)': it needs two or more chains" in text
    # the same from the saved fit, as `bayescale report fit.nc` reads it (its row numbers
    # came back as text: "Rows carry labels, not row numbers")
    fit.save(tmp_path / "fit.nc")
    again = bayescale.load(tmp_path / "fit.nc").report(tmp_path / "again.html").read_text()
    rows = dict(CELLS.findall(section(again, "Reproducibility checklist")))
    assert rows["Data subset and exclusions"] == exclusions


def test_a_one_input_law_with_a_backtest(tmp_path, no_figures):
    from test_plots import make_backtest, power_fit

    fit = power_fit(POWER, 3, chains=2)
    backtest = make_backtest(fit)
    text = fit.report(tmp_path / "r.html", targets={"N": [1e11]}, backtest=backtest).read_text()
    rows = dict(CELLS.findall(section(text, "Reproducibility checklist")))
    assert rows["FLOP rule"] == "not applicable: law 'power_law' has no N and D to count FLOPs from"
    assert rows["Model size N"].startswith("not applicable")  # N is the column of input x
    coverage = backtest.table["coverage_90"]
    assert rows["Held-out validation"].startswith("done: 6 held-out rows, methods power_law")
    assert f"steeper {coverage['steeper']:.0%}" in rows["Held-out validation"]
    assert "extrapolation to x = 1e+11" in text and "held-out predictions and coverage" in text
    assert "<td>N</td><td>input x</td>" in section(text, "Data")
    assert ">Compute-optimal" not in text and ">Backtest</h2>" in text


def test_user_strings_are_escaped(grouped, tmp_path):
    name = "<script>alert(1)</script>"
    targets = {"C": 1e22, "g": "a&b"}
    twin = {"<i>twin</i>": grouped}  # compared with itself: the same data, so LOO runs
    text = grouped.report(tmp_path / "g.html", compare=twin, targets=targets, name=name).read_text()
    assert "<b>bold</b>" not in text and "<script" not in text and "<i>" not in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "&lt;script&gt;alert(1)" in text
    assert "a&amp;b" in text and "a&b<" not in text
    assert "alpha[&lt;b&gt;bold&lt;/b&gt;]" in text  # the posterior table's rows
    comparison = section(text, "Comparison")
    assert "<td>&lt;i&gt;twin&lt;/i&gt;</td>" in comparison
    assert "the fits&#x27; predictions overlaid (group a&amp;b)" in comparison  # an alt text
    assert len(inline_images(Page(comparison))) == 1
    with pytest.MonkeyPatch.context() as patch:  # the text is what matters here
        patch.setattr(report, "_figure", lambda *args: [])
        markdown = grouped.report(tmp_path / "g.md", name=name).read_text()
    assert "<b>" not in markdown and "&lt;b&gt;bold&lt;/b&gt;" in markdown


def test_markdown_report_writes_its_pngs_beside_it(good, tmp_path):
    path = write_report(good, tmp_path / "report.md", targets={"N": [7e10], "D": [1.4e12]})
    text = path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    # fit, residuals, posterior, prior-posterior, rank, ppc, fan (no budgets: no isoFLOP)
    assert len(links) == 7
    assert all(link.startswith("report_files/") for link in links)
    files = sorted((tmp_path / "report_files").iterdir())
    assert [f"report_files/{f.name}" for f in files] == sorted(links)
    for file in files:
        assert png_size(file.read_bytes())[0] > 50
    assert "```math\nL(N, D) = E" in text and "| check | value | requirement | status |" in text
    assert "<img" not in text and "data:image" not in text


def test_predictions_and_the_compute_optimal_table(good, good_html):
    predictions = section(good_html[1], "Predictions at the targets")
    table = good.predict(pd.DataFrame(ROWS), ci=0.8)
    for value in (*table["median"], *table["upper"], *table["reach"]):
        assert f">{value:.4g}<" in predictions
    assert table["reach"].iloc[1] > 1 and "extrapolation_share" in predictions
    optimal = bayescale.compute_optimal(good, ROWS["C"], ci=0.8)
    best = optimal.iloc[1]
    interval = f"{best['N_opt_median']:.4g} [{best['N_opt_lower']:.4g}, {best['N_opt_upper']:.4g}]"
    assert interval in predictions and "N_opt (median [80%])" in predictions
    assert "extrapolation to C = 5.88e+23" in predictions


def test_budgets_alone_are_answered_at_the_optimal_allocation(good, tmp_path, no_figures):
    text = good.report(tmp_path / "r.html", targets={"C": [1e21, 1e23]}).read_text()
    predictions = section(text, "Predictions at the targets")
    assert "FLOP budgets alone" in predictions and "<th>median</th>" not in predictions
    optimal = bayescale.compute_optimal(good, [1e21, 1e23])
    assert f"{optimal['loss_opt_median'].iloc[1]:.4g} [" in predictions
    assert "extrapolation to C = 1e+23" in predictions


def test_targets_may_name_inputs_as_the_law_does(tmp_path, no_figures):
    # a fit of columns "Model Size" and "Training FLOP": "C=..." as the README's example
    # gives it, or the fit's own names, ask the same (it used to be refused, "C" missing)
    runs = nd_design().rename(columns={"N": "Model Size"})
    runs["Training FLOP"] = 6 * runs["Model Size"] * runs.pop("D")
    inputs = {"N": "Model Size", "C": "Training FLOP"}
    fit = fake_fit(runs, "chinchilla", chinchilla_draws(DRAWS, 0), chains=2, inputs=inputs)
    by_law = fit.report(tmp_path / "a.html", targets={"C": [1e21, 1e23]}).read_text()
    by_fit = fit.report(tmp_path / "b.html", targets={"Training FLOP": [1e21, 1e23]}).read_text()
    ours = section(by_law, "Predictions at the targets")
    assert "FLOP budgets alone" in ours and ours == section(by_fit, "Predictions at the targets")
    rows = {"N": [1e9], "D": [2e10]}
    pd.testing.assert_frame_equal(
        fit.predict(rows), fit.predict({"Model Size": [1e9], "Training FLOP": [1.2e20]})
    )


def test_comparison_section(good, tmp_path):
    other = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 5), chains=2)
    text = write_report(good, tmp_path / "r.html", compare={"other": other}).read_text()
    comparison = section(text, "Comparison")
    assert "<th>elpd</th>" in comparison and "<th>weight</th>" in comparison
    assert "<td>chinchilla</td>" in comparison and "<td>other</td>" in comparison
    assert len(inline_images(Page(comparison))) == 1
    assert 'class="banner"' not in text


def test_a_compared_fit_that_failed_makes_the_banner_loud(good, bad, tmp_path, no_figures):
    text = write_report(good, tmp_path / "r.html", compare={"bad": bad}).read_text()
    assert "A FIT BEHIND THIS REPORT DID NOT CONVERGE" in text
    assert "compared fit &#x27;bad&#x27;" not in text
    assert "compared fit 'bad'" in text and "(NOT CONVERGED)</h1>" not in text


def test_a_backtest_or_own_backtest_that_failed_makes_the_banner_loud(
    good, bad, tmp_path, no_figures
):
    """Both were silent: the banner said every check passed."""
    from test_plots import make_backtest, power_fit

    backtest = make_backtest(power_fit(POWER, 3, chains=2))
    average = bayescale.AveragedFit({"power_law": bad}, {"power_law": 1.0})  # no diagnostics:
    fits = {**backtest.fits, "power_law": bad, "stacked average": average}  # it crashed
    failed = dataclasses.replace(backtest, fits=fits)
    text = write_report(good, tmp_path / "b.html", backtest=failed).read_text()
    assert "A FIT BEHIND THIS REPORT DID NOT CONVERGE" in text
    assert "backtest fit 'power_law', every check: " in text
    assert "backtest fit 'stacked average'" not in text  # named by its failed component
    fit = fake_fit(nd_design(), "chinchilla", chinchilla_draws(DRAWS, 0), chains=2)
    own = extrapolation.default()
    fit.__dict__["own_extrapolation"] = dataclasses.replace(
        own, source=f"{own.source}; {extrapolation.UNCONVERGED_BACKTEST}"
    )
    text = write_report(fit, tmp_path / "o.html").read_text()
    assert "THE FIT'S OWN BACKTEST DID NOT CONVERGE" in text
    assert "this fit: its own backtest (a refit on its smaller runs" in text
    # not where it is not used: the banner said so with extrapolation="none" too
    text = write_report(fit, tmp_path / "n.html", extrapolation="none").read_text()
    assert "OWN BACKTEST" not in text and "Converged: every convergence check passed" in text


@pytest.mark.parametrize(
    ("kwargs", "error", "expected"),
    [
        ({"path": "r.pdf"}, SpecError, "must end in .html"),
        ({"path": "missing/r.html"}, FitFileError, "does not exist"),
        ({"compare": ["x"]}, SpecError, "dict of label -> ScalingFit"),
        ({"compare": {"x": 1}}, SpecError, "['x'] are not"),
        ({"compare": {"chinchilla": "GOOD"}}, SpecError, "this fit's: pass name="),
        ({"backtest": "x"}, SpecError, "takes a bayescale.Backtest"),
        ({"ci": 2}, SpecError, "ci must be a probability"),
        ({"targets": {"C": "big"}}, bayescale.DataError, "compute C of a target"),
        ({"targets": {"N": [1e9]}}, bayescale.DataError, "missing column"),
        # read as budgets alone, D dropped: a compute-optimal answer to another question
        ({"targets": {"C": [1e23], "D": [1e13]}}, bayescale.DataError, "missing column(s) ['N']"),
    ],
)
def test_write_report_refuses_bad_arguments(good, tmp_path, kwargs, error, expected):
    kwargs = {"path": "r.html", **kwargs}
    kwargs["path"] = tmp_path / kwargs["path"]
    if isinstance(kwargs.get("compare"), dict):
        kwargs["compare"] = {k: good if v == "GOOD" else v for k, v in kwargs["compare"].items()}
    with pytest.raises(error, match=re.escape(expected)):
        write_report(good, **kwargs)
    assert not (tmp_path / "r.html").exists()


def test_grouped_targets_need_the_group(grouped, tmp_path):
    with pytest.raises(SpecError, match="need that column"):
        grouped.report(tmp_path / "r.html", targets={"C": [1e22]})


# ---------------------------------------------------------------------- in a real browser


class Chromium:
    """Headless Chromium on the DevTools protocol over a pipe (``--remote-debugging-pipe``).

    The browser reads JSON commands, each ended by a NUL byte, on its fd 3 and writes
    replies and events on fd 4: no websocket, no port, nothing beyond the standard library.
    """

    def __init__(self, binary, profile):
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "about:blank",
        ]
        # a fresh Python puts the pipe's ends on fds 3 and 4 and execs the browser (a shell
        # takes one-digit fds only; preexec_fn would fork this process, whose JAX threads
        # could deadlock the child); dup2 onto an fd's own number keeps it close-on-exec,
        # hence set_inheritable
        onto_3_and_4 = (
            "import os, sys; read, write = (os.dup(int(fd)) for fd in sys.argv[1:3]); "
            "os.dup2(read, 3); os.dup2(write, 4); os.set_inheritable(3, True); "
            "os.set_inheritable(4, True); os.execv(sys.argv[3], sys.argv[3:])"
        )
        launcher = [sys.executable, "-c", onto_3_and_4, str(to_browser), str(from_browser)]
        self.process = subprocess.Popen(
            [*launcher, binary, *flags],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id, self.events = b"", 0, []

    def send(self, method, session=None, **params):
        """Send one command and return its result; events read meanwhile are kept."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while (reply := self._read()).get("id") != self._id:
            self.events.append(reply)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method, session, timeout=60):
        """Wait for the event ``method`` of ``session``."""
        deadline = time.monotonic() + timeout
        while not any(
            e.get("method") == method and e.get("sessionId") == session for e in self.events
        ):
            self.events.append(self._read(deadline - time.monotonic()))

    def visit(self, path):
        """Load ``path`` in a new tab, 1200 px wide: what it shows, fetched and logged.

        Returns
        -------
        dict
            ``images``: ``[complete, naturalWidth, naturalHeight]`` of every image;
            ``requests``: every URL the page asked for; ``errors``: console errors, error
            log entries and uncaught exceptions; ``screenshot``: the whole page as PNG.
        """
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable", session)
        metrics = {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", session, **metrics)
        self.send("Page.navigate", session, url=path.as_uri())
        self.wait_for("Page.loadEventFired", session)
        script = (
            "JSON.stringify(Array.from(document.images, "
            "i => [i.complete, i.naturalWidth, i.naturalHeight]))"
        )
        images = self.send("Runtime.evaluate", session, expression=script, returnByValue=True)
        shot = self.send(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
        )

        def of(method):
            return [
                e["params"]
                for e in self.events
                if e.get("method") == method and e.get("sessionId") == session
            ]

        return {
            "images": json.loads(images["result"]["value"]),
            "requests": [r["request"]["url"] for r in of("Network.requestWillBeSent")],
            "errors": [
                *(c for c in of("Runtime.consoleAPICalled") if c["type"] in ("error", "assert")),
                *(e["entry"] for e in of("Log.entryAdded") if e["entry"]["level"] == "error"),
                *of("Runtime.exceptionThrown"),
            ],
            "screenshot": base64.b64decode(shot["data"]),
        }

    def _read(self, timeout=60):
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], max(timeout, 0))
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def close(self):
        """Ask the browser to quit; kill it if it does not."""
        try:
            self.send("Browser.close")
            self.process.wait(timeout=20)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


@pytest.mark.slow
def test_report_of_the_chinchilla_fit_renders_offline_in_chromium(tmp_path):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("Chromium is not installed (Debian's `chromium`; .ci/run installs it)")
    from bayescale import sweeps

    if not sweeps.SWEEPS["epoch_chinchilla"].available():
        pytest.skip(f"real data not available: {sweeps.SWEEPS['epoch_chinchilla'].path()}")
    df = sweeps.load("epoch_chinchilla")
    runs = df[~df["besiroglu_dropped"]][["N", "D", "loss"]]
    fit = bayescale.fit(runs, law="chinchilla", random_seed=0)
    path = fit.report(tmp_path / "chinchilla.html", targets={"C": [5.76e23, 1e25]})

    # a copy that fetches an image from the network: the checks must catch it
    tampered = tmp_path / "tampered.html"
    outside = "https://example.invalid/figure.png"
    tampered.write_text(path.read_text().replace("</body>", f'<img src="{outside}"></body>'))
    browser = Chromium(binary, tmp_path / "profile")
    try:
        page = browser.visit(path)
        control = browser.visit(tampered)
    finally:
        browser.close()
    screenshot = tmp_path / "chinchilla.png"
    screenshot.write_bytes(page["screenshot"])
    width, height = png_size(page["screenshot"])
    assert width >= 1000 and height > 5000  # the whole page, not a blank viewport
    assert len(page["images"]) == 10  # formula and nine figures
    assert all(complete and w > 0 and h > 0 for complete, w, h in page["images"]), page
    assert page["requests"][0] == path.as_uri()
    assert all(url.startswith("data:image/png") for url in page["requests"][1:]), page
    assert page["errors"] == []
    assert ("NOT CONVERGED" in path.read_text()) == (not fit.converged)

    assert control["images"][-1][1] == 0  # blocked by the page's Content-Security-Policy
    assert control["errors"] or outside in control["requests"]
