"""The one live view a search shows: done/running/left, the best so far and an ETA (rich, on stderr).

On a terminal it redraws in place; elsewhere (CI logs, `--json` runs piped to a file) it prints a
line per finished trial, so stdout stays free for the JSON document.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text


class SearchProgress:
    def __init__(self, study: str, *, total: int, done: int, reaped: int = 0, enabled: bool | None = None) -> None:
        self.study = study
        self.total = total
        self.done = done
        self.resumed = done
        self.reaped = reaped
        self.running = 0
        self.states: dict[str, int] = {}
        self.best: tuple[float, dict[str, Any]] | None = None
        self.started = time.time()
        self.console = Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._live: Live | None = None

    def __enter__(self) -> "SearchProgress":
        if self.enabled and self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        elif self.enabled:
            self.console.print(self._line())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def trial_started(self) -> None:
        self.running += 1
        self.refresh()

    def trial_finished(self, state: str, row: dict[str, Any]) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        self.states[state] = self.states.get(state, 0) + 1
        value = row.get("value")
        if state == "complete" and value is not None and (self.best is None or value > self.best[0]):
            self.best = (value, row.get("params", {}))
        if self._live is not None:
            self._live.update(self._render())
        elif self.enabled:
            self.console.print(self._line())

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _eta(self) -> str:
        finished_here = self.done - self.resumed
        left = self.total - self.done
        if finished_here <= 0 or left <= 0:
            return "-"
        seconds = (time.time() - self.started) / finished_here * left
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"

    def _line(self) -> str:
        left = max(0, self.total - self.done - self.running)
        best = "-"
        if self.best is not None:
            p = self.best[1]
            best = f"{self.best[0]:.4f} at alpha={p.get('alpha', 0):g} beta={p.get('beta', 0):g} gamma={p.get('gamma', 0):g}"
        extra = f", {self.reaped} orphaned trials re-queued" if self.reaped else ""
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.states.items()))
        return (
            f"{self.study}: done {self.done}/{self.total} ({states or 'none yet'}), running {self.running}, left {left}, "
            f"best {best}, ETA {self._eta()}{extra}"
        )

    def _render(self) -> Text:
        return Text(self._line())
