"""How the command line prints: one JSON document, or rich tables and plain lines.

Tables are as wide as their widest row needs (a pipe has no terminal width) and never wrap a cell;
a top-1 is always a mean ± standard error with its n, never one number.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def print_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]], *, file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    cells = [[str(cell) for cell in row] for row in rows]
    for row in cells:
        table.add_row(*row)
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    Console(width=max(100, sum(widths) + 3 * len(widths) + 1), file=file).print(table)


def stderr_console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True)


def human(n: float) -> str:
    """``401659392`` -> ``402M``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:g}"


def mean_se(stats: dict[str, Any] | None) -> str:
    """``0.9526 ± 0.0041 (n=3)``: never a bare top-1."""
    if not stats or stats.get("val_top1_mean") is None:
        return "n/a"
    se = stats.get("val_top1_stderr")
    return f"{stats['val_top1_mean']:.4f} ± {'n/a' if se is None else f'{se:.4f}'} (n={stats['repeats']})"


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def triple(d: dict[str, Any]) -> str:
    return f"({d['alpha']:g}, {d['beta']:g}, {d['gamma']:g})"
