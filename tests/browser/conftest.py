"""Browser tests: real Chromium (Debian's /usr/bin/chromium, through Playwright) against JupyterLab
and Voila. `make test-browser` runs them; `make test` leaves them out (-m "not browser"). Without
Chromium or Playwright every one of them skips, and the run ends with one line saying how to enable them."""
import pytest

import harness


def pytest_collection_modifyitems(config, items):
    reason = harness.missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"{harness.SKIP_LINE} ({reason})")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if harness.SKIP_LINE in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(f"{harness.SKIP_LINE} ({harness.missing()})", yellow=True, bold=True)


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("browser")
