"""Exceptions that say what to do.

`UsageError` is bad input the user can fix: the CLI prints its message on one line and exits 2,
the REST API answers 422. It subclasses `ValueError` so library callers can catch the usual type.

`SearchFailed` is a search that ran but produced no result (no candidate completed): one line,
exit 1. `SearchInterrupted` is one stopped by a signal, a cancel or a database outage: nothing is
emitted from a partial grid, the same command resumes it, and the CLI exits 130 (SIGINT), 143
(SIGTERM) or 1.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A value the user supplied is wrong; the message names it and the fix."""


class SearchFailed(RuntimeError):
    """A search that ran to its end without a result; the message says why and what to change."""

    exit_code = 1


class SearchInterrupted(SearchFailed):
    """A search stopped before its end; re-running the same command resumes it."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
