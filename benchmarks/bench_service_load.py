"""Trial pages of a large study under concurrent clients: SQL pagination against loading every trial.

Builds a SQLite study of N effscale-like trials (per-epoch history included), serves it with
uvicorn on 127.0.0.1, and sends the same random mix of ``GET /api/studies/{name}/trials`` pages
(sorts, state filters, limits 10/25/50, offsets) from C concurrent clients to two routes of one
server: the service's own (filter, order and page in SQL, then only the page's trials read) and a
baseline that does what the route did before (``get_all_trials``, every row built, sorted and
sliced in Python). Prints p50/p95 of each and the p95 ratio, measured in the same run.

    .venv/bin/python benchmarks/bench_service_load.py [--trials 2000] [--clients 10] [--requests 3]
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _service_fixtures import LARGE_STUDY, make_large_study  # noqa: E402

SORTS = ("number", "-number", "value", "-value", "flops", "-flops")
STATES = (None, None, "complete", "pruned", "fail")


def _old_page(state: Any, name: str, *, state_filter: str | None, sort: str, limit: int, offset: int) -> dict[str, Any]:
    """The trial listing before SQL pagination: every trial loaded, shaped, sorted, sliced."""
    from effscale.search.records.queries import SORT_FIELDS, STATE_NAMES, trial_row

    data = state.load(name)
    trials = [t for t in data.trials if state_filter is None or STATE_NAMES.get(t.state) == state_filter]
    rows = [trial_row(t) for t in trials]
    field = SORT_FIELDS[sort.lstrip("-")]
    present = sorted((r for r in rows if r[field] is not None), key=lambda r: (r[field], r["number"]),
                     reverse=sort.startswith("-"))
    rows = present + [r for r in rows if r[field] is None]
    return {"study": name, "total": len(rows), "limit": limit, "offset": offset, "trials": rows[offset : offset + limit]}


def _app(url: str) -> Any:
    from fastapi import Depends

    from effscale.service import create_app
    from effscale.service.deps import ServiceState, get_state

    app = create_app(url)

    @app.get("/bench/old/{study_name}/trials")
    def old(study_name: str, state: str | None = None, sort: str = "number", limit: int = 100, offset: int = 0,
            service: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return _old_page(service, study_name, state_filter=state, sort=sort, limit=limit, offset=offset)

    return app


def _load(base: str, path: str, *, clients: int, requests: int, total: int, seed: int) -> list[float]:
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        with httpx.Client(base_url=base, timeout=600) as http:
            for _ in range(requests):
                params: dict[str, Any] = {"sort": rng.choice(SORTS), "limit": rng.choice((10, 25, 50)),
                                          "offset": rng.randrange(0, total)}
                state = rng.choice(STATES)
                if state:
                    params["state"] = state
                started = time.perf_counter()
                res = http.get(path, params=params)
                elapsed = time.perf_counter() - started
                res.raise_for_status()
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(latencies)


def main() -> None:
    import optuna
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=3, help="requests per client and route")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        make_large_study(url, args.trials)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(_app(url), host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        results = {}
        for name, path in (("SQL pagination (the service)", f"/api/studies/{LARGE_STUDY}/trials"),
                           ("load every trial (before)", f"/bench/old/{LARGE_STUDY}/trials")):
            results[name] = _load(base, path, clients=args.clients, requests=args.requests, total=args.trials, seed=1)
        server.should_exit = True
    print(f"{args.trials} trials, {args.clients} clients x {args.requests} requests per route (limits 10/25/50)")
    for name, lat in results.items():
        p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95)]
        print(f"{name:32s} p50 {p50 * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms")
    (new, old) = (results[k] for k in results)
    print(f"p95 ratio (before / SQL): {old[int(len(old) * 0.95)] / new[int(len(new) * 0.95)]:.1f}x")


if __name__ == "__main__":
    main()
