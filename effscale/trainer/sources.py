"""Proxy data sources: a source string parsed and read into raw arrays, one reader per kind.

A source is a string (``digits``, ``synthetic:classes=4,size=16,n=200``, ``folder:PATH``,
``cifar:PATH``, ``npz:PATH``); `check_data_spec` checks its grammar without reading anything. Each
reader returns a `Raw`: uint8 N×H×W×C images, int64 labels and, where the source ships its own
split (CIFAR's test batch, an npz with ``x_val``/``y_val``), a validation mask. Folders, which
decode and cache image files, have their own module (`effscale.trainer.folders`).

``digits`` reads the file scikit-learn ships, without importing scikit-learn (its import is most
of a warm ``effscale plan``'s time).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effscale.errors import UsageError

SOURCES = ("digits", "synthetic", "folder", "cifar", "npz")


# --------------------------------------------------------------------------------------------
# Spec parsing


def parse_spec(spec: str) -> tuple[str, str]:
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
    kind, arg = parse_spec(spec)
    if kind == "digits" and arg:
        raise UsageError(f"{spec}: digits takes no options; pass digits")
    if kind == "synthetic":
        _parse_options(spec, arg, _SYNTHETIC_OPTIONS)
    if kind in ("folder", "cifar", "npz") and not arg:
        raise UsageError(f"{spec}: no path given; pass {kind}:PATH")
    return spec.strip()


def require_path(spec: str, arg: str, kind: str, what: str) -> Path:
    path = Path(arg).expanduser()  # non-empty: check_data_spec saw to that
    if not path.exists():
        raise UsageError(f"{spec}: no such file or directory; pass {kind}:PATH with {what}")
    return path


# --------------------------------------------------------------------------------------------
# Sources. Each returns images as a uint8 N×H×W×C numpy array, labels, and optionally a given
# split (a boolean "is validation" mask).


@dataclass
class Raw:
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


def read_digits(spec: str, arg: str) -> Raw:
    images, target = _digits_arrays(_digits_file())
    # Pixel values are 0..16 (4x4 block counts); spread them over the uint8 range.
    x = np.rint(images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return Raw(x, target.astype(np.int64), 10, allow_flip=False,
                classes=[str(c) for c in range(10)])


def read_synthetic(spec: str, arg: str) -> Raw:
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
    return Raw(x.numpy(), y.numpy().astype(np.int64), classes, allow_flip=False,
                classes=[str(c) for c in range(classes)])


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


def read_cifar(spec: str, arg: str) -> Raw:
    what = "the CIFAR-10/100 python archive (.tar.gz or extracted)"
    path = require_path(spec, arg, "cifar", what)
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
    return Raw(x, y, num_classes, allow_flip=True, is_val=is_val)


def read_npz(spec: str, arg: str) -> Raw:
    what = "arrays x (uint8 N×H×W×C) and y"
    path = require_path(spec, arg, "npz", what)
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
    return Raw(x, y, num_classes, allow_flip=allow_flip, is_val=is_val)


# The readers of every kind but ``folder`` (`effscale.trainer.folders.read_folder`), by kind.
READERS = {"digits": read_digits, "synthetic": read_synthetic, "cifar": read_cifar, "npz": read_npz}
