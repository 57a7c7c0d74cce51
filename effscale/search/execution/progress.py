"""The one live view a search shows: trials done and running, the leader with mean ± se, elapsed.

On a terminal it redraws in place (rich, on stderr); elsewhere (CI logs, `--json` runs piped to a
file) it prints a line per finished trial, so stdout stays free for the JSON document. A race
decides its next round from the results, so the view counts trials rather than promising a total.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from effscale.search.records.schema import CONFIRMATION_ATTR, LABEL_ATTR
from effscale.search.stats import summarize


class SearchProgress:
    def __init__(self, study: str, *, reaped: int = 0, enabled: bool | None = None) -> None:
        self.study = study
        self.reaped = reaped
        self.running = 0
        self.states: dict[str, int] = {}
        self.values: dict[str, list[float]] = {}  # results this run, per candidate (or arm)
        self.started = time.time()
        self.console = Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._live: Live | None = None

    def __enter__(self) -> "SearchProgress":
        if self.enabled and self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        elif self.enabled:
            self.console.print(self._line(), soft_wrap=True)  # one line per event, never wrapped at 80
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def trial_started(self, spec: Any) -> None:
        self.running += 1
        self.refresh()

    def trial_finished(self, spec: Any, state: str, result: dict[str, Any]) -> None:
        self.running = max(0, self.running - 1)
        self.states[state] = self.states.get(state, 0) + 1
        if state == "complete" and not spec.attrs.get(CONFIRMATION_ATTR) and result.get("val_top1") is not None:
            label = spec.attrs.get(LABEL_ATTR) or "alpha={:g} beta={:g} gamma={:g}".format(*spec.key)
            self.values.setdefault(label, []).append(float(result["val_top1"]))
        if self._live is not None:
            self._live.update(self._render())
        elif self.enabled:
            self.console.print(self._line(), soft_wrap=True)  # one line per event, never wrapped at 80

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _leader(self) -> str:
        if not self.values:
            return "-"
        label, values = max(self.values.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))
        s = summarize(values)
        se = f" ± {s.stderr:.3f}" if s.stderr is not None else ""
        return f"{s.mean:.3f}{se} (n={s.n}) at {label}"

    def _line(self) -> str:
        done = sum(self.states.values())
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.states.items()))
        extra = f", {self.reaped} orphaned trials re-queued" if self.reaped else ""
        elapsed = int(time.time() - self.started)
        return (
            f"{self.study}: trials done {done} ({states or 'none yet'}), running {self.running}; "
            f"leader {self._leader()}; {elapsed // 60}m{elapsed % 60:02d}s{extra}"
        )

    def _render(self) -> Text:
        return Text(self._line())
