"""docker/: what can be checked without a Docker engine.

* ``compose.yaml`` parses, and after Compose's variable interpolation every service names either a
  known, real image or a build context that exists with its Dockerfile.
* Every command a container runs is a real command that accepts its flags: ``effscale ...`` parses
  with ``effscale.cli.build_parser()``, ``ray ...`` with Ray's own click commands; ``bash -c``
  scripts are split at ``&&`` and each part checked, with the container's environment expanded.
* GPU workers reserve NVIDIA devices and can be scaled (no fixed name, no host port); published
  ports bind to 127.0.0.1; secrets come from required variables.
"""

from __future__ import annotations

import json

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml  # pyyaml, a dev dependency: missing is a failure, not a skip

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"

# Public images the files may name. No registry is reachable from the test machine, so this list
# is the check: each entry is an official image and tag that exists on Docker Hub.
KNOWN_IMAGES = {
    "postgres:16-bookworm",  # https://hub.docker.com/_/postgres
    "python:3.11-slim-bookworm",  # https://hub.docker.com/_/python
}
LOCAL_IMAGE = "effscale:latest"  # built by compose from docker/Dockerfile
SAMPLE_ENV = {"POSTGRES_PASSWORD": "pw-from-env", "EFFSCALE_TOKEN": "token-from-env"}

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's (and the shell's) ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and unset:
            return interpolate(arg, env)
        if op in (":?", "?") and unset:
            raise KeyError(f"required variable {name} is not set: {arg}")
        if value is None:
            raise KeyError(f"variable {name} is not set and has no default")
        return value

    return _VAR.sub(sub, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(raw, dict) and "services" in raw
    return interpolate_tree(raw, SAMPLE_ENV)


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_compose_parses_and_has_the_roles(compose: dict[str, Any]) -> None:
    assert {"postgres", "ray-head", "ray-worker", "effscale"} <= set(_services(compose))


def test_required_secrets_must_be_set() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for missing in SAMPLE_ENV:
        env = {k: v for k, v in SAMPLE_ENV.items() if k != missing}
        with pytest.raises(KeyError, match=missing):
            interpolate_tree(raw, env)


def test_images_are_real_or_built_here(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        image = service.get("image")
        build = service.get("build")
        if build is not None:
            context = (COMPOSE.parent / build["context"]).resolve()
            assert context.is_dir(), f"{name}: build context {context} does not exist"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
            assert dockerfile.resolve() == DOCKERFILE.resolve()
            assert image == LOCAL_IMAGE, f"{name}: a built service is tagged {LOCAL_IMAGE}"
        else:
            assert image in KNOWN_IMAGES, f"{name}: image {image!r} is not a known public image"


def test_dockerfile_base_image_and_copies_exist() -> None:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, flags=re.M))
    (base,) = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert interpolate(base, args) in KNOWN_IMAGES
    for sources in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in sources.split():
            assert (REPO / source).exists(), f"COPY {source}: not in the build context"
    assert "NVIDIA_VISIBLE_DEVICES" in text and "torch" in text
    cmd = re.search(r"^CMD (\[.*\])$", text, flags=re.M)
    assert cmd is not None
    _check_command(yaml.safe_load(cmd.group(1)), {})


def test_gpu_workers_reserve_devices_and_scale(compose: dict[str, Any]) -> None:
    worker = _services(compose)["ray-worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"] and int(device["count"]) >= 1
    assert "container_name" not in worker and "ports" not in worker


def test_published_ports_bind_to_localhost(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is published on every interface"


def test_serve_gets_token_and_storage_from_the_environment(compose: dict[str, Any]) -> None:
    serve = _services(compose)["effscale"]
    env = serve["environment"]
    assert env["EFFSCALE_TOKEN"] == SAMPLE_ENV["EFFSCALE_TOKEN"]
    assert env["EFFSCALE_STORAGE"] == "postgresql://effscale:pw-from-env@postgres:5432/effscale"
    script = " ".join(serve["command"])
    assert "pw-from-env" not in script, "the password comes from the environment at run time"


# ---------------------------------------------------------------------------------------------
# commands


def _check_effscale(argv: list[str]) -> None:
    from effscale.cli import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(f"`effscale {shlex.join(argv)}` does not parse (exit {exc.code})") from None
    assert args.command in ("serve", "search", "studies", "trials", "family", "cost", "baselines")


def _check_ray(argv: list[str]) -> None:
    from ray.scripts.scripts import cli

    assert argv and argv[0] in cli.commands, f"`ray {argv[:1]}` is not a ray command"
    command = cli.commands[argv[0]]
    command.make_context(argv[0], list(argv[1:]))  # raises click.UsageError on a bad flag


def _check_command(argv: list[str], env: dict[str, str]) -> list[str]:
    """Check one container command; return the programs it runs."""
    argv = [str(a) for a in argv]
    if argv[:2] in (["bash", "-c"], ["sh", "-c"]):
        programs = []
        for part in argv[2].split("&&"):
            words = shlex.split(interpolate(part.strip(), env))
            if words and words[0] == "exec":
                words = words[1:]
            programs += _check_command(words, env)
        return programs
    if argv[0] == "effscale":
        _check_effscale(argv[1:])
    elif argv[0] == "ray":
        _check_ray(argv[1:])
    elif argv[0] in ("pg_isready", "curl"):
        pass  # health checks of the postgres image / curl installed in the Dockerfile
    else:
        raise AssertionError(f"unexpected program {argv[0]!r} in {argv}")
    return [argv[0]]


def _container_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_every_command_is_real_and_accepts_its_flags(compose: dict[str, Any]) -> None:
    programs: dict[str, list[str]] = {}
    for name, service in _services(compose).items():
        env = _container_env(service)
        if "command" in service:
            command = service["command"]
            if isinstance(command, str):
                command = shlex.split(command)
            programs[name] = _check_command(command, env)
        health = (service.get("healthcheck") or {}).get("test")
        if health:
            assert health[0] in ("CMD", "CMD-SHELL")
            _check_command(health[1:] if health[0] == "CMD" else ["sh", "-c", health[1]], env)
    assert programs["effscale"] == ["ray", "effscale"] and programs["ray-worker"] == ["ray"]
    assert programs["search"] == ["ray", "effscale"]


def test_serve_command_flags(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from effscale.cli import build_parser

    serve = _services(compose)["effscale"]
    env = _container_env(serve)
    script = serve["command"][2]
    last = shlex.split(interpolate(script.split("&&")[-1].strip(), env))
    assert last[:2] == ["exec", "effscale"]
    # The password-bearing URL never rides on a command line (`ps` shows those): --storage falls
    # back to the container's EFFSCALE_STORAGE.
    for name, service in _services(compose).items():
        assert "--storage" not in json.dumps(service.get("command", "")), name
    monkeypatch.setenv("EFFSCALE_STORAGE", env["EFFSCALE_STORAGE"])
    args = build_parser().parse_args(last[2:])
    assert args.storage == "postgresql://effscale:pw-from-env@postgres:5432/effscale"
    assert (args.host, int(args.port), args.ray_address) == ("0.0.0.0", 8000, "auto")
    assert args.state_dir == "/var/lib/effscale/state"


def test_interpolation_helper() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("$A ${A} ${B:-x} ${E:-d} ${E-d} $$A", env) == "1 1 x d  $A"
    with pytest.raises(KeyError):
        interpolate("${B:?need B}", env)
