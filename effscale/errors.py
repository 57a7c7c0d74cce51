"""Exceptions that say what to do.

`UsageError` is bad input the user can fix: the CLI prints its message on one line and exits 2,
the REST API answers 422. It subclasses `ValueError` so library callers can catch the usual type.
"""

from __future__ import annotations


class UsageError(ValueError):
    """A value the user supplied is wrong; the message names it and the fix."""
