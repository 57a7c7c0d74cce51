"""What a search launched through the API may touch, on top of what `effscale search` accepts.

`SearchConfig` (generated from the settings dataclasses) checks a request the way the CLI checks
its flags. A caller of the API is not the person at the server's keyboard, so the server adds two
restrictions of its own:

* **data**: ``folder:``, ``cifar:`` and ``npz:`` paths must resolve, symlinks included, inside
  ``effscale serve --data-root DIR`` (relative paths resolve against it); without a data root only
  the bundled ``digits`` and ``synthetic`` sources are accepted;
* **baselines**: a ``package.module:function`` baseline imports (runs) code on the server's
  workers, so it needs ``effscale serve --allow-user-baselines``; a registered name must exist.

Each refusal is a `UsageError` naming the value and the server option that would allow it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from effscale.errors import UsageError

TOKEN_ENV = "EFFSCALE_TOKEN"  # the bearer token that launching, cancelling and logs need
BUNDLED_SOURCES = ("digits", "synthetic")
PATH_SOURCES = ("folder", "cifar", "npz")


@dataclass(frozen=True)
class LaunchPolicy:
    """The server's restrictions on launched searches (``effscale serve`` options)."""

    data_root: Path | None = None  # absolute and symlink-free (see `data_root`)
    allow_user_baselines: bool = False

    def check_baseline(self, name: str) -> str:
        """``name`` when this server may run it, else `UsageError`."""
        if ":" in name:
            if not self.allow_user_baselines:
                raise UsageError(
                    f"baseline {name!r} is a user function: importing it runs its code on this server, "
                    "which it refuses; start the server with `effscale serve --allow-user-baselines` "
                    "to allow package.module:function baselines"
                )
            return name
        from effscale.models import list_baselines  # torch: only when a search is launched

        known = list_baselines()
        if name not in known:
            raise UsageError(f"unknown baseline {name!r}; known: {', '.join(known)}")
        return name

    def confine_data(self, spec: str) -> str:
        """``spec`` with its path made absolute and real, when it lies inside the data root."""
        kind, _, arg = spec.strip().partition(":")
        kind = kind.strip().lower()
        if kind in BUNDLED_SOURCES:
            return spec
        if kind not in PATH_SOURCES:  # the request schema already refused it; belt and braces
            raise UsageError(f"data {spec!r} is not a data source")
        if self.data_root is None:
            raise UsageError(
                f"data {spec!r}: this server reads only the bundled sources ({', '.join(BUNDLED_SOURCES)}); "
                f"start it with `effscale serve --data-root DIR` to allow {', '.join(p + ':' for p in PATH_SOURCES)} "
                "paths inside DIR"
            )
        root = self.data_root
        given = Path(arg.strip())
        try:
            real = (given if given.is_absolute() else root / given).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
            raise UsageError(
                f"data {spec!r}: no such file or directory under the server's data root {root} "
                "(relative paths resolve against it)"
            ) from None
        _check_inside(real, root, spec)
        if real.is_dir():
            _check_tree(real, root, spec)
        return f"{kind}:{real}"


def data_root(path: str | os.PathLike[str]) -> Path:
    """``effscale serve --data-root``: an existing directory, absolute and with symlinks resolved."""
    try:
        root = Path(path).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise UsageError(f"--data-root {str(path)!r} does not exist: pass an existing directory") from None
    if not root.is_dir():
        raise UsageError(f"--data-root {str(path)!r} is not a directory: pass a directory")
    return root


def _check_inside(real: Path, root: Path, spec: str, *, link: str | None = None) -> None:
    if not real.is_relative_to(root):
        where = f"holds a link {link} to {real}" if link else f"resolves to {real}"
        raise UsageError(
            f"data {spec!r} {where}, outside the server's data root {root}: "
            "pass a path inside it (relative paths resolve against it)"
        )


def _check_tree(top: Path, root: Path, spec: str) -> None:
    """Every symlink below ``top`` (which the folder and CIFAR loaders follow) must point inside
    ``root`` too. `os.scandir` knows which entries are links without a stat per file."""
    pending, seen = [top], {top}
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise UsageError(f"data {spec!r}: cannot read {directory} ({exc.strerror})") from None
        for entry in entries:
            if entry.is_symlink():
                target = Path(os.path.realpath(entry.path))
                _check_inside(target, root, spec, link=entry.path)
                if target.is_dir() and target not in seen:  # its files are read through the link
                    seen.add(target)
                    pending.append(target)
            elif entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
