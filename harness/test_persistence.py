"""Crashes and restarts from disk: what was acknowledged must survive.

PROTOCOL.md: "SIGKILL at any instant loses no acknowledged write." These
tests kill real processes at random instants (the whole cluster at once,
single nodes again and again, leaders whose entries reached only a
minority) and restart them from their own data_dir.
"""

import re
import time

import pytest

from .lib.checks import assert_acked_writes_survive, assert_ok, assert_one_leader_per_term, wait_until
from .lib.client import OK
from .lib.workload import Writers


@pytest.mark.points(3)
def test_whole_cluster_crash_mid_stream(make_cluster, rng, timing):
    """kill -9 every node at once in the middle of a stream of writes, restart them all:
    every acknowledged write reads back.

    Guards: entries are on disk before they are acknowledged, on the leader
    and on followers alike (pitfall 3), and term/vote are on disk before a
    vote is granted (pitfall 2), so the restarted cluster elects a leader
    that has every committed entry.
    """
    cluster = make_cluster(default=3)
    history = cluster.history()
    writers = Writers(cluster, history, writers=4, keys_per_writer=5, read_ratio=0.1).start()
    try:
        time.sleep(rng.uniform(0.8, 1.5))
        cluster.kill("all")
    finally:
        # Requests in flight at the crash end as unavailable (the cluster is down).
        writers.stop()
    acked = writers.acked()
    assert acked >= 20, f"too few writes before the crash to prove anything: {history.summary()}"
    time.sleep(rng.uniform(0.0, 0.3))
    cluster.start("all")
    cluster.wait_for_leader(timing.startup_bound)
    assert_acked_writes_survive(cluster.client(), history)


@pytest.mark.points(2)
def test_repeated_single_node_crashes(make_cluster, rng, timing):
    """Crash and restart one node at a time (leader or follower, at random), many times,
    while writes go on. Nothing acknowledged is lost; all nodes converge.

    Guards: recovery from a log cut at any instant (a torn last record must
    not stop the node or lose an acknowledged entry), and re-joining with a
    log that may be ahead of, behind, or in conflict with the leader's.
    """
    cluster = make_cluster(default=3)
    history = cluster.history()
    writers = Writers(cluster, history, writers=3).start()
    try:
        for _ in range(6):
            victim = rng.choice(cluster.ids)
            time.sleep(rng.uniform(0.1, 0.4))
            cluster.kill(victim)
            time.sleep(rng.uniform(0.1, 0.5))
            cluster.start(victim)
            cluster.wait_caught_up(victim)
    finally:
        writers.stop()
    cluster.wait_for_leader()
    cluster.wait_converged()
    assert history.count(outcome=OK) >= 30, f"too little progress: {history.summary()}"
    assert_acked_writes_survive(cluster.client(), history)
    assert_one_leader_per_term(cluster.observed())


@pytest.mark.reference
def test_restarted_node_recovers_its_own_log(make_cluster, timing):
    """A leader killed right after acknowledging writes finds all of them in its own data_dir.

    Reference-only: it reads the reference node's start-up line "recovered
    term T, vote V, N log entries from DIR", which PROTOCOL.md does not
    define. Seen from outside, a node that lost its log could still be
    repaired by the new leader; this test tells the two apart.
    """
    cluster = make_cluster(default=3)
    client = cluster.client()
    for i in range(50):
        assert_ok(client.set(f"k{i}", str(i)), "write")
    leader = cluster.wait_for_leader()
    before = cluster.status(leader)
    cluster.kill(leader)
    cluster.start(leader)
    pattern = re.compile(r"recovered term (\d+), vote (\S+), (\d+) log entries")

    def recovered():
        found = pattern.findall(cluster.nodes[leader].log_text())
        return found[-1] if len(found) >= 2 else None  # the line of the second start

    line = wait_until(recovered, timing.catch_up_bound)
    assert line is not None, f"{leader} never logged what it recovered:\n{cluster.nodes[leader].log_tail()}"
    term, vote, entries = int(line[0]), line[1], int(line[2])
    assert term >= before["term"], f"{leader} recovered term {term}, but it was leader in term {before['term']}"
    assert entries >= before["last_log_index"], (
        f"{leader} recovered {entries} log entries; before the crash its log reached {before['last_log_index']}, "
        "all of it acknowledged")
    assert vote == leader, f"{leader} recovered vote {vote}; it had voted for itself to become leader"


def _leader_now(cluster, nodes):
    """The node that claims leadership in the highest term among `nodes`, from one poll."""
    best = None
    for n, s in cluster.status_all(nodes, timeout=0.1).items():
        if s and s.get("role") == "leader" and (best is None or s["term"] > best[0]):
            best = (s["term"], n)
    return best[1] if best else None


@pytest.mark.points(3)
def test_figure8_scripted(make_cluster, rng, timing):
    """The situation of the Raft paper's Figure 8, scripted with partitions and crashes.

    1. Leader A can reach only B: writes sent to A reach A and B, no majority.
    2. A crashes; C, D, E elect a leader L2, which gets writes it alone stores; L2 crashes.
    3. A restarts with B and one more node: a leader of a later term is elected and
       the cluster takes writes (A's old entries may now sit on a majority).
    4. That leader crashes; L2 restarts with the others and may win.
    5. Everything heals and restarts.
    No acknowledged write is lost and all nodes converge to the same state.

    Guards: a leader counts replicas only for entries of its own term
    (§5.4.2, pitfall 1); entries of older terms are committed only
    indirectly. A node that commits A's old entries by counting replicas in
    step 3 loses them in step 4, which the final reads catch.
    """
    cluster = make_cluster(5)  # the script names five nodes
    history = cluster.history()
    client = cluster.client(history=history)
    for i in range(5):
        client.set(f"k{i}", "base")
    a = cluster.wait_for_leader()
    b, c, d, e = rng.sample([n for n in cluster.ids if n != a], 4)

    def write_to(node, tag, count=3):
        w = cluster.client(history=history)
        for i in range(count):
            w.set(f"k{rng.randrange(5)}", f"{tag}-{i}", only=node, timeout=0.1, deadline=0.3)

    # 1. A reaches only B.
    cluster.partition([a, b], [c], [d], [e])
    write_to(a, "a-minority")
    cluster.kill(a)
    # 2. C, D, E elect a leader, which then stores writes alone.
    cluster.partition([c, d, e], [b])
    l2 = cluster.wait_for_leader(timing.leader_bound, among=[c, d, e])
    rest = [n for n in (c, d, e) if n != l2]
    cluster.partition([l2], [b], rest)
    write_to(l2, "l2-alone")
    cluster.kill(l2)
    # 3. A comes back with B and one of the others; a leader of a later term takes writes.
    cluster.start(a)
    x = rest[0]
    cluster.partition([a, b, x], [rest[1]])
    l3 = cluster.wait_for_leader(timing.leader_bound, among=[a, b, x])
    for i in range(3):
        assert_ok(client.set(f"k{i}", f"l3-{i}"), f"write with {a}, {b}, {x} up")
    # 4. That leader crashes; L2 returns and may win with the others.
    cluster.kill(l3)
    cluster.start(l2)
    cluster.partition([n for n in cluster.ids if n != l3])
    cluster.wait_for_leader(timing.leader_bound, among=[n for n in cluster.ids if n != l3])
    for i in range(3):
        assert_ok(client.set(f"k{i}", f"late-{i}"), f"write after {l2} returned")
    # 5. Heal, restart, check.
    cluster.heal()
    cluster.start(l3)
    cluster.wait_settled()
    cluster.wait_converged()
    assert history.count(op="set", outcome=OK) >= 5
    assert_acked_writes_survive(cluster.client(), history)
    _assert_same_state(cluster, history)
    assert_one_leader_per_term(cluster.observed())


@pytest.mark.points(2)
@pytest.mark.slow
def test_figure8_random(make_cluster, rng, timing):
    """Random crashes of leaders that just received writes, with few nodes up (6.5840's Figure 8 test).

    Each step sends a write straight to the current leader, then often
    crashes it right away, so its newest entries reach only some nodes;
    crashed nodes come back while at most a bare majority is up. Writers
    keep going through whatever leader exists. At the end every
    acknowledged write must read back and all nodes must hold the same state.
    """
    cluster = make_cluster(default=5, minimum=3)
    history = cluster.history()
    writers = Writers(cluster, history, writers=2, deadline=1.0).start()
    down: list[str] = []
    poker = cluster.client(history=history)
    try:
        end = time.monotonic() + 10.0
        i = 0
        while time.monotonic() < end:
            i += 1
            up = [n for n in cluster.ids if n not in down]
            leader = _leader_now(cluster, up)
            if leader is not None:
                poker.set(f"k{rng.randrange(4)}", f"poke-{i}", only=leader, timeout=0.05, deadline=0.05)
            time.sleep(rng.uniform(0.0, 0.05) if rng.random() < 0.5 else rng.uniform(0.1, 0.4))
            if leader is not None and rng.random() < 0.5:
                cluster.kill(leader)
                down.append(leader)
            if cluster.size - len(down) < cluster.majority:
                back = rng.choice(down)
                cluster.start(back)
                down.remove(back)
    finally:
        try:
            if down:
                cluster.start(down)
            cluster.wait_for_leader(timing.startup_bound)
        finally:
            writers.stop()
    cluster.wait_converged()
    assert history.count(op="set", outcome=OK) >= 10, f"too little progress: {history.summary()}"
    assert_acked_writes_survive(cluster.client(), history)
    _assert_same_state(cluster, history)
    assert_one_leader_per_term(cluster.observed())


def _assert_same_state(cluster, history):
    """Every node's state machine (local reads) holds the same value for every key."""
    reader = cluster.client()
    for key in history.keys():
        values = {}
        for n in cluster.ids:
            r = reader.get_local(key, n)
            values[n] = r.value if r.ok else f"<{r.outcome}>"
        assert len(set(values.values())) == 1, f"nodes disagree on {key!r} after converging: {values}"
