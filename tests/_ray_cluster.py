"""A real multi-node Ray cluster on this machine, for the cluster and fault tests.

Run as a script in its own session (the fixture in tests/conftest.py does): it starts, with
`ray.cluster_utils.Cluster` as Ray's own cluster tests do, a head with 0 CPUs (so trials land on
workers) and worker nodes declaring CPUs and logical GPUs (``--num-gpus``: scheduling only, no
CUDA), every node bound to 127.0.0.1. It prints one JSON line per answer on stdout and reads
commands on stdin:

* ``nodes``: the worker nodes' ids;
* ``remove N``: remove worker N (its raylet and workers die, as when a machine goes away);
* ``add``: add a worker like the others;
* ``quit``: shut the cluster down and exit.

RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps Ray on loopback addresses. It is a need of this test
machine (its own IP is not routable from itself), not a user setting.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

WORKER = {"num_cpus": int(os.environ.get("EFFSCALE_TEST_WORKER_CPUS", "2")), "num_gpus": 1}


def main() -> None:
    from ray.cluster_utils import Cluster

    # A dead node is noticed within ~3 s, not Ray's default ~30 s (as Ray's own cluster tests do).
    system_config = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                     "health_check_failure_threshold": 3}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                             "_system_config": system_config})
    workers = [cluster.add_node(node_ip_address="127.0.0.1", **WORKER) for _ in range(2)]
    cluster.wait_for_nodes()
    say(address=cluster.address, workers=[w.node_id for w in workers])
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            break
        if command[0] == "remove":
            node = workers.pop(int(command[1]))
            cluster.remove_node(node, allow_graceful=False)
            say(removed=node.node_id, workers=[w.node_id for w in workers])
        elif command[0] == "add":
            workers.append(cluster.add_node(node_ip_address="127.0.0.1", **WORKER))
            cluster.wait_for_nodes()
            say(added=workers[-1].node_id, workers=[w.node_id for w in workers])
        elif command[0] == "nodes":
            say(workers=[w.node_id for w in workers])
    cluster.shutdown()
    say(stopped=True)


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
