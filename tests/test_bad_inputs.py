"""A sweep of bad inputs across every command, as a new user would type them: each is refused with
one line on stderr naming the value, exit code 2, no traceback, and no file created or changed.

A database that cannot be reached is not bad input: every command that opens one says so in one
line and exits 1 (`test_database_outage_is_one_line_exit_1`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from effscale.cli import main

G = ["--alpha", "1.0,1.2", "--beta", "1.0", "--gamma", "1.0", "--constraint", "formula", "--tolerance", "1"]
SEARCH = ["search", "tiny", "--data", "synthetic:classes=3,size=16,n=120", *G, "--epochs", "1"]
FAMILY = ["family", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15"]
TRAIN = ["train", "tiny", "--data", "synthetic:classes=3,size=16,n=120"]
PLAN = ["plan", *SEARCH[1:]]
FRONTIER = ["frontier", "tiny", "--data", "synthetic:classes=3,size=16,n=120", "--epochs", "1"]
COMPARE = ["compare", "tiny", "--data", "synthetic:classes=3,size=16,n=120", "--alpha", "1.2", "--beta", "1.1",
           "--gamma", "1.15"]


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


EXPORT = ["export", "{tmp}/family.json", "--out", "{tmp}/export"]

CASES: list[tuple[list[str], str]] = [
    # export (the family file is written by the sweep's fixture when the case names it)
    ([*EXPORT, "--member", "B9"], "no member 'B9'"),
    ([*EXPORT, "--member", "B1", "--format", "tflite"], "invalid choice: 'tflite'"),
    ([*EXPORT, "--phi", "abc"], "'abc' is not a number"),
    (["export", "{tmp}/family.json", "--member", "B1", "--out", "{tmp}/family.json/inside"], "is a file, not a directory"),
    (["export", "{tmp}/missing.json", "--member", "B1"], "does not exist"),
    (["export", "{tmp}/family.json"], "needs --member NAME or --phi PHI"),
    # cost
    (["cost", "effnet"], "unknown baseline 'effnet'"),
    (["cost", "efficientnet_b0", "--resolution", "0"], "resolution=0"),
    (["cost", "efficientnet_b0", "--resolution", "16"], "resolution=16 is too small"),
    (["cost", "efficientnet_b0", "--resolution", "abc"], "'abc'"),
    (["cost", "efficientnet_b0", "--depth", "nan"], "'nan' is not a finite number"),
    (["cost", "efficientnet_b0", "--depth", "0"], "depth=0"),
    (["cost", "efficientnet_b0", "--width", "-1"], "width=-1"),
    (["cost", "efficientnet_b0", "--num-classes", "0"], "must be > 0"),
    (["cost", "no_such_pkg_q:fn"], "cannot import 'no_such_pkg_q'"),
    (["cost", "user_baselines:not_a_module"], "returned str, not an nn.Module"),
    (["cost", "user_baselines:missing_function"], "has no function 'missing_function'"),
    (["cost", "resnet18", "--stem", "huge"], "invalid choice: 'huge'"),
    (["cost", "tiny", "--latency", "--latency-device", "cuda"], "no CUDA device"),
    (["cost", "tiny", "--latency", "--latency-batch", "0"], "--latency-batch 0 must be >= 1"),
    (["cost", "tiny", "--latency", "--latency-device", "tpu"], "invalid choice: 'tpu'"),
    ([*FAMILY, "--cost", "bogus"], "invalid choice: 'bogus'"),
    ([*FAMILY, "--target-flops", "lots"], "--target-flops 'lots' is not a positive amount"),
    ([*FAMILY, "--target-flops", "1G", "--target-params", "2M"], "pass one of --target-flops, --target-params"),
    ([*FAMILY, "--phi", "abc"], "is not a list of phi values"),
    (["cost", "user_baselines:small_cnn", "--stem", "small"], "cannot take --stem small"),
    (["cost", "resnet20_cifar", "--stem", "small"], "already has a small-image stem"),
    # family
    ([*FAMILY[:2], "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.1"], "alpha=0.9 is below 1"),
    ([*FAMILY[:2], "--alpha", "nan", "--beta", "1.1", "--gamma", "1.1"], "not a finite number"),
    (["family", "tiny", "--alpha", "1.2"], "needs BASELINE --alpha A --beta B --gamma G"),
    ([*FAMILY, "--base-resolution", "-3"], "must be > 0"),
    ([*FAMILY, "--max-phi", "-1"], "must be >= 0"),
    ([*FAMILY, "--out", "/etc/passwd/f.json"], "/etc/passwd"),
    ([*FAMILY, "--out", "{tmp}"], "is a directory"),
    ([*FAMILY, "--target-ratio", "2"], "--target-ratio 2 needs --calibrate"),
    ([*FAMILY, "--calibrate", "--target-ratio", "0.5"], "target"),
    (["family", "--study", "x", "--storage", "sqlite:///{tmp}/missing.db"], "does not exist"),
    # search: the recipe
    ([*SEARCH[:-2], "--epochs", "0"], "--epochs 0 must be >= 1"),
    ([*SEARCH, "--steps", "5"], "not both"),
    ([*SEARCH, "--phi", "abc"], "--phi 'abc' is not a list of phi values"),
    ([*SEARCH, "--gamma", "1.0,2.0", "--phi", "-2,0..3"], "phi=-2 with gamma=2 scales the 16 px input to 4 px"),
    ([*SEARCH, "--batch-size", "0"], "--batch-size 0 must be >= 1"),
    ([*SEARCH, "--lr", "0"], "--lr 0 must be > 0"),
    ([*SEARCH, "--lr", "nan"], "'nan' is not a finite number"),
    ([*SEARCH, "--optimizer", "adam"], "invalid choice: 'adam'"),
    ([*SEARCH, "--label-smoothing", "1"], "--label-smoothing 1 must be < 1"),
    ([*SEARCH, "--weight-decay", "-1"], "--weight-decay -1 must be >= 0"),
    ([*SEARCH, "--momentum", "1"], "--momentum 1 must be < 1"),
    ([*SEARCH, "--warmup-epochs", "-1"], "--warmup-epochs -1 must be >= 0"),
    ([*SEARCH, "--precise-bn-batches", "-1"], "--precise-bn-batches -1 must be >= 0"),
    ([*SEARCH, "--seed", "-1"], "--seed -1 must be >= 0"),
    ([*SEARCH, "--seed", "x"], "'x' is not a whole number"),
    # search: the grid and the constraint
    ([*SEARCH, "--alpha", "a,b"], "--alpha 'a,b' is not a grid"),
    ([*SEARCH, "--alpha", "0.5,1.0"], "--alpha contains 0.5"),
    ([*SEARCH, "--beta", "1:0:1"], "--beta '1:0:1' is not a grid"),
    ([*SEARCH, "--gamma", ""], "--gamma is empty"),
    ([*SEARCH, "--stem", "huge"], "invalid choice: 'huge'"),
    ([*SEARCH, "--cost", "bogus"], "invalid choice: 'bogus'"),
    ([*SEARCH, "--constraint", "speed"], "invalid choice: 'speed'"),
    (["search", "user_baselines:small_cnn", *SEARCH[2:], "--stem", "small"], "cannot take --stem small"),
    ([*SEARCH, "--gamma", "1:1000:0.0001"], "use a coarser step"),
    ([*SEARCH, "--target-ratio", "0"], "--target-ratio 0 must be > 0"),
    ([*SEARCH, "--tolerance", "-1"], "--tolerance -1 must be >= 0"),
    ([*SEARCH, "--constraint", "exact"], "invalid choice: 'exact'"),
    ([*SEARCH, "--base-resolution", "4"], "--base-resolution 4 is too small for tiny"),
    (["search", "tiny", "--data", "synthetic", "--alpha", "1.0", "--beta", "1.0", "--gamma", "1.0",
      "--tolerance", "0.01"], "no feasible candidate"),
    # search: repeats, racing, confirmation
    ([*SEARCH, "--min-repeats", "0"], "--min-repeats 0 must be >= 1"),
    ([*SEARCH, "--min-repeats", "3", "--max-repeats", "2"], "--max-repeats 2 is below --min-repeats 3"),
    ([*SEARCH, "--confirm-top", "5"], "--confirm-top 5 but the grid has 2 distinct feasible candidates"),
    ([*SEARCH, "--confirm-top", "1", "--confirm-epochs", "1"], "--confirm-epochs 1 is not above the proxy's 1"),
    ([*SEARCH, "--scheduler", "asha"], "--scheduler asha stops trials early"),
    ([*SEARCH, "--scheduler", "hyperband"], "invalid choice: 'hyperband'"),
    ([*SEARCH, "--grace-period", "0"], "--grace-period 0 must be >= 1"),
    # search: data, baseline, storage, execution
    (["search", "tiny", "--data", "imagenet", *G], "unknown data source 'imagenet'"),
    # frontier
    ([*FRONTIER, "--repeats", "1"], "--repeats 1 must be >= 2"),
    ([*FRONTIER, "--bounds", "depth=0.5"], "bound depth=0.5 must be a finite number >= 1"),
    ([*FRONTIER, "--max-ratio", "0.5"], "--max-ratio 0.5"),
    ([*FRONTIER, "--sampler", "cmaes"], "invalid choice: 'cmaes'"),
    ([*FRONTIER, "--search", "nosuch"], "does not exist"),
    # drawing samplers (--sampler tpe|gp|qmc)
    ([*SEARCH, "--sampler", "random"], "invalid choice: 'random'"),
    ([*SEARCH, "--n-candidates", "4"], "--n-candidates 4 needs a sampler that draws points"),
    ([*SEARCH, "--sampler", "tpe", "--n-candidates", "0"], "--n-candidates"),
    ([*PLAN, "--sampler", "qmc", "--alpha", "1.5", "--beta", "1.3", "--gamma", "1.3"],
     "reaches --target-ratio 2 by the formula"),
    (["search", "tiny", "--data", "folder:/no/such/dir", *G], "no such file or directory"),
    (["search", "tiny", "--data", "synthetic:classes=x", *G], "is not an integer"),
    (["search", "tiny", "--data", "digits:x", *G], "digits takes no options"),
    (["search", "resnet_101", "--data", "digits", *G], "unknown baseline 'resnet_101'"),
    ([*SEARCH, "--storage", "mysql://u:s3cret@h/db"], "not supported"),
    ([*SEARCH, "--storage", "sqlite:////no/such/dir/x.db"], "does not exist"),
    ([*SEARCH, "--cpus-per-trial", "0"], "--cpus-per-trial 0 must be > 0"),
    ([*SEARCH, "--gpus-per-trial", "lots"], "neither auto nor a number"),
    ([*SEARCH, "--max-concurrent", "0"], "--max-concurrent 0 must be >= 1"),
    ([*SEARCH, "--max-retries", "-1"], "--max-retries -1 must be >= 0"),
    ([*SEARCH, "--db-timeout", "0"], "--db-timeout 0 must be > 0"),
    ([*SEARCH, "--connect-timeout", "-1"], "--connect-timeout -1 must be > 0"),
    ([*SEARCH, "--ray-address", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
    ([*SEARCH, "--ray-address", "nonsense"], "is not host:port"),
    ([*SEARCH, "--max-phi", "-1"], "--max-phi -1 must be >= 0"),
    ([*SEARCH, "--study", " "], "--study ' ' is empty"),
    # train
    (["train", "resnet18", "--data", "digits", "--resolution", "31"], "resolution=31 is too small"),
    ([*TRAIN, "--epochs", "0"], "--epochs 0 must be >= 1"),
    ([*TRAIN, "--depth", "nan"], "'nan' is not a finite number"),
    ([*TRAIN, "--batch-size", "-2"], "--batch-size -2 must be >= 1"),
    (["train", "tiny", "--data", "npz:/no/such.npz"], "no such file or directory"),
    ([*TRAIN, "--device", "tpu"], "--device 'tpu'"),
    # serve
    (["serve", "--port", "70000"], "70000"),
    (["serve", "--port", "0"], "--port 0"),
    (["serve", "--host", "0.0.0.0"], "EFFSCALE_TOKEN"),
    (["serve", "--storage", "mysql://u:p@h/db"], "not supported"),
    (["serve", "--data-root", "/no/such/dir"], "/no/such/dir"),
    (["serve", "--workers", "0"], "--workers 0"),
    (["serve", "--workers", "65"], "--workers 65"),
    # queries
    (["studies", "--storage", "sqlite:///{tmp}/missing.db"], "does not exist"),
    (["trials", "--study", "x", "--storage", "sqlite:///{tmp}/missing.db"], "does not exist"),
    (["trials", "--study", "x", "--limit", "0"], "must be > 0"),
    (["trials", "--study", "x", "--sort", "best"], "invalid choice: 'best'"),
    (["trials", "--study", " "], "--study ' ' is empty"),
    (["studies", "--storage", "mysql://u:s3cret@h/db"], "not supported"),
    # confirm and compare
    (["confirm", "--study", "x", "--storage", "sqlite:///{tmp}/missing.db"], "does not exist"),
    (["confirm", "--study", "x", "--top", "0"], "must be > 0"),
    (["confirm", "--study", "x", "--epochs", "0"], "must be > 0"),
    (["confirm", "--study", "x", "--confirm-top", "0"], "--confirm-top 0 must be > 0"),
    (["confirm", "--study", "x", "--confirm-epochs", "x"], "'x' is not a whole number"),
    (["confirm", "--top", "3"], "the following arguments are required: --study"),
    (["compare", "tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "9"],
     "must list values from 1 to 7"),
    (["compare", "tiny", "--data", "digits", "--alpha", "1.2"], "compare needs --study NAME"),
    (["compare", "--study", "x", "--storage", "sqlite:///{tmp}/missing.db"], "does not exist"),
    (["compare", "tiny", "--data", "digits", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
      "--repeats", "0"], "--repeats 0 must be >= 1"),
    ([*COMPARE, "--cost", "bogus"], "invalid choice: 'bogus'"),
    ([*COMPARE, "--cost", "latency", "--latency-batch", "0"], "--latency-batch 0 must be >= 1"),
    ([*COMPARE, "--latency-threads", "0"], "--latency-threads 0 must be >= 1"),
    ([*COMPARE, "--arms", "compound,depth,fastest"], "--arms 'compound,depth,fastest' names an unknown arm 'fastest'"),
    ([*COMPARE, "--arms", "fast,paper"], "paper and published are efficientnet_b0's arms, not tiny's"),
    *([([*COMPARE, "--cost", "latency", "--latency-device", "cuda"], "--latency-device cuda but this machine has no CUDA"),
       ([*COMPARE, "--latency-device", "cuda"], "--latency-device cuda but this machine has no CUDA")]
      if not _has_cuda() else []),
    # plan: search's options, refused the same way before anything is measured
    (["plan", "tiny"], "the following arguments are required: --data"),
    ([*PLAN, "--alpha", "a,b"], "--alpha 'a,b' is not a grid"),
    ([*PLAN, "--gamma", "1:0.5:0.1"], "--gamma '1:0.5:0.1' is not a grid"),
    ([*PLAN, "--min-repeats", "3", "--max-repeats", "2"], "--max-repeats 2 is below --min-repeats 3"),
    ([*PLAN, "--epochs", "0"], "--epochs 0 must be >= 1"),
    (["plan", "tiny", "--data", "imagenet", *G], "unknown data source 'imagenet'"),
    ([*PLAN, "--storage", "mysql://u:s3cret@h/db"], "not supported"),
    ([*PLAN, "--ray-address", "nonsense"], "is not host:port"),
    # baselines takes nothing but --json
    (["baselines", "efficientnet_b0"], "unrecognized arguments: efficientnet_b0"),
    (["baselines", "--resolution", "32"], "unrecognized arguments: --resolution 32"),
    # serve prints no document, so it takes no --json
    (["serve", "--json"], "unrecognized arguments: --json"),
    # no command at all, an unknown one
    (["fly"], "invalid choice: 'fly'"),
]


def _tiny_family():  # noqa: ANN202 - a Family, made once for the export cases
    from effscale import Coefficients, emit_family

    return emit_family("tiny", Coefficients(1.2, 1.1, 1.15), phis=[0, 1], base_resolution=32, num_classes=10)


_TINY_FAMILY = _tiny_family()


def _tree(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize(("args", "message"), CASES, ids=[" ".join(a)[:70] for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the default sqlite:///effscale.db would land here
    monkeypatch.delenv("EFFSCALE_TOKEN", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[:2] == ["export", f"{tmp_path}/family.json"]:
        _TINY_FAMILY.save(tmp_path / "family.json")  # a real family file, so only the case's own value is wrong
    before = _tree(tmp_path)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse refuses before any handler runs
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "s3cret" not in err + out
    assert _tree(tmp_path) == before  # no database, family file or directory left behind


def test_the_sweep_is_wide() -> None:
    assert len(CASES) >= 60
    assert {a[0] for a, _ in CASES} >= {"baselines", "cost", "family", "search", "plan", "train", "serve", "studies",
                                        "trials", "confirm", "compare", "export", "frontier"}


# A PostgreSQL URL whose port nothing listens on: the server is down, the input is fine.
DOWN = "postgresql+psycopg2://effscale:s3cret@127.0.0.1:1/none"
OUTAGES: list[list[str]] = [
    ["studies", "--storage", DOWN],
    ["trials", "--study", "x", "--storage", DOWN],
    ["family", "--study", "x", "--storage", DOWN],
    ["confirm", "--study", "x", "--storage", DOWN],
    ["compare", "--study", "x", "--storage", DOWN],
    ["serve", "--storage", DOWN, "--port", "{port}", "--state-dir", "{tmp}/state"],
    ["studies"],  # the same URL through $EFFSCALE_STORAGE
]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", OUTAGES, ids=[" ".join(a)[:40] for a in OUTAGES])
def test_database_outage_is_one_line_exit_1(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EFFSCALE_STORAGE", DOWN)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{port}", str(_free_port())) for a in args]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 1, (code, err)
    assert err.startswith(f"effscale {args[0]}: failed: cannot open storage") and "127.0.0.1:1" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "s3cret" not in err + out and out == ""


def test_a_broken_database_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Optuna's tables, one of them not as Optuna made it: a database error, not a traceback."""
    import sqlite3

    import optuna

    url = f"sqlite:///{tmp_path / 'broken.db'}"
    optuna.storages.RDBStorage(url).engine.dispose()
    with sqlite3.connect(tmp_path / "broken.db") as db:
        db.execute("ALTER TABLE studies RENAME TO studies_before")
        db.execute("CREATE TABLE studies (x INTEGER)")
    assert main(["studies", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("effscale studies: failed: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
