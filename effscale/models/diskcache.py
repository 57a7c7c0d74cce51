"""Measurements that outlive the process: one small JSON file per key, keyed by what they depend on.

Every figure effscale measures once and reads many times -- a network's FLOPs, its activation
count, a timed training step, a CUDA step -- goes through `DiskCache.cached`: read the file,
else measure and write it. A key carries, besides the caller's own (architecture signature,
resolution, batch...), `cache_versions`: effscale's, torch's and fvcore's versions and a digest of
the source files of the packages the measurement runs (``models`` for FLOPs; ``models`` and
``trainer`` for what a training step holds or takes), so an edit to a block in a working tree
misses without a version bump. The digest reads files, it imports nothing: models never import
trainer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")

_PACKAGE = Path(__file__).resolve().parent.parent
_VERSIONS: dict[tuple[str, ...], dict[str, str]] = {}


def cache_root() -> Path:
    """``$EFFSCALE_CACHE_DIR``, else ``~/.cache/effscale`` (read on every call: tests move it)."""
    env = os.environ.get("EFFSCALE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "effscale"


def cache_versions(code: tuple[str, ...] = ("models",)) -> dict[str, str]:
    """What a cached measurement depends on besides its key: effscale's, torch's and fvcore's
    versions, and a digest of the sources of effscale's ``code`` packages (a block edited in a
    working tree changes FLOPs without changing the version string)."""
    if code not in _VERSIONS:
        import importlib.metadata

        import torch

        from effscale._version import __version__

        digest = hashlib.sha1()
        for source in sorted(path for package in code for path in _PACKAGE.glob(f"{package}/*.py")):
            digest.update(source.name.encode() + source.read_bytes())
        try:
            fvcore = importlib.metadata.version("fvcore")
        except importlib.metadata.PackageNotFoundError:
            fvcore = "unknown"
        _VERSIONS[code] = {"effscale": __version__, "torch": torch.__version__, "fvcore": fvcore,
                           "code": digest.hexdigest()[:16]}
    return dict(_VERSIONS[code])


def write_atomic(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """``write(file)`` into a temporary file, then renamed over ``path`` (`os.replace`, atomic on
    POSIX and Windows): a concurrent reader never sees half a file, and concurrent writers never
    interleave bytes. A directory that cannot be written only costs the next reader the work."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


class DiskCache:
    """One kind of measurement on disk: a JSON file per key under ``cache_root()/kind``.

    Why a file per key: each write is a whole file (`write_atomic`), so concurrent writers (two
    searches, or Ray workers) never interleave bytes and readers never see half a file; the last
    writer wins, with the same value. No lock, no database to corrupt as a whole: a damaged file is one miss, rewritten
    by the next measurement. The file repeats its full key, so a hash collision or a file copied
    between keys is also a miss. An unwritable cache directory only costs the speed-up.
    """

    def __init__(self, kind: str, *, code: tuple[str, ...] = ("models",)) -> None:
        self.kind = kind
        self.code = code  # the packages whose sources the measurement runs (`cache_versions`)

    def _locate(self, key: Any) -> tuple[Path, str]:
        text = json.dumps([self.kind, key, cache_versions(self.code)], sort_keys=True, default=repr)
        return cache_root() / self.kind / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.json", text

    def get(self, key: Any) -> Any:
        """The value stored under ``key``, or None (absent, unreadable, corrupt or another key's)."""
        path, text = self._locate(key)
        try:
            document = json.loads(path.read_text())
            return document["value"] if document.get("key") == text else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: Any, value: Any) -> None:
        path, text = self._locate(key)
        document = json.dumps({"key": text, "value": value}).encode()
        write_atomic(path, lambda f: f.write(document))

    def path(self, key: Any) -> Path:
        return self._locate(key)[0]

    def cached(
        self, key: Any, measure: Callable[[], T], *, load: Callable[[Any], T], dump: Callable[[T], Any],
        enabled: bool = True,
    ) -> tuple[T, bool]:
        """(the value under ``key``, True) read back by ``load``; else (``measure()``, False), stored
        as ``dump`` gives it. A stored value ``load`` cannot read (an older layout) is measured
        again. ``enabled=False`` measures and stores nothing."""
        stored = self.get(key) if enabled else None
        if stored is not None:
            with contextlib.suppress(TypeError, KeyError, ValueError, AttributeError):
                return load(stored), True
        value = measure()
        if enabled:
            self.put(key, dump(value))
        return value, False
