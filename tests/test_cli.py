"""The CLI: JSON documents, readable tables, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from effscale.cli import main

TESTS = Path(__file__).parent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "-m", "effscale.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cost_json() -> None:
    proc = run_cli("cost", "efficientnet_b0", "--depth", "1.2", "--width", "1.1", "--resolution", "258", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"baseline", "depth", "width", "resolution", "params", "flops", "flops_convention"} <= doc.keys()
    assert doc["params"] == 9_109_994
    assert 2.45 < doc["flops_ratio"] < 2.65
    assert doc["formula_ratio"] == pytest.approx(1.2 * 1.1**2 * (258 / 224) ** 2)
    assert doc["blocks"] == 23
    assert "1 multiply-add = 1 flop" in doc["flops_convention"]


def test_family_json_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fam.json"
    code = main(["family", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--max-phi", "3",
                 "--out", str(out), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["baseline"] == "tiny"
    assert doc["coefficients"] == {"alpha": 1.2, "beta": 1.1, "gamma": 1.15}
    assert [m["name"] for m in doc["members"]] == ["B0", "B1", "B2", "B3"]
    for member in doc["members"]:
        assert {"name", "phi", "depth", "width", "resolution", "params", "flops", "flops_ratio", "formula_ratio"} <= member.keys()
    assert json.loads(out.read_text())["members"][3]["flops"] == doc["members"][3]["flops"]


def test_family_table_shows_both_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["family", "efficientnet_b0", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--max-phi", "1"]) == 0
    out = capsys.readouterr().out
    assert "measured /B0" in out and "formula /B0" in out
    assert "phi=1 measures 2.5" in out and "says 1.92x" in out
    assert "1 multiply-add = 1 flop" in out


def test_baselines_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baselines", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_name = {b["name"]: b for b in doc["baselines"]}
    assert by_name["resnet50"]["params"] == 25_557_032
    assert by_name["efficientnet_b0"]["base_resolution"] == 224
    assert "flops_convention" in doc


def test_cost_table_for_user_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.models import build_model, count_params

    assert main(["cost", "user_baselines:small_cnn", "--num-classes", "10"]) == 0
    # The table's params row holds the built network's own count, not just a header.
    expected = count_params(build_model("user_baselines:small_cnn", num_classes=10))
    assert f"{expected:,}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cost", "effnet"], "unknown baseline 'effnet'; known: efficientnet_b0"),
        (["cost", "efficientnet_b0", "--resolution", "0"], "resolution=0 is too small"),
        (["cost", "efficientnet_b0", "--depth", "nan"], "'nan' is not a finite number"),
        (["family", "efficientnet_b0", "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.1"], "alpha=0.9 is below 1"),
        (["family", "efficientnet_b0", "--alpha", "nan", "--beta", "1.1", "--gamma", "1.1"], "not a finite number"),
        (["family", "efficientnet_b0", "--alpha", "1.2"], "needs BASELINE --alpha A --beta B --gamma G"),
        (["family", "tiny", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.1", "--base-resolution", "-3"], "must be > 0"),
        (["cost", "no_such_pkg_q:fn"], "cannot import 'no_such_pkg_q'"),
        (["cost", "user_baselines:not_a_module"], "returned str, not an nn.Module"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_train_json_is_seeded(capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.cli import main

    def train(*extra: str) -> str:  # in this process: a seed must not depend on a fresh interpreter
        assert main(["train", "tiny", "--data", "synthetic:classes=3,size=16,n=120", "--steps", "6",
                     "--batch-size", "32", "--json", *extra]) == 0
        return capsys.readouterr().out

    first, second, other = train(), train(), train("--seed", "1")
    doc = json.loads(first)
    assert doc["baseline"] == "tiny" and doc["steps"] == 6 and doc["data"]["num_classes"] == 3
    assert doc["images_per_s"] > 0 and 0.0 <= doc["val_top1"] <= 1.0
    # Same seed, same weights, same data order: the whole loss trace repeats, step by step.
    trace = doc["step_losses"]
    assert len(trace) == 6 and all(loss > 0 for loss in trace)
    assert json.loads(second)["step_losses"] == trace
    assert json.loads(other)["step_losses"] != trace  # and --seed reaches the weights


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "resnet18", "--data", "digits", "--resolution", "31"], "resolution=31 is too small"),
        (["train", "tiny", "--data", "folder:/no/such/dir"], "folder:/no/such/dir"),
        (["train", "tiny", "--data", "imagenet"], "imagenet"),
        (["train", "tiny", "--data", "digits", "--epochs", "0"], "--epochs 0 must be >= 1"),
        (["train", "tiny", "--data", "digits", "--epochs", "2", "--steps", "3"], "pass either --epochs 2 or --steps 3, not both"),
        (["train", "tiny", "--data", "digits", "--label-smoothing", "1"], "--label-smoothing 1 must be < 1"),
        (["train", "tiny", "--data", "digits", "--optimizer", "adam"], "invalid choice: 'adam'"),
    ],
)
def test_train_bad_input(args: list[str], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# one command line: every flag from a settings dataclass, one storage default, agreeing names


def _subparsers() -> dict[str, object]:
    from effscale.cli import build_parser

    return dict(build_parser()._subparsers._group_actions[0].choices)


def test_every_flag_is_a_declared_setting() -> None:
    """No hand-written option: each flag of each command is a `setting` field (or its alias) of one
    of the command's settings dataclasses; --json is the printer's, and serve has none."""
    from effscale._settings import flag, settings_of
    from effscale.cli import COMMANDS

    parsers = _subparsers()
    for command in COMMANDS:
        declared = {"-h", "--help", *(("--json",) if command.json else ())}
        for cls in command.settings():
            declared |= {o for f, meta in settings_of(cls) for o in (flag(f.name), *meta.aliases) if not meta.positional}
        offered = {o for action in parsers[command.name]._actions for o in action.option_strings}
        assert offered == declared, command.name
    assert "--json" not in {o for a in parsers["serve"]._actions for o in a.option_strings}


def test_confirm_takes_search_flag_names_and_the_old_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from effscale.cli import build_parser

    parser = build_parser()
    new = parser.parse_args(["confirm", "--study", "s", "--confirm-top", "2", "--confirm-epochs", "9"])
    old = parser.parse_args(["confirm", "--study", "s", "--top", "2", "--epochs", "9"])
    assert (new.confirm_top, new.confirm_epochs) == (old.confirm_top, old.confirm_epochs) == (2, 9)
    search = parser.parse_args(["search", "tiny", "--data", "digits", "--confirm-top", "2", "--confirm-epochs", "9"])
    assert (search.confirm_top, search.confirm_epochs) == (2, 9)


def test_storage_comes_from_one_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$EFFSCALE_STORAGE is read by `resolve_storage` alone: the CLI's default for every command
    that opens a database, and the Python API's when it is given no storage."""
    from effscale.cli import COMMANDS, build_parser
    from effscale.errors import UsageError
    from effscale.search.records.queries import list_studies
    from effscale.storage import DEFAULT_STORAGE_URL, resolve_storage

    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.delenv("EFFSCALE_STORAGE", raising=False)
    assert resolve_storage(None) == DEFAULT_STORAGE_URL and resolve_storage("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("EFFSCALE_STORAGE", url)
    assert resolve_storage(None) == url and resolve_storage("sqlite:///x.db") == "sqlite:///x.db"
    parser = build_parser()
    required = {"trials": ["--study", "s"], "confirm": ["--study", "s"], "search": ["tiny", "--data", "digits"],
                "plan": ["tiny", "--data", "digits"], "family": ["--study", "s"], "compare": ["--study", "s"],
                "export": ["--study", "s", "--member", "B1"], "frontier": ["tiny", "--data", "digits"]}
    with_storage = [c.name for c in COMMANDS if any(f.name == "storage" for cls in c.settings()
                                                    for f in cls.__dataclass_fields__.values())]
    assert set(with_storage) == {"family", "search", "plan", "compare", "confirm", "serve", "studies", "trials",
                                "export", "frontier"}
    for name in with_storage:
        assert parser.parse_args([name, *required.get(name, [])]).storage == url, name
    with pytest.raises(UsageError, match="from-env.db' does not exist"):
        list_studies(None)  # the Python API: the environment's database, which a query never creates


def test_help_reads_no_torch_sqlalchemy_or_optuna() -> None:
    code = ("import sys, effscale.cli; effscale.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'sqlalchemy', 'optuna', 'ray', 'fastapi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", ["baselines", "cost", "family", "search", "plan", "compare", "confirm", "train",
                                     "serve", "studies", "trials"])
def test_every_command_help_renders(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: effscale {command}") and "show this help message" in out


def test_published_family_shows_dropout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["family", "--published", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["dropout"] for m in doc["members"]] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]
    assert main(["family", "--published"]) == 0
    table = capsys.readouterr().out
    assert "dropout" in table and "│     0.5 │" in table
