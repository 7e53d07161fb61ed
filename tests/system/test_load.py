"""A small classroom in CI: simultaneous websocket sessions against a real server, one training, zero errors.

The full run is `python -m tests.loadtest --sessions 30 --trainers 5 --benchmarks BENCHMARKS.md`.
"""

import asyncio

import pytest

from tests.loadtest import BROWSED_PAGES, free_port, main, start_server
from tests.st_client import StreamlitClient, text, trigger


@pytest.mark.serve
def test_simultaneous_sessions_have_no_errors_and_training_stops_with_its_session(tmp_path):
    result = main(["--sessions", "4", "--trainers", "1", "--watch", "4", "--timeout", "90",
                   "--json", str(tmp_path / "load.json"), "--benchmarks", str(tmp_path / "BENCHMARKS.md")])
    assert result["errors"] == 0, result["error_samples"]
    # every session: open, generate page, generate names, the browsed pages, home; the trainer also
    # opens Train and starts a run
    assert result["page_runs"]["n"] == 4 * (4 + len(BROWSED_PAGES)) + 2
    assert result["polls"]["n"] >= 1 and len(result["trainer_progress"]) == 1
    assert result["server_rss_mb_max"] > 0 and result["page_runs"]["p95_s"] >= result["page_runs"]["p50_s"] > 0
    # a training run uses a whole core; once its session closed, the server and its processes idle
    assert result["cpu_s_after_close"] < 1.0
    assert "| step | runs | p50 | p95 | max |" in (tmp_path / "BENCHMARKS.md").read_text()


@pytest.mark.serve
def test_the_client_sees_what_a_user_would():
    """The load client is only as good as what it checks: it finds widgets, reads results and reports errors."""
    async def visit(url):
        async with StreamlitClient(url, 90) as app:
            await app.run(page="")
            form = await app.run(page="generate")
            prefix, submit = form.find("text_input", "gen_prefix"), form.find("button", is_form_submitter=True)
            names = await app.run(widgets=[text(prefix.id, "Ma"), trigger(submit.id)])
            bad = await app.run(widgets=[text(prefix.id, "Ж"), trigger(submit.id)])
            return names, bad

    port = free_port()
    server = start_server(port, max_jobs=1)
    try:
        names, bad = asyncio.run(visit(f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    picked = names.find("selectbox", "gen_pick")
    assert names.problems == [] and picked.options and all(n.startswith("Ma") for n in picked.options)
    assert bad.find("selectbox", "gen_pick") is None  # refused, with the reason as an error message
    assert len(bad.problems) == 1 and "'Ж'" in bad.problems[0]


@pytest.mark.serve
def test_url_drives_a_running_deployment_and_reports_only_what_it_can_see(tmp_path):
    """`--url` aims the class at a server it did not start (a proxy in front of several app processes, say):
    the sessions' figures as before; the server's CPU and memory, out of its sight, are "-"."""
    port = free_port()
    server = start_server(port, max_jobs=1)
    try:
        result = main(["--url", f"http://127.0.0.1:{port}/", "--sessions", "2", "--trainers", "0", "--timeout", "90",
                       "--benchmarks", str(tmp_path / "BENCHMARKS.md")])
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result["errors"] == 0, result["error_samples"]
    assert result["page_runs"]["n"] == 2 * (4 + len(BROWSED_PAGES))  # open, generate page, names, pages, home
    assert result["polls"]["n"] == 0  # no trainer, so no live chart polls
    assert result["url"] == f"http://127.0.0.1:{port}/" and result["max_jobs"] is None
    assert result["server_cpu_s"] is None and result["server_rss_mb_max"] is None
    assert result["cpu_s_after_close"] is None
    section = (tmp_path / "BENCHMARKS.md").read_text()
    assert f"against the deployment at http://127.0.0.1:{port}/" in section and "as the deployment sets it" in section


def test_url_must_be_an_http_address():
    for bad in ("127.0.0.1:8501", "ftp://host", "http://host/path"):
        with pytest.raises(SystemExit) as stop:
            main(["--url", bad])
        assert stop.value.code == 2
