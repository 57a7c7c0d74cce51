"""Ctrl-C and SIGTERM during a search: stop cleanly once, exit at once the second time.

The first SIGINT (or the SIGTERM a cluster scheduler sends) asks the search to stop: no new
trial starts, Tune stops the running ones, the driver records them as FAIL "interrupted", marks the
search ``interrupted`` and emits nothing from the partial grid; the exit code is 130 (143 for
SIGTERM) and the same command resumes. A second signal exits at once (``os._exit``): the database
then still holds RUNNING trials, which the next run reaps and trains again, so that is safe too.

Ray Tune's own SIGINT handler would swallow the first Ctrl-C and let the run "finish" normally;
`effscale.search.execution.runner` turns it off (``TUNE_DISABLE_SIGINT_HANDLER``).

A SIGTERM sent to the whole process group (as Slurm does) also stops a local Ray's own processes,
and Tune then never returns. So a watchdog gives the orderly path `GRACE_S` seconds; after that it
records the interruption itself (``on_deadline``) and exits, well inside the 30 s a scheduler
usually waits before SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
GRACE_S = 10.0


class Interrupts:
    """A context that catches SIGINT and SIGTERM in the main thread; ``received`` is the first."""

    def __init__(self, *, on_deadline: Callable[[], None] | None = None, grace_s: float = GRACE_S) -> None:
        self.received: signal.Signals | None = None
        self.on_deadline = on_deadline
        self.grace_s = grace_s
        self._done = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in EXIT_CODES:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if self.received is not None:
            sys.stderr.write(f"\n{sig.name} again: exiting now; re-run the same command to resume\n")
            sys.stderr.flush()
            os._exit(EXIT_CODES[sig])
        self.received = sig
        sys.stderr.write(f"\n{sig.name}: stopping the search after recording the running trials "
                         f"(send it again to exit at once)\n")
        sys.stderr.flush()
        threading.Thread(target=self._watchdog, name="effscale-interrupt", daemon=True).start()

    def _watchdog(self) -> None:
        if self._done.wait(self.grace_s):
            return  # the orderly path finished in time
        try:
            if self.on_deadline is not None:
                self.on_deadline()
        finally:
            sys.stderr.write(f"effscale: interrupted: Ray did not stop within {self.grace_s:g} s; running trials "
                             "recorded as FAIL 'interrupted'; re-run the same command to resume\n")
            sys.stderr.flush()
            os._exit(self.exit_code)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.received, 1) if self.received is not None else 0
