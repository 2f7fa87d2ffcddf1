"""Efficiency, black-box: what the fault proxy counted, per committed write and per idle second.

Every datagram between nodes crosses the proxy (docs/proxy.md), which
counts them and their payload bytes per link. From those counts, on a
healthy 3-node cluster:

- idle: node-to-node datagrams per second with no client traffic;
- per committed write: node-to-node datagrams, and client datagrams, per
  acknowledged write of a sequential writer;
- bytes per entry: node-to-node payload bytes per acknowledged 1,000-byte
  write, per follower (each entry must reach each follower; resending whole
  logs or values over and over does not pass).

The limits are generous on purpose (docs/harness.md, "Efficiency"): several
times what a plain Raft needs, so they catch waste (a heartbeat every
millisecond, an entry sent to each follower ten times, a log resent from its
start), not a design choice. Each test records its figures (`metric:*`) in
the report, whether it passes or not.
"""

import time

import pytest

from .lib.checks import assert_ok

IDLE_WINDOW_S = 3.0
WRITES = 150
VALUE_BYTES = 1000

# A heartbeat round is (N-1) appends and (N-1) replies per heartbeat interval (50 ms):
# 80 datagrams/s for 3 nodes. The limit allows five times that.
IDLE_ROUNDS_ALLOWED = 5
# Replicating one write to 2 followers takes 4 datagrams (append + reply each), perhaps
# 4 more to spread the commit index. 24 allows retries and heartbeats interleaved.
NODE_DATAGRAMS_PER_WRITE_LIMIT = 24
# A client request and its reply: 2; up to 3 times that for redirects and retries.
CLIENT_DATAGRAMS_PER_WRITE_LIMIT = 6
# Each 1,000-byte value must reach each follower once; allow three copies plus 1 KiB of envelope.
BYTES_PER_ENTRY_LIMIT = 3 * VALUE_BYTES + 1024


def _node_links(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if "client" not in k.split(">")}


def _client_links(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if "client" in k.split(">")}


def _sum(links: dict, field: str) -> int:
    missing = [k for k, v in links.items() if field not in v]
    if missing:
        pytest.fail(f"the proxy's stats lack '{field}' (links {missing[:3]}): rebuild ./proxy", pytrace=False)
    return sum(v[field] for v in links.values())


def _reset_stats(cluster) -> None:
    cluster.proxy.call("stats", reset=True)


def _record(request, name: str, value: float) -> float:
    value = round(value, 2)
    request.node.user_properties.append((f"metric:{name}", value))
    return value


def test_idle_traffic_is_bounded(make_cluster, request, timing):
    """With no client traffic, a settled cluster sends a bounded number of datagrams per second.

    Guards: heartbeats at the configured interval, not in a busy loop; no
    elections in a healthy cluster.
    """
    cluster = make_cluster(default=3)
    cluster.wait_settled()
    time.sleep(0.5)
    _reset_stats(cluster)
    start = time.monotonic()
    time.sleep(IDLE_WINDOW_S)
    stats = cluster.link_stats()
    elapsed = time.monotonic() - start
    per_s = _record(request, "idle_datagrams_per_s", _sum(_node_links(stats), "forwarded") / elapsed)
    n = cluster.size
    limit = IDLE_ROUNDS_ALLOWED * 2 * (n - 1) * 1000 / timing.heartbeat_ms
    assert per_s <= limit, (f"idle cluster of {n}: {per_s:.0f} node-to-node datagrams/s, limit {limit:.0f} "
                            f"({IDLE_ROUNDS_ALLOWED} x one heartbeat round every {timing.heartbeat_ms} ms)")


def test_datagrams_and_bytes_per_committed_write(make_cluster, request):
    """Sequential 1,000-byte writes: node-to-node datagrams and bytes per entry, client datagrams per write.

    Guards: one replication round per write (or fewer, batched); entries sent
    to each follower about once, not the whole log again; no retry storms
    between client and leader.
    """
    cluster = make_cluster(default=3)
    leader = cluster.wait_settled()
    client = cluster.client()
    assert_ok(client.set("warm-up", "x", node=leader), "warm-up write")
    _reset_stats(cluster)
    start = time.monotonic()
    for i in range(WRITES):
        value = f"{i:06d}-" + "v" * (VALUE_BYTES - 7)
        assert_ok(client.set(f"k{i % 10}", value), f"write {i}")
    elapsed = time.monotonic() - start
    stats = cluster.link_stats()
    nodes, clients = _node_links(stats), _client_links(stats)
    followers = cluster.size - 1
    per_write = _record(request, "node_datagrams_per_write", _sum(nodes, "forwarded") / WRITES)
    client_per_write = _record(request, "client_datagrams_per_write", _sum(clients, "forwarded") / WRITES)
    bytes_per_entry = _record(request, "bytes_per_entry_per_follower",
                              _sum(nodes, "forwarded_bytes") / WRITES / followers)
    _record(request, "write_latency_ms", 1000 * elapsed / WRITES)
    problems = []
    if per_write > NODE_DATAGRAMS_PER_WRITE_LIMIT:
        problems.append(f"{per_write:.1f} node-to-node datagrams per write (limit {NODE_DATAGRAMS_PER_WRITE_LIMIT})")
    if client_per_write > CLIENT_DATAGRAMS_PER_WRITE_LIMIT:
        problems.append(f"{client_per_write:.1f} client datagrams per write (limit {CLIENT_DATAGRAMS_PER_WRITE_LIMIT})")
    if bytes_per_entry > BYTES_PER_ENTRY_LIMIT:
        problems.append(f"{bytes_per_entry:.0f} node-to-node bytes per {VALUE_BYTES}-byte entry per follower "
                        f"(limit {BYTES_PER_ENTRY_LIMIT})")
    assert not problems, f"{WRITES} sequential writes on {cluster.size} nodes: " + "; ".join(problems)
