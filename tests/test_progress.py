"""Progress bars show on a terminal, never in captured output, never when turned off."""

import io
import sys

import pytest

import bayescale
from bayescale.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_shows_only_on_a_terminal_and_when_asked(monkeypatch):
    assert progress_bar(range(3)).disable  # pytest captures stderr: no bar
    monkeypatch.setattr(sys, "stderr", Terminal())
    shown = progress_bar(range(3), desc="fits")
    assert not shown.disable and list(shown) == [0, 1, 2]
    assert "fits" in sys.stderr.getvalue()
    assert progress_bar(range(3), progress=False).disable


@pytest.mark.filterwarnings("ignore::bayescale.ConvergenceWarning")  # 2 x 100 draws
def test_a_fit_with_progressbar_shows_a_clock_on_a_terminal(monkeypatch, sim_sweep):
    """numpyro's compiled run reports nothing until it ends: the clock says it is alive."""
    monkeypatch.setattr(sys, "stderr", Terminal())
    bayescale.fit(sim_sweep, law="chinchilla", draws=100, tune=100, chains=2, progressbar=True)
    assert "chinchilla: sampling, 2 chains x 100 + 100 steps: 00:0" in sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", Terminal())
    bayescale.fit(sim_sweep, law="chinchilla", draws=100, tune=100, chains=2)
    assert "sampling" not in sys.stderr.getvalue()  # progressbar=False (the default)
