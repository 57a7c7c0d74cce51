"""Proxy datasets: loaded once into memory as uint8 tensors, split deterministically by seed.

A source is a string (``load_data("digits")``, ``"synthetic:classes=4,size=16,n=200"``,
``"folder:PATH"``, ``"cifar:PATH"``, ``"npz:PATH"``). Whatever the source, the result is a
`ProxyData` of plain tensors -- uint8 N×C×H×W images and int64 labels -- so that it pickles
cheaply to Ray workers and moves to a GPU in one copy. Resizing to a trial's resolution and
augmentation happen later, on the device, in `effscale.trainer.proxy`.

Sources that ship their own split (``folder:`` with ``train/`` and ``val/``, CIFAR's test batch,
an npz with ``x_val``/``y_val``) keep it; the others are split per class by ``seed``.

``digits`` reads the file scikit-learn ships, without importing scikit-learn (its import is most
of a warm ``effscale plan``'s time). ``folder:`` images are decoded once per stored size -- the
largest resolution the run will use, never above their own (`load_data`'s ``max_resolution``) --
and cached under `default_cache_dir`, one file per size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from effscale.errors import UsageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SOURCES",
    "ProxyData",
    "check_data_spec",
    "decode_count",
    "default_cache_dir",
    "load_data",
]

SOURCES = ("digits", "synthetic", "folder", "cifar", "npz")
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
# `_channel_stats` converts the training set to float64 in chunks of at most this many bytes.
_STATS_CHUNK_BYTES = 256 * 1024**2
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


@dataclass
class ProxyData:
    """A proxy dataset in memory: uint8 N×C×H×W images, int64 labels, and what the trainer needs.

    ``mean``/``std`` are the training images' per-channel statistics on the 0..1 scale; the
    trainer normalises with them after resizing. ``allow_flip`` is False where a mirror image is a
    different class (digits) or is not a plausible sample (synthetic prototypes).
    """

    x_train: Tensor = field(repr=False)
    y_train: Tensor = field(repr=False)
    x_val: Tensor = field(repr=False)
    y_val: Tensor = field(repr=False)
    num_classes: int
    channels: int
    native_size: int
    allow_flip: bool
    spec: str
    mean: Tensor = field(repr=False)  # the dataclass repr would print every pixel
    std: Tensor = field(repr=False)
    classes: list[str] = field(default_factory=list, repr=False)

    @property
    def num_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def num_val(self) -> int:
        return int(self.x_val.shape[0])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: str | torch.device, *, non_blocking: bool = False) -> ProxyData:
        """A copy on ``device`` (the same object if it is already there)."""
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        move = lambda t: t.to(device, non_blocking=non_blocking)  # noqa: E731
        return replace(
            self,
            x_train=move(self.x_train),
            y_train=move(self.y_train),
            x_val=move(self.x_val),
            y_val=move(self.y_val),
            mean=move(self.mean),
            std=move(self.std),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "num_classes": self.num_classes,
            "channels": self.channels,
            "native_size": self.native_size,
            "allow_flip": self.allow_flip,
        }


# --------------------------------------------------------------------------------------------
# Spec parsing


def _parse_spec(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError(f"data source {spec!r} is empty; pass one of {', '.join(SOURCES)}")
    spec = spec.strip()
    # Split on the first colon only: paths may contain colons.
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in SOURCES:
        raise UsageError(
            f"unknown data source {spec!r}; pass digits, synthetic[:classes=N,size=S,n=K], "
            "folder:PATH, cifar:PATH or npz:PATH"
        )
    return kind, arg.strip()


def _parse_options(spec: str, arg: str, allowed: dict[str, int]) -> dict[str, int]:
    opts = dict(allowed)
    if not arg:
        return opts
    for item in arg.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in allowed or not eq:
            raise UsageError(
                f"{spec}: bad option {item.strip()!r}; options are "
                + ", ".join(f"{k}=INT" for k in allowed)
            )
        try:
            opts[key] = int(value)
        except ValueError:
            raise UsageError(f"{spec}: option {key}={value.strip()!r} is not an integer") from None
        if opts[key] < 1:
            raise UsageError(f"{spec}: option {key}={opts[key]} must be >= 1")
    return opts


_SYNTHETIC_OPTIONS = {"classes": 10, "size": 32, "n": 1000}


def check_data_spec(spec: str) -> str:
    """Check a source string's grammar without reading anything (the CLI's and the API's option
    check); `load_data` does the rest (paths, files, labels)."""
    kind, arg = _parse_spec(spec)
    if kind == "digits" and arg:
        raise UsageError(f"{spec}: digits takes no options; pass digits")
    if kind == "synthetic":
        _parse_options(spec, arg, _SYNTHETIC_OPTIONS)
    if kind in ("folder", "cifar", "npz") and not arg:
        raise UsageError(f"{spec}: no path given; pass {kind}:PATH")
    return spec.strip()


def _require_path(spec: str, arg: str, kind: str, what: str) -> Path:
    path = Path(arg).expanduser()  # non-empty: check_data_spec saw to that
    if not path.exists():
        raise UsageError(f"{spec}: no such file or directory; pass {kind}:PATH with {what}")
    return path


# --------------------------------------------------------------------------------------------
# Sources. Each returns images as a uint8 N×H×W×C numpy array, labels, and optionally a given
# split (a boolean "is validation" mask).


@dataclass
class _Raw:
    x: np.ndarray  # uint8 N×H×W×C
    y: np.ndarray  # int64 N
    num_classes: int
    allow_flip: bool
    is_val: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)


def _digits_file() -> Path | None:
    """scikit-learn's bundled digits file (``sklearn/datasets/data/digits.csv.gz``), found without
    importing scikit-learn; None if it is not installed or keeps the file elsewhere.

    Why not ``load_digits``: importing scikit-learn costs ~1.4 s (it pulls in scipy and pandas),
    most of a warm ``effscale plan`` on digits; reading the file costs milliseconds.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # a top-level name: finds it, runs nothing
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def _digits_arrays(path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(images, target) exactly as ``sklearn.datasets.load_digits()`` returns them (float64
    N×8×8, int), read from ``path`` (`_digits_file`) as scikit-learn reads it; ``path=None``
    calls ``load_digits`` itself."""
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    import gzip

    # scikit-learn's own read (`load_gzip_compressed_csv_data`): 64 pixels then the label per row.
    with gzip.open(path, mode="rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)


def _load_digits(spec: str, arg: str) -> _Raw:
    images, target = _digits_arrays(_digits_file())
    # Pixel values are 0..16 (4x4 block counts); spread them over the uint8 range.
    x = np.rint(images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return _Raw(x, target.astype(np.int64), 10, allow_flip=False,
                classes=[str(c) for c in range(10)])


def _load_synthetic(spec: str, arg: str) -> _Raw:
    """Class prototypes (smooth random colour fields) plus noise and a random shift: learnable in
    a few epochs, hard enough that an untrained network is at chance."""
    opts = _parse_options(spec, arg, _SYNTHETIC_OPTIONS)
    classes, size, n = opts["classes"], opts["size"], opts["n"]
    # Fixed generator: the *data* is the same for every seed; only the split follows the seed.
    g = torch.Generator().manual_seed(1234 + 7 * classes + 13 * size)
    protos = torch.rand(classes, 3, 4, 4, generator=g)
    protos = torch.nn.functional.interpolate(protos, size=(size, size), mode="bilinear",
                                             align_corners=False)
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=g)]
    shift = torch.randint(-max(1, size // 8), max(1, size // 8) + 1, (2,), generator=g)
    x = protos[y] + 0.25 * torch.randn(n, 3, size, size, generator=g)
    x = torch.roll(x, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return _Raw(x.numpy(), y.numpy().astype(np.int64), classes, allow_flip=False,
                classes=[str(c) for c in range(classes)])


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


def _decode(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    global _DECODED
    try:
        with Image.open(path) as im:
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
    except UnidentifiedImageError:
        raise UsageError(f"corrupt image {path}: cannot identify image file; remove or replace it") from None
    except Image.DecompressionBombError:
        raise UsageError(f"image {path} is too large to decode safely (Pillow's limit); downscale it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"corrupt image {path}: {reason}; remove or replace it") from None
    _DECODED += 1
    return arr


def _image_short_side(path: Path) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # reads the header only
            return min(im.size)
    except UnidentifiedImageError:
        raise UsageError(f"corrupt image {path}: cannot identify image file; remove or replace it") from None
    except Image.DecompressionBombError:
        raise UsageError(f"image {path} is too large to decode safely (Pillow's limit); downscale it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UsageError(f"corrupt image {path}: {exc}; remove or replace it") from None


def _load_folder(spec: str, arg: str, cache_dir: Path | None, max_resolution: int | None) -> _Raw:
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
        _write_atomic(cache_file, lambda f: np.savez(f, x=x, y=y, is_val=is_val))
    return _Raw(x, y, len(classes), allow_flip=True, is_val=is_val if split_layout else None, classes=classes)


_Files = list[tuple[Path, str, bool]]  # (image, class name, is validation)


def _folder_files(spec: str, arg: str) -> tuple[Path, _Files, list[str], bool]:
    """(resolved root, every image with its class and split, the classes, whether train/ and val/
    give the split) or `UsageError`."""
    what = "one subfolder per class (or train/ and val/ above them)"
    root = _require_path(spec, arg, "folder", what)
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
    The stored size is not part of it: it names the cache files of each size (`_load_folder`)."""
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
    _write_atomic(cache_file, lambda f: f.write(json.dumps({"short_side": side}).encode()))
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


def _write_atomic(path: Path, write: Any) -> None:
    """``write(file)`` into a temporary file, then renamed over ``path``: a concurrent reader never
    sees half a file. A cache directory that cannot be written only costs the next load the work."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        pass


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR's archives are pickles; allow only what they contain (dicts, bytes, numpy arrays) so
    that a tampered archive cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _unpickle(blob: bytes, where: str, spec: str) -> dict[bytes, Any]:
    try:
        obj = _CifarUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise UsageError(f"{spec}: {where} is not a CIFAR python batch ({exc}); "
                         "pass the python version of the archive") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{spec}: {where} is not a CIFAR python batch; pass the python version")
    return {(k.encode() if isinstance(k, str) else k): v for k, v in obj.items()}


_CIFAR10 = (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], ["test_batch"], b"labels", 10)
_CIFAR100 = (["train"], ["test"], b"fine_labels", 100)


def _load_cifar(spec: str, arg: str) -> _Raw:
    what = "the CIFAR-10/100 python archive (.tar.gz or extracted)"
    path = _require_path(spec, arg, "cifar", what)
    # Map the batch's base name to a reader, whether the batches sit in a tarball or a directory.
    blobs: dict[str, Any] = {}
    tar: tarfile.TarFile | None = None
    if path.is_file():
        try:
            tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError) as exc:
            raise UsageError(f"{spec}: cannot open archive ({exc}); pass {what}") from None
        for m in tar.getmembers():
            if m.isfile():
                blobs.setdefault(Path(m.name).name, m)
    else:
        for p in sorted(path.rglob("*")):
            if p.is_file():
                blobs.setdefault(p.name, p)
    try:
        for train_names, test_names, label_key, num_classes in (_CIFAR10, _CIFAR100):
            if all(n in blobs for n in train_names + test_names):
                break
        else:
            raise UsageError(f"{spec}: no CIFAR batches found (data_batch_1..5 + test_batch, or "
                             f"train + test); pass {what}")

        def read(name: str) -> tuple[np.ndarray, np.ndarray]:
            src = blobs[name]
            blob = tar.extractfile(src).read() if tar is not None else Path(src).read_bytes()
            d = _unpickle(blob, name, spec)
            if b"data" not in d or label_key not in d:
                raise UsageError(f"{spec}: {name} lacks b'data' or {label_key!r}; pass {what}")
            data = np.asarray(d[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072:
                raise UsageError(f"{spec}: {name} data has shape {data.shape}, not N×3072; pass {what}")
            # Rows are 1024 red, then green, then blue values, each 32×32 row-major.
            return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(d[label_key], dtype=np.int64)

        parts = [read(n) for n in train_names] + [read(n) for n in test_names]
    finally:
        if tar is not None:
            tar.close()
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    is_val = np.concatenate([np.full(len(p[1]), i >= len(train_names)) for i, p in enumerate(parts)])
    return _Raw(x, y, num_classes, allow_flip=True, is_val=is_val)


def _load_npz(spec: str, arg: str) -> _Raw:
    what = "arrays x (uint8 N×H×W×C) and y"
    path = _require_path(spec, arg, "npz", what)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{spec}: cannot read ({exc}); pass an .npz with {what}") from None
    with z:
        if "x" not in z or "y" not in z:
            raise UsageError(f"{spec}: has arrays {sorted(z.files)}; pass an .npz with {what}")
        xs, ys = [z["x"]], [z["y"]]
        has_val = "x_val" in z and "y_val" in z
        if has_val:
            xs.append(z["x_val"])
            ys.append(z["y_val"])
        declared = int(z["num_classes"]) if "num_classes" in z else None
        allow_flip = bool(z["allow_flip"]) if "allow_flip" in z else True
    for name, x, y in zip(("x", "x_val"), xs, ys):
        if x.dtype != np.uint8:
            raise UsageError(f"{spec}: {name} has dtype {x.dtype}; store images as uint8 0..255")
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
            raise UsageError(f"{spec}: {name} has shape {x.shape}; pass N×H×W×C with C 1 or 3 (or N×H×W)")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise UsageError(f"{spec}: y for {name} must be {len(x)} integers, got {y.dtype} {y.shape}")
    x = np.concatenate([a if a.ndim == 4 else a[..., None] for a in xs])
    y = np.concatenate(ys).astype(np.int64)
    if len(y) == 0:
        raise UsageError(f"{spec}: holds no images; pass an .npz with {what}")
    num_classes = declared if declared is not None else int(y.max()) + 1
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise UsageError(f"{spec}: label y[{i}]={int(y[i])} is out of range 0..{num_classes - 1}; "
                         "use labels 0..num_classes-1")
    is_val = np.concatenate([np.zeros(len(ys[0]), bool), np.ones(len(ys[1]), bool)]) if has_val else None
    return _Raw(x, y, num_classes, allow_flip=allow_flip, is_val=is_val)


# --------------------------------------------------------------------------------------------


def _stratified_split(y: Tensor, val_fraction: float, seed: int) -> Tensor:
    """Boolean is-validation mask: each class split in the same proportion, the same for a seed."""
    g = torch.Generator().manual_seed(seed)
    is_val = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        # At least one validation sample per class (tiny folders would otherwise validate on
        # nothing) and at least one training sample; a class of one stays in training.
        k = min(len(idx) - 1, max(1, int(len(idx) * val_fraction + 0.5)))
        is_val[idx[:k]] = True
    return is_val


def load_data(
    spec: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    channels: int = 3,
    max_resolution: int | None = None,
) -> ProxyData:
    """Load a proxy dataset into memory; see the module docstring for the sources.

    ``channels=3`` repeats grayscale images so that ImageNet stems accept them; ``channels=1``
    keeps (or converts to) a single luminance channel. ``max_resolution`` is the largest input
    size the run will train at (a search's largest candidate resolution, a training run's
    resolution): ``folder:`` images are decoded and cached at min(their smallest short side,
    ``max_resolution``) -- `FOLDER_MAX_SIZE` when it is None -- and refused before decoding if
    they would not fit in memory; other sources load at their own size whatever it says. Raises
    `UsageError` on any bad input.
    """
    if not (0.0 < float(val_fraction) < 1.0):
        raise UsageError(f"val_fraction={val_fraction} must be between 0 and 1 (exclusive), e.g. 0.2")
    if channels not in (1, 3):
        raise UsageError(f"channels={channels}; pass 1 or 3")
    if max_resolution is not None and (isinstance(max_resolution, bool) or not isinstance(max_resolution, int)
                                       or max_resolution < 1):
        raise UsageError(f"max_resolution={max_resolution!r} must be a whole number of pixels >= 1, e.g. 224")
    raw = _read_source(spec, cache_dir, max_resolution)
    x = _take_images(raw, channels)  # N×C×H×W
    y = _checked_labels(torch.from_numpy(raw.y), raw.num_classes, spec)
    is_val = torch.from_numpy(raw.is_val) if raw.is_val is not None else _stratified_split(y, val_fraction, seed)
    if not is_val.any() or is_val.all():
        raise UsageError(f"{spec}: the train/validation split left one side empty "
                         f"({int((~is_val).sum())} train, {int(is_val.sum())} val); add images")
    x_train = x[~is_val].contiguous()
    mean, std = _channel_stats(x_train)
    data = ProxyData(
        x_train=x_train,
        y_train=y[~is_val].contiguous(),
        x_val=x[is_val].contiguous(),
        y_val=y[is_val].contiguous(),
        num_classes=int(raw.num_classes),
        channels=int(x.shape[1]),
        native_size=int(min(x.shape[2], x.shape[3])),
        allow_flip=raw.allow_flip,
        spec=spec,
        mean=mean,
        std=std,
        classes=raw.classes or [str(c) for c in range(raw.num_classes)],
    )
    return data.to(device)


def _read_source(spec: str, cache_dir: str | os.PathLike[str] | None, max_resolution: int | None) -> _Raw:
    check_data_spec(spec)
    kind, arg = _parse_spec(spec)
    if kind == "digits":
        return _load_digits(spec, arg)
    if kind == "synthetic":
        return _load_synthetic(spec, arg)
    if kind == "folder":
        return _load_folder(spec, arg, Path(cache_dir) if cache_dir is not None else None, max_resolution)
    if kind == "cifar":
        return _load_cifar(spec, arg)
    return _load_npz(spec, arg)


def _take_images(raw: _Raw, channels: int) -> Tensor:
    """``raw``'s images as N×C×H×W with ``channels`` channels, taken out of ``raw``: the N×H×W×C
    array is freed as soon as it is converted, so loading holds the set at most twice (see
    `FOLDER_LOAD_COPIES`), not three times."""
    nhwc, raw.x = raw.x, np.empty((0, 0, 0, 0), np.uint8)
    return _to_channels(torch.from_numpy(np.ascontiguousarray(nhwc)).permute(0, 3, 1, 2), channels)


def _to_channels(x: Tensor, channels: int) -> Tensor:
    if x.shape[1] == channels:
        return x.contiguous()
    if channels == 3:
        return x.expand(-1, 3, -1, -1).contiguous()
    # ITU-R 601 luma, the same weights as Pillow's convert("L").
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8).contiguous()


def _checked_labels(y: Tensor, num_classes: int, spec: str) -> Tensor:
    if num_classes < 2 or len(torch.unique(y)) < 2:
        raise UsageError(f"{spec}: only one class in the data; a classifier needs at least two")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise UsageError(f"{spec}: labels out of range 0..{num_classes - 1}")
    return y


def _channel_stats(x_train: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std on the 0..1 scale, in float64 over chunks of at most 8192 images
    and `_STATS_CHUNK_BYTES` (8192 CIFAR images are 192 MiB of float64, 8192 at 224 px 9.2 GiB)."""
    total = torch.zeros(x_train.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    per_image = 8 * x_train[:1].numel()
    for chunk in x_train.split(max(1, min(8192, _STATS_CHUNK_BYTES // max(1, per_image)))):
        c = chunk.to(torch.float64) / 255.0
        total += c.sum(dim=(0, 2, 3))
        total_sq += (c * c).sum(dim=(0, 2, 3))
    count = x_train.shape[0] * x_train.shape[2] * x_train.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return mean.float(), std.float()
