"""Damaged state is refused, named, and never silently repaired (the ninth attack).

A node that starts from a data_dir someone deleted or cut must not come up as
if nothing happened: with its term and vote gone it could vote twice in a
term, and with its log gone or cut it would forget entries a majority counted
on. Each test damages one node's data_dir while it is stopped, checks that
the node refuses to start with a message naming the file, and that the rest
of the cluster keeps serving. These know the reference node's files, so they
are marked `reference`.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from .lib.checks import assert_ok

pytestmark = pytest.mark.reference


def _damaged(make_cluster, writes: int = 50):
    cluster = make_cluster(3, proxy=False)
    leader = cluster.wait_settled()
    client = cluster.client()
    for i in range(writes):
        assert_ok(client.set(f"k{i}", str(i)), "setup write")
    cluster.wait_converged()
    victim = next(n for n in cluster.ids if n != leader)
    cluster.stop(victim)
    return cluster, client, victim


def _refuses(cluster, victim: str, *needles: str) -> str:
    """Starts `victim`; it must exit at once with a message containing every needle."""
    cluster.start(victim)
    proc = cluster.nodes[victim]
    until = time.monotonic() + 5.0
    while proc.is_running() and time.monotonic() < until:
        time.sleep(0.05)
    assert not proc.is_running(), f"{victim} started on damaged state:\n{proc.log_tail(10)}"
    tail = proc.log_tail(5)
    for needle in needles:
        assert needle in tail, f"{victim}'s refusal must name {needle!r}:\n{tail}"
    assert "refusing to start" in tail, tail
    return tail


def _still_serving(cluster, client):
    r = client.get("k0")
    assert r.ok and r.value == "0", f"the rest of the cluster after the refusal: {r}"
    assert_ok(client.set("after", "1"), "a write with one node refusing to start")


def test_deleted_meta_is_refused(make_cluster):
    cluster, client, victim = _damaged(make_cluster)
    path = cluster.path("data", victim, "meta")
    os.remove(path)
    _refuses(cluster, victim, path)
    _still_serving(cluster, client)


# The log is a directory of segment files, data_dir/log/<first index, 20
# digits>.seg, each a 32-byte header ("RKVLOG03") then records in space
# preallocated in whole chunks (src/storage/segment.h).
SEGMENT_HEADER_BYTES = 32


def _last_segment_with_records(log_dir: str) -> str:
    segments = sorted(n for n in os.listdir(log_dir) if n.endswith(".seg"))
    assert segments, f"no segment files in {log_dir}"
    for name in reversed(segments):
        path = os.path.join(log_dir, name)
        with open(path, "rb") as f:
            if f.read().rstrip(b"\0")[SEGMENT_HEADER_BYTES:]:
                return path
    raise AssertionError(f"no segment in {log_dir} holds a record")


def test_deleted_log_is_refused(make_cluster):
    cluster, client, victim = _damaged(make_cluster)
    path = cluster.path("data", victim, "log")
    shutil.rmtree(path)
    _refuses(cluster, victim, path)
    assert not os.path.exists(path), "the refusing node re-created an empty log"
    _still_serving(cluster, client)


def test_log_cut_inside_a_record_is_refused_not_taken_for_a_torn_write(make_cluster):
    cluster, client, victim = _damaged(make_cluster)
    path = _last_segment_with_records(cluster.path("data", victim, "log"))
    with open(path, "rb") as f:
        data = f.read()
    # The records end where the zeros of the preallocated space begin; cut
    # inside the middle record, as `truncate` would.
    end = len(data.rstrip(b"\0"))
    cut = SEGMENT_HEADER_BYTES + (end - SEGMENT_HEADER_BYTES) // 2 + 3
    with open(path, "r+b") as f:
        f.truncate(cut)
    tail = _refuses(cluster, victim, path)
    assert "truncated" in tail, tail
    _still_serving(cluster, client)


def test_data_dir_of_another_node_is_refused(make_cluster):
    cluster, client, victim = _damaged(make_cluster)
    other = next(n for n in cluster.ids if n != victim)
    with open(cluster.path("data", other, "identity"), "rb") as f:
        foreign = f.read()
    path = cluster.path("data", victim, "identity")
    with open(path, "wb") as f:
        f.write(foreign)
    _refuses(cluster, victim, path, "another node's")
    _still_serving(cluster, client)
