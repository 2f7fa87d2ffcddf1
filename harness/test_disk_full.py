"""A full disk: fail-stop for writes, but the node can restart, say so, and follow.

One node's data_dir is a small tmpfs filled almost to the brim. The node
stops when it cannot extend its log (fail-stop, with a message that names
the file and says the disk is full), and then starts again: it releases
its space reserve, reports "disk_full": true in status, catches up as a
follower and serves reads, while the others keep taking writes. Once space
is freed, a restart clears the flag.

Mounting a tmpfs needs root (CI runs as root); elsewhere the test is skipped
and says why.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from .lib.checks import assert_ok

pytestmark = pytest.mark.reference

MiB = 1 << 20


def _mount_tmpfs(path: str, size_mib: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs for the data_dir")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", path],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def _fill(path: str, leave_bytes: int) -> str:
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(path, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_full_disk_stops_writes_then_restarts_as_a_flagged_follower(make_cluster):
    cluster = make_cluster(3, proxy=False, start=False)
    victim = "n3"
    data_dir = cluster.path("data", victim)
    _mount_tmpfs(data_dir, 40)
    try:
        cluster.start()
        leader = cluster.wait_settled()
        client = cluster.client(deadline=5.0)
        assert_ok(client.set("k", "0"), "first write")
        cluster.wait_converged()
        assert os.path.exists(os.path.join(data_dir, "reserve")), "no space reserve was made"
        filler = _fill(data_dir, 2 * MiB)

        # 16 KiB values fill the log's preallocated chunk quickly; the next
        # chunk cannot be allocated, and the node must stop rather than go on.
        value = "v" * 16000
        proc = cluster.nodes[victim]
        for i in range(2000):
            assert_ok(client.set(f"big{i % 50}", value), f"write {i} (the other two nodes are a majority)")
            if not proc.is_running():
                break
        deadline = time.monotonic() + 5
        while proc.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not proc.is_running(), f"{victim} kept running on a full disk:\n{proc.log_tail(5)}"
        tail = proc.log_tail(5)
        assert "disk is full" in tail and "log" in tail, f"the fail-stop must say the disk is full:\n{tail}"

        # Restart on the still-full disk: it starts, says so, and follows.
        cluster.start(victim)
        st = cluster.wait_caught_up(victim)
        assert st.get("disk_full") is True, f"status must report disk_full: {st}"
        assert not os.path.exists(os.path.join(data_dir, "reserve")), "the reserve was not released"
        assert_ok(client.set("k", "1"), "a write while one node's disk is full")
        cluster.wait_converged()
        r = client.get_local("k", victim)
        assert r.ok and r.value == "1", f"{victim} did not follow on its full disk: {r}"

        # Space freed, restart: the flag is gone and the reserve is back.
        os.remove(filler)
        cluster.restart(victim, crash=False)
        st = cluster.wait_caught_up(victim)
        assert st.get("disk_full") is False, f"disk_full after freeing space: {st}"
        assert os.path.exists(os.path.join(data_dir, "reserve")), "the reserve was not re-created"
    finally:
        cluster.stop(cluster.ids)
        subprocess.run(["umount", "-l", data_dir], capture_output=True, timeout=10)
