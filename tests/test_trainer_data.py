"""Every proxy data source, on real files written here: PNG folders, CIFAR archives in the real
pickle format (tarred and extracted), npz; plus the folder cache and the bad inputs."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from effscale.errors import UsageError
from effscale.trainer import ProxyData, decode_count, load_data

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "eel": (30, 30, 200)}


def _write_class_pngs(root: Path, per_class: int, *, size: tuple[int, int] = (20, 16)) -> None:
    """Each class a solid colour with a little per-image noise, so labels can be checked by pixel."""
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.clip(np.array(rgb) + rng.integers(-5, 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")


def _assert_well_formed(d: ProxyData) -> None:
    for x in (d.x_train, d.x_val):
        assert x.dtype == torch.uint8 and x.ndim == 4 and x.shape[1] == d.channels
    for y in (d.y_train, d.y_val):
        assert y.dtype == torch.int64
        assert int(y.min()) >= 0 and int(y.max()) < d.num_classes
    assert d.x_train.shape[0] == d.y_train.shape[0] and d.x_val.shape[0] == d.y_val.shape[0]
    assert d.mean.shape == (d.channels,) and d.std.shape == (d.channels,)


def test_digits_real_offline_split_by_seed() -> None:
    d = load_data("digits", seed=0)
    _assert_well_formed(d)
    assert (d.num_classes, d.channels, d.native_size, d.allow_flip) == (10, 3, 8, False)
    assert d.num_train + d.num_val == 1797
    assert abs(d.num_val - 0.2 * 1797) < 10
    # Grayscale repeated into RGB for ImageNet stems.
    assert torch.equal(d.x_train[:, 0], d.x_train[:, 2])
    # Stratified: every class is in the validation set in proportion.
    counts = torch.bincount(d.y_val, minlength=10)
    assert int(counts.min()) >= 30
    again = load_data("digits", seed=0)
    assert torch.equal(again.y_val, d.y_val) and torch.equal(again.x_val, d.x_val)
    other = load_data("digits", seed=1)
    assert not torch.equal(other.x_val, d.x_val)
    gray = load_data("digits", channels=1)
    assert gray.channels == 1 and gray.x_train.shape[1:] == (1, 8, 8)


def test_synthetic_options_and_pickles() -> None:
    d = load_data("synthetic:classes=3,size=12,n=90", val_fraction=0.5)
    _assert_well_formed(d)
    assert (d.num_classes, d.native_size, d.num_train + d.num_val) == (3, 12, 90)
    assert d.num_val == 45
    default = load_data("synthetic")
    assert (default.num_classes, default.native_size, default.num_train + default.num_val) == (10, 32, 1000)
    # Plain tensors: cheap to ship to Ray workers.
    clone = pickle.loads(pickle.dumps(d))
    assert torch.equal(clone.x_train, d.x_train) and clone.num_classes == 3
    assert d.to("cpu") is d


def test_folder_flat_layout_decodes_pngs(tmp_path: Path) -> None:
    _write_class_pngs(tmp_path / "imgs", per_class=5)
    d = load_data(f"folder:{tmp_path / 'imgs'}", cache_dir=tmp_path / "cache", val_fraction=0.4)
    _assert_well_formed(d)
    assert d.classes == ["cat", "dog", "eel"] and d.num_classes == 3
    assert d.native_size == 16  # 20×16 images centre-cropped to their short side
    assert d.x_train.shape[1:] == (3, 16, 16)
    assert (d.num_train, d.num_val) == (9, 6)
    assert d.allow_flip
    # Labels follow the folders: the dominant colour channel is the class index.
    for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val)):
        dominant = x.float().mean(dim=(2, 3)).argmax(1)
        assert torch.equal(dominant, y)


def test_folder_train_val_layout_keeps_given_split(tmp_path: Path) -> None:
    _write_class_pngs(tmp_path / "ds" / "train", per_class=4)
    _write_class_pngs(tmp_path / "ds" / "val", per_class=2)
    d = load_data(f"folder:{tmp_path / 'ds'}", cache_dir=tmp_path / "cache", seed=5)
    assert (d.num_train, d.num_val, d.num_classes) == (12, 6, 3)
    assert torch.equal(torch.bincount(d.y_val), torch.tensor([2, 2, 2]))


def test_folder_is_decoded_once_then_cached(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _write_class_pngs(root, per_class=4)
    cache = tmp_path / "cache"
    before = decode_count()
    first = load_data(f"folder:{root}", cache_dir=cache)
    assert decode_count() - before == 12
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    mid = decode_count()
    second = load_data(f"folder:{root}", cache_dir=cache)
    assert decode_count() == mid, "the second load decoded images instead of using the cache"
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_val, second.y_val)
    # A new file changes the key: decode again, into a new cache entry.
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(root / "cat" / "new.png")
    third = load_data(f"folder:{root}", cache_dir=cache)
    assert decode_count() - mid == 13
    assert third.num_train + third.num_val == 13
    assert len(list(cache.glob("*.npz"))) == 2


def test_folder_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_class_pngs(tmp_path / "imgs", per_class=2)
    monkeypatch.setenv("EFFSCALE_CACHE_DIR", str(tmp_path / "envcache"))
    load_data(f"folder:{tmp_path / 'imgs'}")
    assert len(list((tmp_path / "envcache").glob("*.npz"))) == 1


def _cifar_image(i: int) -> np.ndarray:
    """A distinctive 32×32×3 image: channel c holds 10*c + i at (0,0) and a row gradient."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :, 0] = np.arange(32, dtype=np.uint8)[:, None]  # rows differ in red
    img[:, :, 1] = np.arange(32, dtype=np.uint8)[None, :]  # columns differ in green
    img[:, :, 2] = i % 256
    return img


def _cifar_rows(images: list[np.ndarray]) -> np.ndarray:
    # The real format: each row is 1024 red, 1024 green, 1024 blue values, row-major.
    return np.stack([im.transpose(2, 0, 1).reshape(-1) for im in images]).astype(np.uint8)


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _make_cifar10(root: Path, per_batch: int = 4, test: int = 6) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    k = 0
    for b in range(1, 6):
        imgs = [_cifar_image(k + j) for j in range(per_batch)]
        labels = [(k + j) % 10 for j in range(per_batch)]
        _dump(d / f"data_batch_{b}", {b"batch_label": b"training batch", b"labels": labels,
                                      b"data": _cifar_rows(imgs), b"filenames": [b"x.png"] * per_batch})
        k += per_batch
    imgs = [_cifar_image(100 + j) for j in range(test)]
    _dump(d / "test_batch", {b"labels": [j % 10 for j in range(test)], b"data": _cifar_rows(imgs)})
    _dump(d / "batches.meta", {b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": per_batch})
    return d


@pytest.mark.parametrize("packed", [True, False])
def test_cifar10_archive_real_format(tmp_path: Path, packed: bool) -> None:
    d = _make_cifar10(tmp_path / "src")
    if packed:
        path = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            tar.add(d, arcname="cifar-10-batches-py")
    else:
        path = d.parent
    data = load_data(f"cifar:{path}")
    _assert_well_formed(data)
    assert (data.num_classes, data.native_size, data.num_train, data.num_val) == (10, 32, 20, 6)
    assert data.allow_flip
    # Pixel layout round-trips: rows/columns/channels land where the format puts them.
    assert torch.equal(data.x_train[3], torch.from_numpy(_cifar_image(3).transpose(2, 0, 1).copy()))
    assert torch.equal(data.x_val[5], torch.from_numpy(_cifar_image(105).transpose(2, 0, 1).copy()))
    assert data.y_train.tolist() == [i % 10 for i in range(20)]


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    _dump(d / "train", {b"fine_labels": [0, 99, 50, 7], b"coarse_labels": [0, 1, 2, 3],
                        b"data": _cifar_rows([_cifar_image(i) for i in range(4)])})
    _dump(d / "test", {b"fine_labels": [99, 1], b"coarse_labels": [1, 1],
                       b"data": _cifar_rows([_cifar_image(i) for i in range(2)])})
    _dump(d / "meta", {b"fine_label_names": [b"x"] * 100})
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(d, arcname="cifar-100-python")
    data = load_data(f"cifar:{path}")
    assert data.num_classes == 100
    assert data.y_train.tolist() == [0, 99, 50, 7] and data.y_val.tolist() == [99, 1]


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    d = _make_cifar10(tmp_path)
    _dump(d / "test_batch", {b"labels": [1], b"data": _cifar_rows([_cifar_image(0)]), b"x": Path("/")})
    with pytest.raises(UsageError, match="test_batch is not a CIFAR python batch"):
        load_data(f"cifar:{d}")


def test_npz_rgb_grayscale_and_given_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 10, 12, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "rgb.npz", x=x, y=y)
    d = load_data(f"npz:{tmp_path / 'rgb.npz'}", val_fraction=0.2)
    _assert_well_formed(d)
    assert (d.num_classes, d.num_train, d.num_val, d.x_train.shape[2:]) == (4, 32, 8, (10, 12))
    np.savez(tmp_path / "gray.npz", x=x[..., 0], y=y, x_val=x[:5, ..., 0], y_val=y[:5], allow_flip=False)
    g = load_data(f"npz:{tmp_path / 'gray.npz'}")
    assert (g.channels, g.num_train, g.num_val, g.allow_flip) == (3, 40, 5, False)
    assert torch.equal(g.x_val[:, 1], torch.from_numpy(x[:5, ..., 0]))


# ---- bad inputs: UsageError with a one-line message that names the value ------------------


def _one_line_error(spec: str, match: str, **kwargs) -> str:
    with pytest.raises(UsageError, match=match) as info:
        load_data(spec, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_source() -> None:
    msg = _one_line_error("imagenet:/data", "unknown data source 'imagenet:/data'")
    assert "folder:PATH" in msg
    _one_line_error("synthetic:classes=two", "classes='two' is not an integer")
    _one_line_error("synthetic:colour=3", "bad option 'colour=3'")
    _one_line_error("digits", "val_fraction=1.5", val_fraction=1.5)


def test_missing_and_empty_folder(tmp_path: Path) -> None:
    _one_line_error(f"folder:{tmp_path / 'nope'}", "no such file or directory")
    (tmp_path / "empty").mkdir()
    _one_line_error(f"folder:{tmp_path / 'empty'}", "no images found")
    (tmp_path / "hollow" / "cat").mkdir(parents=True)
    _one_line_error(f"folder:{tmp_path / 'hollow'}", "class folder .*cat has no images")
    _one_line_error("cifar:" + str(tmp_path / "none.tar.gz"), "no such file or directory")


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    _write_class_pngs(tmp_path / "imgs", per_class=2)
    bad = tmp_path / "imgs" / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    msg = _one_line_error(f"folder:{tmp_path / 'imgs'}", "corrupt image", cache_dir=tmp_path / "c")
    assert str(bad) in msg and "remove or replace it" in msg


def test_truncated_image_is_named(tmp_path: Path) -> None:
    _write_class_pngs(tmp_path / "imgs", per_class=2, size=(64, 64))
    bad = tmp_path / "imgs" / "eel" / "1.png"
    bad.write_bytes(bad.read_bytes()[:120])
    msg = _one_line_error(f"folder:{tmp_path / 'imgs'}", "corrupt image", cache_dir=tmp_path / "c")
    assert str(bad) in msg


def test_folder_with_one_class(tmp_path: Path) -> None:
    (tmp_path / "only" / "cat").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "only" / "cat" / "0.png")
    _one_line_error(f"folder:{tmp_path / 'only'}", "only one class \\(cat\\)")


def test_npz_labels_out_of_range(tmp_path: Path) -> None:
    x = np.zeros((6, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.array([0, 1, 2, 3, 4, 5]), num_classes=4)
    _one_line_error(f"npz:{tmp_path / 'a.npz'}", r"label y\[4\]=4 is out of range 0..3")
    np.savez(tmp_path / "b.npz", x=x, y=np.array([0, 1, -1, 0, 1, 0]))
    _one_line_error(f"npz:{tmp_path / 'b.npz'}", r"label y\[2\]=-1 is out of range")
    np.savez(tmp_path / "c.npz", x=x.astype(np.float32), y=np.zeros(6, int))
    _one_line_error(f"npz:{tmp_path / 'c.npz'}", "dtype float32")
    np.savez(tmp_path / "d.npz", images=x)
    _one_line_error(f"npz:{tmp_path / 'd.npz'}", "pass an .npz with arrays x")


# ---- digits without scikit-learn's import; folders at the size the run uses ----------------


def test_digits_file_gives_exactly_scikit_learns_arrays() -> None:
    from sklearn.datasets import load_digits

    from effscale.trainer.sources import _digits_arrays, _digits_file

    path = _digits_file()
    assert path is not None and path.name == "digits.csv.gz"
    reference = load_digits()
    for images, target in (_digits_arrays(path), _digits_arrays(None)):  # the file, and the fallback
        assert images.dtype == reference.images.dtype and np.array_equal(images, reference.images)
        assert target.dtype == reference.target.dtype and np.array_equal(target, reference.target)


def test_loading_digits_does_not_import_scikit_learn() -> None:
    import subprocess
    import sys

    code = ("import sys; from effscale.trainer import load_data; d = load_data('digits'); "
            "print(d.num_train + d.num_val, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1797", "False"]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_folder_is_stored_at_the_size_the_run_uses_and_cached_per_size(tmp_path: Path) -> None:
    root, cache = tmp_path / "imgs", tmp_path / "cache"
    _write_class_pngs(root, per_class=4, size=(48, 40))  # short side 40
    spec = f"folder:{root}"

    def load(max_resolution: int | None) -> tuple[ProxyData, int]:
        before = decode_count()
        d = load_data(spec, cache_dir=cache, max_resolution=max_resolution)
        return d, decode_count() - before

    for max_resolution, stored, decoded in [(24, 24, 12), (24, 24, 0), (32, 32, 12), (64, 40, 12), (100, 40, 0),
                                            (None, 40, 0)]:
        d, n = load(max_resolution)
        assert (d.native_size, d.x_train.shape[2:], n) == (stored, (stored, stored), decoded), max_resolution
    assert sorted(p.name.rsplit("-", 1)[1] for p in cache.glob("*.npz")) == ["24px.npz", "32px.npz", "40px.npz"]
    # No upsampling: at 40 px (asked for 64) the images are the files' own pixels, centre-cropped.
    d, _ = load(64)
    stored = torch.cat([d.x_train, d.x_val]).permute(0, 2, 3, 1).numpy()
    originals = np.stack([_pixels(p)[:, 4:44] for c in sorted(COLOURS) for p in sorted((root / c).glob("*.png"))])
    assert {arr.tobytes() for arr in stored} == {arr.tobytes() for arr in originals}


def _claim_size(png: Path, width: int, height: int) -> None:
    """Rewrite a PNG's header (IHDR) to claim another size, CRC included: Pillow reads the size from
    the header alone, so the file passes for a large image until its pixels are decoded."""
    import struct
    import zlib

    blob = bytearray(png.read_bytes())
    assert blob[12:16] == b"IHDR"
    blob[16:24] = struct.pack(">II", width, height)
    blob[29:33] = struct.pack(">I", zlib.crc32(bytes(blob[12:29])))
    png.write_bytes(bytes(blob))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_folder_too_large_for_memory_is_refused_before_decoding(tmp_path: Path) -> None:
    import math

    import psutil

    side = 12_000  # 144 M pixels a file: under Pillow's decompression-bomb refusal (2 x 89 M)
    n = math.ceil(psutil.virtual_memory().total / (side * side * 3)) + 1  # more than this machine holds
    per_class = math.ceil(n / len(COLOURS))
    root = tmp_path / "huge"
    _write_class_pngs(root, per_class=per_class, size=(8, 8))
    for png in root.rglob("*.png"):
        _claim_size(png, side, side)
    count = per_class * len(COLOURS)
    before = decode_count()
    msg = _one_line_error(f"folder:{root}", "memory", cache_dir=tmp_path / "c", max_resolution=side)
    assert decode_count() == before  # refused before decoding anything
    assert msg.startswith(f"folder:{root}: {count} images at {side}x{side} px take ")
    assert f"({count}x{side}x{side}x3 bytes" in msg
    assert "--base-resolution" in msg and "fewer images" in msg
    assert not list((tmp_path / "c").glob("*.npz"))


def test_bad_max_resolution() -> None:
    _one_line_error("digits", "max_resolution=0 must be a whole number", max_resolution=0)
    _one_line_error("digits", "max_resolution=32.5", max_resolution=32.5)
