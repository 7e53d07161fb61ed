"""A small classroom in CI: several simultaneous browser sessions, one training, zero errors.

The full 30-session run is `python tests/loadtest.py --sessions 30 --benchmarks BENCHMARKS.md`.
"""

import shutil

import pytest

from tests.loadtest import main

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian chromium (.ci/run installs it)")


def test_simultaneous_sessions_have_no_errors(tmp_path):
    result = main(["--sessions", "4", "--trainers", "1", "--timeout", "90", "--json", str(tmp_path / "load.json")])
    assert result["errors"] == 0, result["error_samples"]
    # open, generate page, generate, home for each; + train page and start for the trainer
    assert result["page_runs"] == 4 * 4 + 2
    assert result["server_rss_mb_max"] > 0 and result["p95_s"] >= result["p50_s"] > 0
    assert (tmp_path / "load.json").exists()
