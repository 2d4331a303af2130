"""What a Sentinel failover after a crash knows when it picks the replica to promote.

The deployment of the failover tests: a master, two replicas and three Sentinels on loopback. Each
crash cuts one replica off (SIGSTOP, and the master drops its link), makes one push that the other
replica acknowledges (``WAIT 1``, as ``durable_enqueue: 1`` does), then SIGKILLs the master. While the
Sentinels fail over, the script polls them for the replicas' offsets as they last read them. It prints,
per crash, how old the freshest view was and whether it included the push, and whether the promoted
replica kept the push. The crashed server is started again (as a replica) before the next crash.

    python bench/sentinel_promotion.py [--crashes 24]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import redis

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from sentinel import SERVICE, SentinelSet  # noqa: E402

PUSHED = "bench:pushed"


def freshest_view(deployment: SentinelSet, old_port: int) -> dict[int, tuple[int, int]]:
    """Poll the Sentinels until one promotes a replica; return each replica's offset in the freshest
    view of the last poll, with that view's age in ms."""
    view: dict[int, tuple[int, int]] = {}
    while deployment.master_port() == old_port:
        poll: dict[int, tuple[int, int]] = {}
        for port in deployment.sentinel_ports:
            for replica in deployment.sentinel(port).sentinel_slaves(SERVICE):
                seen = (int(replica["slave-repl-offset"]), int(replica["info-refresh"]))
                if replica["port"] != old_port and seen[1] < poll.get(replica["port"], (0, 10**9))[1]:
                    poll[replica["port"]] = seen
        view = poll
        time.sleep(0.02)
    return view


def crash_once(deployment: SentinelSet, crash: int) -> tuple[bool, bool]:
    """One crash with a replica cut off. Returns whether the push was kept, and whether the Sentinels'
    view of the replica they promoted included it."""
    old_port = deployment.master_port()
    master = redis.Redis(port=old_port, socket_timeout=5)
    behind = next(server.proc for port, server in deployment.servers.items() if port != old_port)
    assert behind is not None
    os.kill(behind.pid, signal.SIGSTOP)
    master.client_kill_filter(_type="replica")  # the one that is not stopped reconnects at once
    while master.wait(1, 100) < 1:
        master.incr("bench:sync")
    master.rpush(PUSHED, crash)
    push_offset = master.info("replication")["master_repl_offset"]
    acknowledged_by = master.wait(1, 1000)
    started = time.monotonic()
    deployment.crash_master()  # resumes both replicas once the master is gone
    view = freshest_view(deployment, old_port)
    failover_s = time.monotonic() - started
    new_port = deployment.wait_for_new_master(old_port)
    kept = str(crash).encode() in redis.Redis(port=new_port, socket_timeout=5).lrange(PUSHED, 0, -1)
    seen_offset, age_ms = view.get(new_port, (0, -1))
    print(f"crash {crash + 1}: push acknowledged by {acknowledged_by} replica, {'kept' if kept else 'LOST'}; "
          f"promoted after {failover_s:.1f} s on a view {age_ms} ms old, "
          f"{seen_offset - push_offset:+d} bytes from the push", flush=True)
    deployment.restart_old_master(old_port)
    return kept, seen_offset >= push_offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=24)
    crashes = parser.parse_args().crashes
    deployment = SentinelSet().start()
    try:
        outcomes = [crash_once(deployment, crash) for crash in range(crashes)]
    finally:
        deployment.stop()
    print(f"promoted on a view that included the push: {sum(seen for _, seen in outcomes)} of {crashes}; "
          f"acknowledged pushes lost: {sum(not kept for kept, _ in outcomes)} of {crashes}")


if __name__ == "__main__":
    main()
