"""The dashboard in headless Chromium (Debian's `chromium`, driven by Playwright).

Loads the dashboard for a real study (a real small search with repeats and a confirmation round,
launched through the API, and a real comparison of its winner), and checks that the verdict line,
the warnings, the candidate and trial tables, the candidate map, the FLOPs plot (a point and an
error bar per candidate), the proxy-against-confirmed scatter, the learning curves, the family
table and the comparison panels (a series per arm, against FLOPs and against activations)
rendered with the right counts, with no JavaScript error and no request leaving the machine. Screenshots go to ``artifacts/``.

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

from _service_fixtures import ROUNDED_SEARCH_ARGS, ROUNDED_STUDY, shared_search_db
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
    yield {"base": f"http://127.0.0.1:{port}", "study": study, "kind": kind, "client": client, "url": url}
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
    ranking = client.get(f"/api/studies/{study}/candidates/ranking").json()["candidates"]
    curves = client.get(f"/api/studies/{study}/curves").json()["curves"]
    family = client.get(f"/api/studies/{study}/family").json()
    assert trials and candidates and family["members"], "the study must hold trials, candidates and a family"
    assert detail["best_source"] == "verdict" and detail["fidelity"], "the study must hold a verdict with fidelity"

    page, errors, external = _open(browser, f"{served['base']}/#/study/{quote(study)}", served["base"])
    try:
        assert page.locator("#trial-table tr.trial-row").count() == len(trials)
        assert page.locator("#candidate-map circle.cand").count() == len(candidates)
        n_feasible = sum(1 for c in candidates if c["feasible"])
        assert page.locator("#candidate-map circle.cand.feasible").count() == n_feasible
        assert page.locator("#candidate-map rect.band").count() == n_feasible
        assert page.locator("#candidate-map circle.cand.alias").count() == sum(1 for c in candidates if c["alias"])
        _check_verdict_panels(page, detail, ranking)
        with_curve = [c for c in curves if any(p["val_top1"] is not None for p in c["points"])]
        assert page.locator("#curves-plot path.curve").count() == len(with_curve)
        assert page.locator("#family-table tr.family-row").count() == len(family["members"])
        names = page.locator("#family-table tr.family-row td:first-child").all_inner_texts()
        assert names == [m["name"] for m in family["members"]]
        # each member's export, behind the launch token (asked for once, by a prompt)
        assert page.locator("#family-table tr.family-row a.export-link").count() == 4 * len(family["members"])
        page.once("dialog", lambda dialog: dialog.accept("t0ken"))
        with page.expect_download(timeout=60_000) as download:
            page.locator('#family-table tr.family-row a.export-link[data-format="state-dict"]').first.click()
        name = f"{family['baseline']}-{family['members'][0]['name']}.state-dict.zip"
        assert download.value.suggested_filename == name
        assert page.locator("#export-status").inner_text() == f"downloaded {name}"
        assert f"{detail['progress']['done']} trials done" in page.locator("#progress-text").inner_text()
        # one row per trial, with its repeat, seed and confirmation flag, under the API's values
        first = trials[0]
        cells = page.locator("#trial-table tr.trial-row").first.locator("td").all_inner_texts()
        assert cells[0] == str(first["number"]) and cells[1] == f"{first['alpha']:.3f}"
        assert cells[6] == str(first["resolution"]) and cells[7:9] == [str(first["repeat"]), str(first["seed"])]
        # The search's study holds its race; its confirmation round, a study of its own (one budget,
        # one objective), is listed in a table of its own, every row flagged as a confirmation run.
        assert page.locator("#trial-table tr.trial-row.confirmation").count() == sum(t["confirmation"] for t in trials) == 0
        confirmed = [t for c in detail["confirmations"]
                     for t in client.get(c["url"] + "/trials", params={"limit": 1000}).json()["trials"]]
        assert page.locator(".confirmation-table tr.trial-row.confirmation").count() == len(confirmed) > 0
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


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _mean_se(mean: float, se: float | None, n: int) -> str:
    """The dashboard's "47.9 ± 14.6% (n=2)"."""
    return f"{_pct(mean)} ± {'n/a' if se is None else _pct(se)}% (n={n})"


def _check_verdict_panels(page: Any, detail: dict[str, Any], ranking: list[dict[str, Any]]) -> None:
    """The verdict line, the warnings, the candidate table, the FLOPs plot and the fidelity scatter."""
    best, fidelity = detail["best"], detail["fidelity"]
    verdict = page.locator("#verdict-line").inner_text()
    assert f"winner ({best['alpha']:g}, {best['beta']:g}, {best['gamma']:g}): " in verdict
    assert _mean_se(best["val_top1_mean"], best["val_top1_stderr"], best["repeats"]) in verdict
    tied = len(best["tied_with"])
    assert (f"tied with {tied}:" if tied else "separated: tied with no other candidate") in verdict
    warnings = detail["warnings"] + detail["failures"]  # on 1-epoch proxies, usually "near chance"
    assert page.locator("#warnings li.warning").all_inner_texts() == warnings
    assert page.locator("#warnings").count() == (1 if warnings else 0)
    # the candidate table: one row per candidate, mean ± se and n
    assert page.locator("#candidate-table tr.cand-row").count() == len(ranking)
    cells = page.locator("#candidate-table tr.cand-row").first.locator("td").all_inner_texts()
    top = ranking[0]
    assert cells[5:8] == [top["standing"], _mean_se(top["mean"], top["stderr"], top["n"]), str(top["n"])]
    # top-1 against FLOPs: a point per candidate at its mean, error bars where n >= 2, winner and ties marked
    plotted = [r for r in ranking if r["mean"] is not None and r["flops"] is not None]
    assert page.locator("#flops-plot circle.pt").count() == len(plotted) == 3
    assert page.locator("#flops-plot path.errbar").count() == sum(1 for r in plotted if r["n"] >= 2) == 3
    assert page.locator("#flops-plot circle.pt.winner").count() == 1
    assert page.locator("#flops-plot circle.pt.tied").count() == sum(r["standing"] == "tied" for r in plotted)
    assert page.locator("#flops-legend .lg-winner").count() == page.locator("#flops-legend .lg-tied").count() == 1
    # proxy against confirmed: a point per confirmed candidate, titled with tau and its interval
    confirmed = [r for r in ranking if r["confirm_n"] > 0]
    assert page.locator("#fidelity-plot circle.fpt").count() == len(confirmed) == fidelity["candidates"]
    assert page.locator("#fidelity-plot path.yerr").count() == sum(r["confirm_n"] >= 2 for r in confirmed)
    lo, hi = fidelity["tau_interval"]
    assert f"τ {fidelity['kendall_tau']:.2f} [95% {lo:.2f}, {hi:.2f}]" in page.locator("#fidelity-title").inner_text()


def test_comparison_panel_from_its_search(served: dict[str, Any], browser: Any) -> None:
    client, study = served["client"], served["study"]
    (link,) = client.get(f"/api/studies/{study}").json()["comparisons"]
    comparison = client.get(link["url"]).json()
    arms = {a["arm"] for e in comparison["phis"] for a in e["arms"]}
    page, errors, external = _open(browser, f"{served['base']}/#/study/{quote(study)}", served["base"])
    try:
        page.click(f"#comparison-links a:text('{link['name']}')")
        page.wait_for_selector("#comparison-plot", timeout=20_000)
        page.wait_for_selector('#view[data-ready="1"][data-page="comparison"]', timeout=20_000)
        with_se = [a for e in comparison["phis"] for a in e["arms"] if a["val_top1_stderr"] is not None]
        # Figure 8 against FLOPs, and the same arms against activations: a series per arm (fast among them)
        for plot in ("#comparison-plot", "#comparison-activations-plot"):
            assert page.locator(f"{plot} g.series").count() == len(arms) == 5
            assert sorted(page.locator(f"{plot} g.series").evaluate_all("gs => gs.map(g => g.dataset.arm)")) == sorted(arms)
            assert page.locator(f"{plot} path.errbar").count() == len(with_se) > 0
        assert "fast" in arms and all(a["activations"] > 0 for e in comparison["phis"] for a in e["arms"])
        shown = page.locator("#comparison-table td.activations").all_inner_texts()
        assert len(shown) == sum(len(e["arms"]) for e in comparison["phis"]) and "–" not in shown
        verdicts = page.locator("#verdict-list li.phi-verdict").all_inner_texts()
        assert verdicts == [f"φ={e['phi']}: {e['verdict']}" for e in comparison["phis"]]
        assert page.locator("#comparison-table tr.arm-row").count() == sum(len(e["arms"]) for e in comparison["phis"])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-comparison-{served['kind']}.png"), full_page=True)
        page.click("#comparison-search")  # back to its search
        page.wait_for_selector('#view[data-ready="1"][data-page="study"]', timeout=20_000)
    finally:
        page.close()
    assert errors == [] and external == []


def test_studies_list_links_to_the_study_and_the_comparisons(served: dict[str, Any], browser: Any) -> None:
    studies = served["client"].get("/api/studies").json()["studies"]
    comparisons = served["client"].get("/api/comparisons").json()["comparisons"]
    page, errors, external = _open(browser, served["base"] + "/", served["base"])
    try:
        assert page.locator("#studies-table tr.study-row").count() == len(studies)
        assert page.locator("#comparisons-table tr.comparison-row").count() == len(comparisons) == 1
        row = page.locator("#studies-table tr.study-row").first.locator("td").all_inner_texts()
        best, fidelity = studies[0]["best"], studies[0]["fidelity"]
        assert row[5] == _mean_se(best["val_top1_mean"], best["val_top1_stderr"], best["repeats"])
        assert row[7].startswith(f"{fidelity['kendall_tau']:.2f} [95%")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-list-{served['kind']}.png"))
        page.click(f"#comparisons-table a:text('{comparisons[0]['name']}')")
        page.wait_for_selector('#view[data-ready="1"][data-page="comparison"]', timeout=20_000)
        page.goto(served["base"] + "/")
        page.wait_for_selector("#studies-table", timeout=20_000)
        page.click(f"#studies-table a:text('{served['study']}')")
        page.wait_for_selector("#trial-table", timeout=20_000)
    finally:
        page.close()
    assert errors == [] and external == []


def test_a_search_decided_by_rounding_says_so_in_the_api_and_on_the_dashboard(
    served: dict[str, Any], browser: Any
) -> None:
    import subprocess
    import sys

    # The real search, run as a user runs it, into the database the server reads.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([sys.executable, "-m", "effscale.cli", *ROUNDED_SEARCH_ARGS, "--storage", served["url"]],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = served["client"].get(f"/api/studies/{ROUNDED_STUDY}").json()
    assert study["regime"]["last_map"] == 2 and study["regime"]["degenerate"]
    rounding = [w for w in study["warnings"] if w.startswith("rounding decided the winner")]
    family = [w for w in study["warnings"] if w.startswith("the alpha^phi family misses 1.6^phi")]
    assert len(rounding) == len(family) == 1 and study["regime"]["warning"] in study["warnings"]
    page, errors, external = _open(browser, f"{served['base']}/#/study/{quote(ROUNDED_STUDY)}", served["base"])
    try:
        shown = page.locator("#warnings li.warning").all_inner_texts()
        assert rounding[0] in shown and family[0] in shown and study["regime"]["warning"] in shown
        line = page.locator("#regime-line").inner_text()
        assert "total stride 8" in line and "last feature map 2×2 at 16 px" in line and "degenerate" in line
        assert page.locator("#family-table th").all_inner_texts()[5] == "last map"
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


def test_docs_render_the_operations_with_no_network(served: dict[str, Any], browser: Any) -> None:
    """/docs is Swagger UI from packaged assets: every operation renders, nothing leaves this host."""
    operations = sum(len(methods) for methods in served["client"].get("/openapi.json").json()["paths"].values())
    page = browser.new_page()
    errors: list[str] = []
    external: list[str] = []
    host = urlparse(served["base"]).netloc
    page.route("**/*", lambda route: route.continue_() if urlparse(route.request.url).netloc == host
               else (external.append(route.request.url), route.abort()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(served["base"] + "/docs")
        page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {operations}", timeout=20_000)
        assert page.locator(".opblock").count() == operations >= 15
        assert "/api/studies/{study_name}/trials" in page.locator("body").inner_text()
        assert external == [] and errors == []
    finally:
        page.close()


def test_dashboard_refresh_asks_with_the_etags_it_holds(served: dict[str, Any], browser: Any) -> None:
    study = served["study"]
    page, errors, external = _open(browser, served["base"] + f"/#/study/{quote(study, safe='')}", served["base"])
    asked: list[tuple[str, str | None, int]] = []
    page.on("response", lambda res: asked.append((urlparse(res.url).path, res.request.headers.get("if-none-match"),
                                                  res.status)) if "/api/" in res.url else None)
    try:
        page.evaluate("location.hash = '#/'")
        page.wait_for_selector("#studies-table", timeout=20_000)
        page.evaluate(f"location.hash = '#/study/{quote(study, safe='')}'")
        page.wait_for_selector("#trial-table", timeout=20_000)
        again = [(tag, status) for path, tag, status in asked if path == f"/api/studies/{quote(study, safe='')}"]
        assert again and all(tag and status == 304 for tag, status in again), asked
        assert "Learning curves" in page.locator("body").inner_text() and errors == [] and external == []
    finally:
        page.close()
