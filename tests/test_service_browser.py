"""The dashboard in headless Chromium (Debian's `chromium`, driven by Playwright).

Loads the dashboard for a real study (a real small search, launched through the API), and checks that the trial table, the candidate map,
the FLOPs plot, the learning curves and the family table rendered with the right counts, with no
JavaScript error and no request leaving the machine. Screenshots go to ``artifacts/``.

A missing Chromium binary skips these tests on a developer machine and fails them when ``CI`` is
set; Playwright is a dev dependency, so its absence is always a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import pytest

from _service_fixtures import shared_search_db
from conftest import in_ci

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("EFFSCALE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The service on a free local port, over a database holding one search."""
    import uvicorn
    from fastapi.testclient import TestClient

    from effscale.service import create_app

    kind = "real"
    url, study = shared_search_db(tmp_path_factory.getbasetemp(), kind=kind)
    app = create_app(url, token="t0ken")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    client = TestClient(app)
    yield {"base": f"http://127.0.0.1:{port}", "study": study, "kind": kind, "client": client}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does)"
        if in_ci():
            pytest.fail(f"CI is set, so browser tests must not be skipped: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # a dev dependency: missing is a failure

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _open(context: Any, url: str, base: str) -> tuple[Any, list[str], list[str]]:
    """A page at ``url`` that refuses (and records) any request not to ``base``."""
    page = context.new_page()
    errors: list[str] = []
    external: list[str] = []
    host = urlparse(base).netloc

    def guard(route: Any) -> None:
        if urlparse(route.request.url).netloc != host:
            external.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", guard)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_selector('#view[data-ready="1"]', timeout=20_000)
    return page, errors, external


def test_study_page_renders_table_and_plots_with_the_right_counts(served: dict[str, Any], browser: Any) -> None:
    client, study = served["client"], served["study"]
    detail = client.get(f"/api/studies/{study}").json()
    trials = client.get(f"/api/studies/{study}/trials", params={"limit": 1000}).json()["trials"]
    candidates = client.get(f"/api/studies/{study}/candidates").json()["candidates"]
    curves = client.get(f"/api/studies/{study}/curves").json()["curves"]
    family = client.get(f"/api/studies/{study}/family").json()
    assert trials and candidates and family["members"], "the study must hold trials, candidates and a family"

    page, errors, external = _open(browser, f"{served['base']}/#/study/{quote(study)}", served["base"])
    try:
        assert page.locator("#trial-table tr.trial-row").count() == len(trials)
        assert page.locator("#candidate-map circle.cand").count() == len(candidates)
        n_feasible = sum(1 for c in candidates if c["feasible"])
        assert page.locator("#candidate-map circle.cand.feasible").count() == n_feasible
        assert page.locator("#candidate-map rect.band").count() == n_feasible
        assert page.locator("#candidate-map circle.cand.alias").count() == sum(1 for c in candidates if c["alias"])
        with_top1 = [t for t in trials if t["val_top1"] is not None and t["flops"] is not None]
        assert page.locator("#flops-plot circle.pt").count() == len(with_top1)
        with_curve = [c for c in curves if any(p["val_top1"] is not None for p in c["points"])]
        assert page.locator("#curves-plot path.curve").count() == len(with_curve)
        assert page.locator("#family-table tr.family-row").count() == len(family["members"])
        names = page.locator("#family-table tr.family-row td:first-child").all_inner_texts()
        assert names == [m["name"] for m in family["members"]]
        progress = page.locator("#progress-text").inner_text()
        assert f"{detail['progress']['done']} done" in progress
        if detail["best"] is not None:
            assert f"trial {detail['best']['number']}" in page.locator("#best-so-far").inner_text()
        # the rows show the columns the issue asks for, with the API's values
        first = trials[0]
        cells = page.locator("#trial-table tr.trial-row").first.locator("td").all_inner_texts()
        assert cells[0] == str(first["number"]) and cells[1] == f"{first['alpha']:.3f}"
        assert cells[6] == str(first["resolution"])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-study-{served['kind']}.png"), full_page=True)

        # the state filter re-renders the table from the API
        if any(t["state"] == "complete" for t in trials):
            page.select_option("#state-filter", "complete")
            page.wait_for_function(
                "n => document.querySelectorAll('#trial-table tr.trial-row').length === n",
                arg=sum(1 for t in trials if t["state"] == "complete"),
                timeout=10_000,
            )
    finally:
        page.close()
    assert errors == [], f"JavaScript errors: {errors}"
    assert external == [], f"the dashboard requested outside resources (must work offline): {external}"


def test_studies_list_links_to_the_study(served: dict[str, Any], browser: Any) -> None:
    studies = served["client"].get("/api/studies").json()["studies"]
    page, errors, external = _open(browser, served["base"] + "/", served["base"])
    try:
        assert page.locator("#studies-table tr.study-row").count() == len(studies)
        page.click(f"text={served['study']}")
        page.wait_for_selector("#trial-table", timeout=20_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-list-{served['kind']}.png"))
    finally:
        page.close()
    assert errors == [] and external == []


def test_unknown_study_shows_the_api_error(served: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    try:
        page.goto(served["base"] + "/#/study/no-such-study")
        page.wait_for_selector('#view[data-ready="error"]', timeout=20_000)
        assert "not found" in page.locator("#view .error").inner_text()
    finally:
        page.close()
