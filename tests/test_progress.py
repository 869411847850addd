"""Progress bars show on a terminal, never in captured output, never when turned off."""

import io
import sys

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
