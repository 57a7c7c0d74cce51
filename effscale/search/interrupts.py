"""Ctrl-C and SIGTERM during a search: stop cleanly once, exit at once the second time.

The first SIGINT (or the SIGTERM a cluster scheduler sends) asks the search to stop: no new
trial starts, Tune stops the running ones, the driver records them as FAIL "interrupted", marks the
search ``interrupted`` and emits nothing from the partial grid; the exit code is 130 (143 for
SIGTERM) and the same command resumes. A second signal exits at once (``os._exit``): the database
then still holds RUNNING trials, which the next run reaps and trains again, so that is safe too.

Ray Tune's own SIGINT handler would swallow the first Ctrl-C and let the run "finish" normally;
`effscale.search.runner` turns it off (``TUNE_DISABLE_SIGINT_HANDLER``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupts:
    """A context that catches SIGINT and SIGTERM in the main thread; ``received`` is the first."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in EXIT_CODES:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
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

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.received, 1) if self.received is not None else 0
