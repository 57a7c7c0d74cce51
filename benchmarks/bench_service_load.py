"""The dashboard under load: today's ``effscale serve`` against this one, on SQLite and PostgreSQL.

For each storage (SQLite, PostgreSQL) and study size (2,000 and 10,000 trials by default), writes a
large search (`tests/_large_study.make_large_study`: a 7×5×3 grid on many seeds, its verdict and
per-candidate aggregates, 16 trials still running), then runs two real servers on it in turn:

* ``old``: the service as it was before trial summaries, the code of ``--baseline-ref`` (default
  ``7681e0a``, where the ``scale`` branch started) extracted from git into a temporary directory and run
  with ``python -m effscale.cli serve`` (one worker, as it had no other);
* ``new``: this tree's ``effscale serve`` with its default workers.

C clients (default 20) each send R requests (the old server at 10,000 trials gets ``--old-requests``,
default 2, as it answers about one request a second there) of the dashboard's own mix: trial pages
(sorts by value, flops and number either way, state filters, limits 10/25/50, any offset) two
times in three, else a study view (the landing list, the study, its candidates, ranking or first
200 curves). Meanwhile a writer adds COMPLETE trials through Optuna's API (not effscale's recorder:
each new trial is repaired on read, the worse case for the new pages). Prints p50, p95, errors
(a non-200 or a timeout after ``--timeout`` s) and requests per second for each, and the old/new ratios.

    flock /tmp/effscale-heavy.lock .venv/bin/python benchmarks/bench_service_load.py \\
        [--sizes 2000,10000] [--storages sqlite,postgresql] [--clients 20] [--requests 10]

PostgreSQL: ``bash scripts/start-postgres.sh``; each run uses a fresh schema there, dropped after.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _large_study import LARGE_STUDY, add_trials_until, make_large_study  # noqa: E402

SORTS = ("number", "-number", "value", "-value", "flops", "-flops")
STATES = (None, None, "complete", "pruned", "fail")
VIEWS = ("", "/api/studies/{s}", "/api/studies/{s}/candidates", "/api/studies/{s}/candidates/ranking",
         "/api/studies/{s}/curves?limit=200")
POSTGRES = os.environ.get("EFFSCALE_TEST_POSTGRES_URL", "postgresql+psycopg2://effscale:effscale@127.0.0.1:5432/effscale_test")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str, workdir: Path, *, pythonpath: str | None) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("EFFSCALE_TOKEN", "EFFSCALE_STORAGE")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    log = open(workdir / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    # The old tree comes first on sys.path, and the editable install's finder (which maps effscale to
    # this tree whatever PYTHONPATH says) is dropped.
    boot = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in "
            "str(getattr(f, '__module__', type(f).__module__))]; from effscale.cli import main; sys.exit(main())")
    command = [sys.executable, "-c", boot] if pythonpath else [sys.executable, "-m", "effscale.cli"]
    process = subprocess.Popen([*command, "serve", "--storage", url, "--port", str(port),
                                "--state-dir", str(workdir / "state")], stdout=log, stderr=subprocess.STDOUT, env=env,
                               cwd=workdir, start_new_session=True)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"effscale serve exited: {(workdir / f'serve-{port}.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("effscale serve did not answer /healthz in 120 s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server this run started (its own session: the workers go with it)."""
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _request(rng: random.Random, n: int) -> tuple[str, dict[str, Any]]:
    if rng.random() < 2 / 3:
        params: dict[str, Any] = {"sort": rng.choice(SORTS), "limit": rng.choice((10, 25, 50)), "offset": rng.randrange(0, n)}
        if (state := rng.choice(STATES)) is not None:
            params["state"] = state
        return f"/api/studies/{LARGE_STUDY}/trials", params
    view = rng.choice(VIEWS)
    path, _, query = (view.format(s=LARGE_STUDY) if view else "/api/studies").partition("?")
    return path, dict(p.split("=") for p in query.split("&") if p)  # httpx drops a path's own query given params


def _load(base: str, n: int, *, clients: int, requests: int, timeout: float, seed: int) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        with httpx.Client(base_url=base, timeout=timeout) as http:
            for _ in range(requests):
                path, params = _request(rng, n)
                started = time.perf_counter()
                try:
                    status = http.get(path, params=params).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if status != 200:
                        errors.append(f"{path} {params}: {status}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"p50": statistics.median(ordered), "p95": ordered[max(0, int(0.95 * len(ordered)) - 1)],
            "n": len(ordered), "errors": errors, "rps": len(ordered) / wall}


WARM_S = 3.0  # longer than `effscale.search.records.summary_reads.SETTLE_S`


def _warm(base: str, clients: int) -> None:
    """Each view and a page from each of ``clients`` concurrent connections, untimed, for at least
    `WARM_S`: every worker has imported and connected, and a server that has run a few seconds is
    measured (the new one's first reads of a study check every trial until they are settled)."""
    import httpx

    def one() -> None:
        deadline = time.monotonic() + WARM_S
        with httpx.Client(base_url=base, timeout=600) as http:
            while True:
                for view in (*VIEWS, f"/api/studies/{LARGE_STUDY}/trials?limit=10"):
                    http.get(view.format(s=LARGE_STUDY) if view else "/api/studies")  # no params: the query stays
                if time.monotonic() > deadline:
                    return

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _run(label: str, url: str, n: int, workdir: Path, *, pythonpath: str | None, args: argparse.Namespace,
         requests: int) -> dict[str, Any]:
    process, base = _serve(url, workdir, pythonpath=pythonpath)
    stop, added, werrors = threading.Event(), [], []
    # a busy search: about five results a second
    writer = threading.Thread(target=add_trials_until,
                              args=(url, LARGE_STUDY, 10**6 + random.randrange(10**6), stop, added, werrors, 0.2))
    try:
        _warm(base, 1 if pythonpath else 8)  # the old server has one worker
        writer.start()
        result = _load(base, n, clients=args.clients, requests=requests, timeout=args.timeout, seed=n)
    finally:
        stop.set()
        writer.join()
        _stop(process)
    result["errors"] += werrors
    result["written"] = len(added)
    line = (f"{label:>4}  p50 {result['p50'] * 1000:8.0f} ms  p95 {result['p95'] * 1000:8.0f} ms  "
            f"{result['rps']:6.1f} req/s  {result['n']} requests, {len(result['errors'])} errors, "
            f"{result['written']} trials written meanwhile")
    print(line, flush=True)
    for e in result["errors"][:3]:
        print(f"      error: {e}", flush=True)
    if result["errors"]:
        logged = [line for p in workdir.glob("serve-*.log") for line in p.read_text().splitlines() if "ERROR" in line]
        for line in logged[-3:]:
            print(f"      server: {line[:300]}", flush=True)
    return result


def _old_tree(ref: str, into: Path) -> str:
    """The effscale package of ``ref``, extracted into ``into``; returns the PYTHONPATH to run it."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "effscale"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into)


def _as_before(url: str) -> None:
    """The database as today's code left it: effscale's schema version 2, no trial summaries (the
    old code refuses a newer schema)."""
    import sqlalchemy as sa

    from effscale.storage.engine import get_engine
    from effscale.storage.tables import VERSION_TABLE

    with get_engine(url).begin() as connection:
        connection.exec_driver_sql("DROP TABLE effscale_trial_summaries")
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version = 2"))


def _postgres_schema(create: bool, schema: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    admin = sa.create_engine(POSTGRES, poolclass=NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"' if create else f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.dispose()
    parsed = make_url(POSTGRES)
    return parsed.set(query={**parsed.query, "options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--storages", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--old-requests", type=int, default=2, help="per client, old server, above 5,000 trials")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a request counts as an error")
    parser.add_argument("--new-only", action="store_true", help="skip today's server (no ratios)")
    parser.add_argument("--baseline-ref", default="7681e0a", help="git revision of today's service")
    args = parser.parse_args()
    table = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        Path(tmp, "old").mkdir()
        old_path = _old_tree(args.baseline_ref, Path(tmp, "old"))
        for storage in args.storages.split(","):
            for n in (int(s) for s in args.sizes.split(",")):
                schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
                urls = [f"sqlite:///{tmp}/{storage}-{n}-{i}.db" if storage == "sqlite" else _postgres_schema(True, schema)
                        for i, schema in enumerate(schemas)]
                try:
                    started = time.perf_counter()
                    for url in urls:  # the same study twice: one for each server (the writer adds to it)
                        make_large_study(url, n)
                    _as_before(urls[0])
                    print(f"\n{storage}, {n} trials (written twice in {time.perf_counter() - started:.0f} s), "
                          f"{args.clients} clients, a writer adding trials", flush=True)
                    old = None if args.new_only else _run("old", urls[0], n, Path(tmp), pythonpath=old_path, args=args,
                                                          requests=args.old_requests if n > 5000 else args.requests)
                    new = _run("new", urls[1], n, Path(tmp), pythonpath=None, args=args, requests=args.requests)
                    table.append((storage, n, old, new))
                    if old is not None:
                        print(f"      old/new: p50 {old['p50'] / new['p50']:.1f}x, p95 {old['p95'] / new['p95']:.1f}x", flush=True)
                finally:
                    from effscale.storage.engine import dispose_engines

                    dispose_engines()
                    if storage != "sqlite":
                        for schema in schemas:
                            _postgres_schema(False, schema)
    print("\nstorage      trials   old p50   old p95   new p50   new p95   p50 ratio  p95 ratio  new errors")
    for storage, n, old, new in table:
        before = (f"{old['p50'] * 1000:8.0f}ms {old['p95'] * 1000:8.0f}ms" if old else f"{'-':>10} {'-':>10}")
        ratios = (f"{old['p50'] / new['p50']:9.1f}x {old['p95'] / new['p95']:9.1f}x" if old else f"{'-':>10} {'-':>10}")
        print(f"{storage:<11} {n:>7} {before} {new['p50'] * 1000:8.0f}ms {new['p95'] * 1000:8.0f}ms {ratios}  "
              f"{len(new['errors'])}")
    return 1 if any(new["errors"] for *_, new in table) else 0


if __name__ == "__main__":
    raise SystemExit(main())
