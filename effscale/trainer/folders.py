"""Folder sources (``folder:PATH``): image files listed by class, decoded once per size, cached.

A folder holds one subfolder per class, or ``train/`` and ``val/`` above them (then that split is
kept). Its images are decoded once per stored size -- the largest resolution the run will use,
never above their own (`load_data`'s ``max_resolution``) -- and cached under `default_cache_dir`,
one file per size, keyed by every file's path, size and mtime; a set that would not fit in memory
is refused before decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from effscale.errors import UsageError
from effscale.models.diskcache import write_atomic
from effscale.trainer.sources import Raw, require_path

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})
# Folder images are stored square at the smallest short side found, capped at the largest
# resolution the run will use (`load_data`'s ``max_resolution``); when that is not given, at this:
# proxy trials mostly train at 32..~100 px, so keeping more pixels would only cost memory.
FOLDER_MAX_SIZE = 128
# Loading a folder holds its decoded set twice at the peak (the decoded images, then their
# channels-first copy being split into train and val); it is refused before decoding when that
# is over this fraction of the memory available (the rest: the process itself, other programs).
FOLDER_LOAD_COPIES = 2
FOLDER_MEMORY_FRACTION = 0.8
_CACHE_VERSION = 2  # 2: one cache file per stored size, and the short side cached on its own

# Images decoded from folders since the process started: lets tests (and users) check that a
# second load of the same folder is served from the cache.
_DECODED = 0


def decode_count() -> int:
    """How many image files this process has decoded with Pillow (cache hits decode none)."""
    return _DECODED


def default_cache_dir() -> Path:
    """``$EFFSCALE_CACHE_DIR``, else ``~/.cache/effscale/data``."""
    env = os.environ.get("EFFSCALE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "effscale" / "data"


def _list_images(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _class_dirs(spec: str, root: Path) -> dict[str, list[Path]]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out: dict[str, list[Path]] = {}
    for d in dirs:
        files = _list_images(d)
        if not files:
            raise UsageError(
                f"{spec}: class folder {d} has no images; add images ({', '.join(sorted(IMAGE_EXTENSIONS))}) "
                "or remove the folder"
            )
        out[d.name] = files
    return out


@contextmanager
def _image(path: Path) -> Iterator[Any]:
    """Pillow's image at ``path``; whatever it cannot read, then or while used, a `UsageError`
    that names the file and what to do."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            yield im
    except UnidentifiedImageError:
        raise UsageError(f"corrupt image {path}: cannot identify image file; remove or replace it") from None
    except Image.DecompressionBombError:
        raise UsageError(f"image {path} is too large to decode safely (Pillow's limit); downscale it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"corrupt image {path}: {reason}; remove or replace it") from None


def _decode(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    global _DECODED
    with _image(path) as im:
        # draft() lets JPEG decode straight to a smaller scale: most of the decode time saved.
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
        if s != size:
            im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        arr = np.asarray(im, dtype=np.uint8)
    _DECODED += 1
    return arr


def _image_short_side(path: Path) -> int:
    with _image(path) as im:  # reads the header only
        return min(im.size)


def read_folder(spec: str, arg: str, cache_dir: Path | None, max_resolution: int | None) -> Raw:
    """A folder's images, stored square at min(smallest short side, ``max_resolution``): decoded
    once per stored size, then read from the cache (one file per size)."""
    root, files, classes, split_layout = _folder_files(spec, arg)
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    stem = f"folder-{root.name}-{_folder_key(root, files)}"
    cap = FOLDER_MAX_SIZE if max_resolution is None else max_resolution
    # Never upsample at load time: the trainer resizes on the device anyway, and larger stored
    # images would only cost memory and cache.
    size = min(cap, _smallest_short_side(files, cache_root / f"{stem}.json"))
    _check_folder_memory(spec, len(files), size)
    cache_file = cache_root / f"{stem}-{size}px.npz"
    cached = _read_folder_cache(cache_file)
    if cached is not None:
        x, y, is_val = cached
    else:
        x, y, is_val = _decode_folder(files, classes, size)
        write_atomic(cache_file, lambda f: np.savez(f, x=x, y=y, is_val=is_val))
    return Raw(x, y, len(classes), allow_flip=True, is_val=is_val if split_layout else None, classes=classes)


_Files = list[tuple[Path, str, bool]]  # (image, class name, is validation)


def _folder_files(spec: str, arg: str) -> tuple[Path, _Files, list[str], bool]:
    """(resolved root, every image with its class and split, the classes, whether train/ and val/
    give the split) or `UsageError`."""
    what = "one subfolder per class (or train/ and val/ above them)"
    root = require_path(spec, arg, "folder", what)
    if not root.is_dir():
        raise UsageError(f"{spec}: not a directory; pass folder:PATH with {what}")
    root = root.resolve()
    split_layout = (root / "train").is_dir() and (root / "val").is_dir()
    if split_layout:
        train, val = _class_dirs(spec, root / "train"), _class_dirs(spec, root / "val")
        extra = sorted(set(val) - set(train))
        if extra:
            raise UsageError(f"{spec}: val/ has classes missing from train/: {', '.join(extra)}; "
                             "give every class training images")
        classes = sorted(train)
        files = [(p, c, False) for c in classes for p in train[c]]
        files += [(p, c, True) for c in sorted(val) for p in val[c]]
    else:
        tree = _class_dirs(spec, root)
        classes = sorted(tree)
        files = [(p, c, False) for c in classes for p in tree[c]]
    if not files:
        raise UsageError(f"{spec}: no images found; pass folder:PATH with {what}")
    if len(classes) < 2:
        raise UsageError(f"{spec}: only one class ({classes[0]}); a classifier needs at least two "
                         "class subfolders")
    return root, files, classes, split_layout


def _folder_key(root: Path, files: _Files) -> str:
    """The folder, every file's relative path, class, split, size and mtime: any edit re-decodes.
    The stored size is not part of it: it names the cache files of each size (`read_folder`)."""
    h = hashlib.sha256(f"v{_CACHE_VERSION}|{root}".encode())
    for p, c, is_val in files:
        st = p.stat()
        h.update(f"|{p.relative_to(root)}|{c}|{int(is_val)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _smallest_short_side(files: _Files, cache_file: Path) -> int:
    """The smallest short side among the images; read from every header once, then cached (so a
    cached load opens no image at all)."""
    try:
        return int(json.loads(cache_file.read_text())["short_side"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    side = min(_image_short_side(p) for p, _, _ in files)
    write_atomic(cache_file, lambda f: f.write(json.dumps({"short_side": side}).encode()))
    return side


def _check_folder_memory(spec: str, n: int, size: int) -> None:
    """Refuse, before decoding, a set that would not fit in the memory available now."""
    import psutil

    need = n * size * size * 3  # uint8 RGB
    available = psutil.virtual_memory().available
    if FOLDER_LOAD_COPIES * need > FOLDER_MEMORY_FRACTION * available:
        raise UsageError(
            f"{spec}: {n} images at {size}x{size} px take {need / 2**30:.1f} GiB decoded "
            f"({n}x{size}x{size}x3 bytes, held twice while loading) but {available / 2**30:.1f} GiB of memory "
            f"is available; lower the largest resolution the run uses (--base-resolution or --resolution; "
            f"it sets the stored size) or use fewer images"
        )


def _decode_folder(files: _Files, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images N×size×size×3 uint8, labels, is-validation mask), decoded on threads straight
    into one array (no list of images to stack: that would hold the set twice)."""
    x = np.empty((len(files), size, size, 3), dtype=np.uint8)

    def decode(i: int) -> None:
        x[i] = _decode(files[i][0], size)

    # Pillow releases the GIL while decoding, so threads do overlap.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(decode, range(len(files))))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for _, c, _ in files], dtype=np.int64)
    is_val = np.array([v for _, _, v in files], dtype=bool)
    return x, y, is_val


def _read_folder_cache(cache_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            return z["x"], z["y"], z["is_val"]
    except (OSError, ValueError, KeyError):
        return None  # a truncated cache file: decode again and overwrite it
