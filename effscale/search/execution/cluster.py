"""Joining a Ray cluster, or starting a quiet local one, and reading what its nodes offer.

``--ray-address`` joins an existing cluster (``ray start --head`` on one machine, ``ray start
--address`` on the others); without it a local in-process Ray starts and stops with the search.
A join that does not complete within ``--connect-timeout`` fails in one line: ``ray.init`` on a
port that accepts TCP but is not Ray would otherwise retry for minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator

from effscale.errors import UsageError

DEFAULT_CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Resources:
    """What each trial asks of Ray (checked by `SearchOptions`)."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_retries: int = 2


def _probe_address(address: str, timeout_s: float) -> None:
    """Fail fast on a cluster that is not there at all (refused, unroutable)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r} is not host:port (or ray://host:port, or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=min(3.0, timeout_s)):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with `ray start --head` "
            "or omit --ray-address to run on a local Ray"
        ) from None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Ray's C++ core logs straight to file descriptor 2 while it joins or retries a cluster;
    the user gets our one line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_PROBE = (
    "import logging, sys, ray; "
    "ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR); "
    "print('joined')"
)


def _probe_ray(address: str, timeout_s: float) -> None:
    """Join ``address`` once in a child process that can be killed: a port that accepts TCP but
    is not Ray makes ``ray.init`` retry for minutes, and a thread stuck there could not be stopped."""
    import subprocess

    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True,
                               timeout=timeout_s, env=os.environ.copy())
    except subprocess.TimeoutExpired:  # run() killed the child
        raise UsageError(
            f"could not join the Ray cluster at {address} within --connect-timeout {timeout_s:g} s "
            "(is it a Ray head's GCS port, e.g. 6379?); check the address or raise --connect-timeout"
        ) from None
    if "joined" not in probe.stdout:
        lines = [line for line in probe.stderr.splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else f"exit code {probe.returncode}"
        raise UsageError(f"cannot join the Ray cluster at {address} ({reason}); check --ray-address")


def _init(address: str | None) -> None:
    import ray

    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                                  configure_logging=True)
    if not address:
        # "local": always a new local Ray of our own. A bare ray.init() would join any cluster
        # already running on this machine (e.g. one `ray start` left), on that cluster's terms.
        ray.init(address="local", **kwargs)  # its processes must keep the real stderr
        return
    with _quiet_stderr():
        ray.init(address=address, **kwargs)


def ensure_ray(address: str | None, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S) -> bool:
    """Join ``address`` or start a quiet local Ray; True if this call started (and must stop) it."""
    import ray

    if address:
        _probe_address(address, connect_timeout)
    if ray.is_initialized():
        return False
    if address and address not in ("auto", "local"):
        _probe_ray(address, connect_timeout)
    try:
        _init(address)
    except UsageError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot start or join Ray ({str(exc).splitlines()[0]}); check --ray-address") from None
    return True


def node_resources() -> list[dict[str, float]]:
    """Each live node's total resources (CPU, GPU, memory in bytes, ...)."""
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def check_fits(resources: Resources) -> None:
    """Some node must offer one trial's CPUs and GPUs, or no trial could ever start."""
    nodes = node_resources()
    cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if resources.gpus_per_trial > gpus:
        raise UsageError(
            f"--gpus-per-trial {resources.gpus_per_trial:g} but no node has {resources.gpus_per_trial:g} GPUs; "
            "pass --gpus-per-trial 0 or join a cluster with GPUs (--ray-address)"
        )
    if resources.cpus_per_trial > cpus:
        raise UsageError(
            f"--cpus-per-trial {resources.cpus_per_trial:g} but no node has {resources.cpus_per_trial:g} CPUs; "
            "lower --cpus-per-trial"
        )


def shutdown_ray() -> None:
    """Stop the local Ray that `ensure_ray` started."""
    import ray

    ray.shutdown()
