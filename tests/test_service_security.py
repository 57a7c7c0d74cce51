"""The service's locks, each tried for real.

* Launched searches run in fresh private directories (0700) under a private state directory, and
  a module planted in the run directory is not imported: the launched interpreter keeps its
  working directory off ``sys.path`` (shown against ``python -m``, which does import it).
* ``/proc/<pid>/cmdline`` of a launched search holds no storage URL or password.
* Data paths given through the API must resolve (symlinks included) inside ``--data-root``.
* ``package.module:function`` baselines need ``--allow-user-baselines``; unknown names are 422.
* ``effscale serve`` refuses a public host without a token, a port outside 1..65535, a taken port,
  an unsafe state directory and a missing data root: one stderr line, exit 2.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from _service_fixtures import REAL_SEARCH_CONFIG, FakeLauncher
from effscale.errors import UsageError
from effscale.service import create_app
from effscale.service.server import is_loopback
from effscale.service.launcher import SearchLauncher
from effscale.service.schemas import SearchConfig
from effscale.service.statedir import new_run_dir, private_dir

TOKEN = "security-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EFFSCALE = [sys.executable, "-m", "effscale.cli"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _wait_exit(launcher: SearchLauncher, study: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while (status := launcher.get(study))["returncode"] is None:
        assert time.monotonic() < deadline, f"{study} did not exit in {timeout_s} s"
        time.sleep(0.1)
    return status


# ---------------------------------------------------------------------------------------------
# private run directories


def test_state_and_run_directories_are_private_and_fresh(tmp_path: Path) -> None:
    state = private_dir(tmp_path / "a" / "state")
    assert _mode(state) == 0o700
    first, second = new_run_dir(state, "study-1"), new_run_dir(state, "study-1")
    assert first != second and first.parent == second.parent == state / "runs"
    assert first.name.startswith("study-1-") and second.name.startswith("study-1-")
    assert _mode(state / "runs") == _mode(first) == _mode(second) == 0o700


def test_unsafe_state_directories_are_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    with pytest.raises(UsageError, match="writable by its group or others .*chmod go-w"):
        private_dir(shared)
    if os.getuid() == 0:  # root can hand a directory to someone else
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
    else:  # a directory root owns and others cannot write
        foreign = Path("/usr")
    with pytest.raises(UsageError, match="is owned by uid .* not by you"):
        private_dir(foreign)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot be created|is not a directory"):
        private_dir(tmp_path / "file")


class _PlantingLauncher(SearchLauncher):
    """Plants modules named like ones the search imports in each run directory before it starts;
    each writes a marker file when imported."""

    planted = ("effscale", "torch", "numpy")

    def new_run_dir(self, study: str) -> Path:
        run_dir = super().new_run_dir(study)
        for name in self.planted:
            (run_dir / f"{name}.py").write_text(
                f"import pathlib, sys\npathlib.Path('imported-{name}').write_text('planted')\nsys.exit(97)\n"
            )
        return run_dir


class _DashMLauncher(_PlantingLauncher):
    """The old command, ``python -m effscale.cli``, which puts the working directory first."""

    def command(self, argv: list[str]) -> list[str]:
        return [self.python, "-m", "effscale.cli", "search", *argv, "--json"]


def test_a_module_planted_in_the_run_directory_is_not_imported(sqlite_url: str, tmp_path: Path) -> None:
    argv = ["tiny", "--data", "digits", "--alpha", "0.5"]  # imports effscale, torch and numpy, then exits 2
    launcher = _PlantingLauncher(sqlite_url, state_dir=tmp_path / "state")
    launcher.launch("planted", argv)
    status = _wait_exit(launcher, "planted")
    (run_dir,) = (tmp_path / "state" / "runs").glob("planted-*")
    assert sorted(p.name for p in run_dir.iterdir()) == ["effscale.py", "numpy.py", "search.log", "torch.py"]
    assert status["returncode"] == 2 and "--alpha contains 0.5" in launcher.log("planted")
    # The control: the same plant is imported by `python -m` (so the check above can fail).
    control = _DashMLauncher(sqlite_url, state_dir=tmp_path / "control")
    control.launch("planted", argv)
    assert _wait_exit(control, "planted")["returncode"] == 97
    (control_dir,) = (tmp_path / "control" / "runs").glob("planted-*")
    assert (control_dir / "imported-effscale").exists()


def test_a_launched_search_has_no_storage_url_on_its_command_line(tmp_path: Path) -> None:
    secret = "pw-Zq81xx"
    url = f"postgresql+psycopg2://effscale:{secret}@127.0.0.1:9/nodb"  # never reached: we stop it
    argv = SearchConfig(**REAL_SEARCH_CONFIG).to_argv(study="cmdline", ray_address=None)
    launcher = SearchLauncher(url, state_dir=tmp_path / "state")
    info = launcher.launch("cmdline", argv)
    try:
        # Popen returns as exec closes the child's descriptors, a moment before the kernel has set
        # up the new image's arguments (cmdline reads empty until then); the search then runs for
        # seconds before it reaches the (unreachable) database.
        deadline = time.monotonic() + 10
        while not (raw := Path(f"/proc/{info['pid']}/cmdline").read_bytes()):
            assert time.monotonic() < deadline, launcher.get("cmdline")
            time.sleep(0.01)
        args = raw.decode().split("\0")
        assert args[3:5] == ["search", "tiny"] and args[-2:] == ["--json", ""], (args, launcher.log("cmdline"))
        for needle in (secret, "postgresql", "127.0.0.1:9", "--storage"):
            assert not any(needle in arg for arg in args), (needle, args)
        # The URL is in the environment, which only this user (and root) can read.
        assert _mode(Path(f"/proc/{info['pid']}/environ")) & 0o077 == 0
    finally:
        launcher.shutdown(timeout_s=10)
    (run_dir,) = (tmp_path / "state" / "runs").glob("cmdline-*")
    assert _mode(tmp_path / "state") == _mode(run_dir) == 0o700 and _mode(run_dir / "search.log") == 0o600
    log = launcher.log("cmdline") or ""
    assert secret not in log, log[-2000:]


# ---------------------------------------------------------------------------------------------
# data confined to --data-root, user baselines opt-in


@pytest.fixture
def data_tree(tmp_path: Path) -> dict[str, Path]:
    """A data root holding good data, a link out of it, a folder with a link out inside, and a
    link to elsewhere inside it; and a directory outside."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for d in (root / "good" / "a", root / "good" / "b", root / "inner" / "cls", outside):
        d.mkdir(parents=True)
    (root / "data.npz").write_bytes(b"x")
    (outside / "secret.npz").write_bytes(b"x")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "link.npz").symlink_to(outside / "secret.npz")
    (root / "good" / "b" / "img.png").write_bytes(b"x")
    (root / "tricky" / "a").mkdir(parents=True)
    (root / "tricky" / "a" / "img.png").symlink_to(outside / "secret.npz")
    (root / "alias").symlink_to(root / "good", target_is_directory=True)
    return {"root": root, "outside": outside}


def _launch(client: TestClient, **change: Any) -> Any:
    return client.post("/api/searches", json={**REAL_SEARCH_CONFIG, **change}, headers=AUTH)


def _client(url: str, **options: Any) -> TestClient:
    launcher = FakeLauncher()
    client = TestClient(create_app(url, token=TOKEN, launcher=launcher, **options))
    client.launcher = launcher  # type: ignore[attr-defined]
    return client


def test_without_a_data_root_only_bundled_data_is_accepted(sqlite_url: str, data_tree: dict[str, Path]) -> None:
    c = _client(sqlite_url)
    for spec in (f"npz:{data_tree['root'] / 'data.npz'}", "folder:good", f"cifar:{data_tree['root']}"):
        res = _launch(c, data=spec)
        assert res.status_code == 422, res.text
        assert "--data-root" in res.json()["message"] and res.json()["detail"][0]["loc"] == ["body", "data"]
    assert _launch(c, data="digits", study="d").status_code == 202
    assert _launch(c, data="synthetic:classes=3,size=16,n=60", study="s").status_code == 202
    assert [argv[argv.index("--data") + 1] for _, argv in c.launcher.launched] == [  # type: ignore[attr-defined]
        "digits", "synthetic:classes=3,size=16,n=60"]


@pytest.mark.parametrize(
    "spec,why",
    [
        ("npz:{outside}/secret.npz", "resolves to"),
        ("npz:../outside/secret.npz", "resolves to"),
        ("npz:link.npz", "resolves to"),
        ("folder:escape", "resolves to"),
        ("folder:tricky", "holds a link"),
        ("npz:/etc/hostname", "resolves to"),
        ("folder:missing", "no such file"),
    ],
)
def test_data_outside_the_root_is_422_naming_the_root(
    sqlite_url: str, data_tree: dict[str, Path], spec: str, why: str
) -> None:
    c = _client(sqlite_url, data_root=data_tree["root"])
    res = _launch(c, data=spec.format(outside=data_tree["outside"]))
    assert res.status_code == 422, res.text
    message = res.json()["message"]
    assert why in message and f"data root {data_tree['root']}" in message, message
    assert c.launcher.launched == []  # type: ignore[attr-defined]


def test_data_inside_the_root_is_passed_on_as_a_real_path(sqlite_url: str, data_tree: dict[str, Path]) -> None:
    root = data_tree["root"]
    c = _client(sqlite_url, data_root=root)
    cases = {"npz:data.npz": f"npz:{root / 'data.npz'}", f"npz:{root / 'data.npz'}": f"npz:{root / 'data.npz'}",
             "folder:good": f"folder:{root / 'good'}", "folder:alias": f"folder:{root / 'good'}",
             "folder:./good/../good": f"folder:{root / 'good'}", "digits": "digits"}
    for i, spec in enumerate(cases):
        assert _launch(c, data=spec, study=f"ok-{i}").status_code == 202, spec
    sent = [argv[argv.index("--data") + 1] for _, argv in c.launcher.launched]  # type: ignore[attr-defined]
    assert sent == list(cases.values())


def test_a_missing_data_root_is_refused_at_startup(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--data-root .* does not exist"):
        create_app(sqlite_url, data_root=tmp_path / "nope")


def test_user_baselines_need_the_server_option(sqlite_url: str) -> None:
    c = _client(sqlite_url)
    res = _launch(c, baseline="mypkg.nets:build")
    assert res.status_code == 422 and "--allow-user-baselines" in res.json()["message"]
    assert res.json()["detail"][0]["loc"] == ["body", "baseline"]
    res = _launch(c, baseline="no_such_net")
    message = res.json()["message"]
    assert res.status_code == 422 and "unknown baseline 'no_such_net'" in message
    assert "tiny" in message and "resnet18" in message
    assert c.launcher.launched == []  # type: ignore[attr-defined]
    allowed = _client(sqlite_url, allow_user_baselines=True)
    assert _launch(allowed, baseline="mypkg.nets:build").status_code == 202
    ((_, argv),) = allowed.launcher.launched  # type: ignore[attr-defined]
    assert argv[0] == "mypkg.nets:build"


# ---------------------------------------------------------------------------------------------
# effscale serve refuses what it cannot serve safely


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.com"))


def _serve(args: list[str], tmp_path: Path, *, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EFFSCALE_TOKEN", "EFFSCALE_STORAGE")}
    if token:
        env["EFFSCALE_TOKEN"] = token
    base = ["serve", "--storage", f"sqlite:///{tmp_path / 'serve.db'}", "--state-dir", str(tmp_path / "state")]
    return subprocess.run([*EFFSCALE, *base, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_serve_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [
            (["--port", "70000"], None, "--port 70000 is not a TCP port: pass a number from 1 to 65535"),
            (["--port", "0"], None, "--port 0 is not a TCP port"),
            (["--host", "0.0.0.0", "--port", str(port)], None, "--host 0.0.0.0 would serve the API beyond this machine without a token"),
            (["--port", str(port)], None, f"port {port} on 127.0.0.1 is already in use"),
            (["--state-dir", str(shared)], None, "is writable by its group or others"),
            (["--data-root", str(tmp_path / "nope")], None, "--data-root"),
            (["--storage", "mysql://u:hunter2@h/db"], None, "is not supported"),
        ]
        for args, token, needle in cases:
            done = _serve(args, tmp_path, token=token)
            assert done.returncode == 2, (args, done.stderr)
            assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
            assert done.stderr.startswith("effscale serve: error: ") and needle in done.stderr, done.stderr
            assert "hunter2" not in done.stderr
        # With a token, a public host passes that check (and stops at the taken port).
        done = _serve(["--host", "0.0.0.0", "--port", str(port)], tmp_path, token="t")
        assert done.returncode == 2 and "already in use" in done.stderr, done.stderr
