"""Log replication (Raft §5.3): agreement, fault tolerance, catch-up and repair.

The Log Matching and State Machine Safety properties, seen from outside:
every node ends up applying the same commands in the same order, a cluster
of N nodes keeps serving with up to (N-1)/2 of them down and stops (without
lying) with more down, and a node that fell behind or holds entries that
were never committed is brought in line with the leader.
"""

import threading
import time

import pytest

from .lib.checks import (assert_acked_writes_survive, assert_not_acked, assert_ok,
                         assert_registers_linearizable)
from .lib.client import OK
from .lib.workload import fill


def test_agreement(make_cluster, timing):
    """After a burst of writes every node applies the same entries and holds the same values.

    Guards: followers append what the leader sends and apply entries up to the
    leader's commit index (§5.3); local reads at each node show its own
    state machine, which must match the others'.
    """
    cluster = make_cluster(default=3)
    history = fill(cluster, 200, clients=4)
    acked = {o.key: o.value for o in history.acked_writes()}
    assert len(acked) == 200, f"every write in a healthy cluster must succeed: {history.summary()}"
    statuses = cluster.wait_converged(at_least=200)
    applied = next(iter(statuses.values()))["last_applied"]
    cluster.note(f"all nodes applied up to {applied}")
    reader = cluster.client()
    sample = sorted(acked)[::20]
    for node in cluster.ids:
        for key in sample:
            r = reader.get_local(key, node)
            assert_ok(r, f"local read of {key} at {node}")
            assert r.value == acked[key], f"{node} holds {r.value!r} for {key}, the cluster acknowledged {acked[key]!r}"


@pytest.mark.points(2)
@pytest.mark.parametrize("size", [3, 5, 7])
def test_tolerates_minority_failures(make_cluster, rng, timing, size):
    """N nodes serve with (N-1)/2 down; with one more down no write is acknowledged
    and no read returns a wrong value; service resumes when a node returns.

    Guards: commitment needs a majority of matchIndex (§5.3) - not more (the
    cluster must keep going) and not less (it must stop rather than lie).
    """
    cluster = make_cluster(size)
    history = cluster.history()
    client = cluster.client(history=history)
    assert_ok(client.set("x", "0"), "write with every node up")

    f = (size - 1) // 2
    down = rng.sample(cluster.ids, f)
    cluster.kill(down)
    cluster.wait_for_leader(timing.leader_bound)
    for i in range(1, 11):
        assert_ok(client.set("x", str(i)), f"write with {f} of {size} nodes down")

    one_more = rng.choice([n for n in cluster.ids if n not in down])
    cluster.kill(one_more)
    down.append(one_more)
    for i in range(11, 14):
        assert_not_acked(client.set("x", str(i), deadline=1.0), f"write with {len(down)} of {size} nodes down")
    client.get("x", deadline=1.0)  # if answered at all, it must be right (the history check below)

    back = rng.choice(down)
    cluster.start(back)
    down.remove(back)
    resumed = client.set("x", "resumed", deadline=timing.startup_bound + timing.deadline)
    assert_ok(resumed, f"write after {back} came back ({len(down)} of {size} down)")
    cluster.start(down)
    assert_acked_writes_survive(client, history)


def test_lagging_node_catches_up(make_cluster, rng, timing):
    """A follower that was down while ~1,000 entries were committed catches up within seconds.

    Guards: the leader backs nextIndex up until the logs match and then ships
    entries in batches (§5.3); a follower restarted from disk resumes from
    its own log instead of starting over.
    """
    cluster = make_cluster(default=3)
    leader = cluster.wait_for_leader()
    lagging = rng.choice([n for n in cluster.ids if n != leader])
    cluster.kill(lagging)
    started = time.monotonic()
    history = fill(cluster, 1000, clients=8)
    cluster.note(f"1,000 writes took {time.monotonic() - started:.1f} s ({history.summary()})")
    assert history.count(outcome=OK) == 1000, f"writes failed in a 2-of-3 cluster: {history.summary()}"

    leader = cluster.wait_for_leader()
    target = cluster.status(leader)["commit_index"]
    cluster.start(lagging)
    restarted = time.monotonic()
    cluster.wait_for(f"{lagging} applying up to {target}",
                     lambda st: st[lagging] is not None and st[lagging]["last_applied"] >= target,
                     timing.catch_up_bound, nodes=[lagging])
    cluster.note(f"{lagging} caught up {target} entries in {time.monotonic() - restarted:.2f} s")
    reader = cluster.client()
    for o in history.acked_writes()[::100]:
        r = reader.get_local(o.key, lagging)
        assert r.ok and r.value == o.value, f"{lagging} after catching up: {o.key} -> {r}, expected {o.value!r}"


def test_divergent_entries_are_repaired(make_cluster, timing):
    """Entries that only an isolated leader stored are overwritten by the new leader's.

    The leader is cut off from all other nodes and immediately given writes:
    it appends them but can never commit them. The others elect a leader and
    commit different entries at the same indexes. After healing, the old
    leader's log must be truncated at the first conflict and replaced.

    Guards: the append_entries consistency check and the deletion of
    conflicting entries (§5.3), never applying an uncommitted entry.
    """
    cluster = make_cluster(default=5, minimum=3)
    history = cluster.history()
    client = cluster.client(history=history)
    for i in range(5):
        assert_ok(client.set(f"k{i}", "base"), "write before the partition")
    old = cluster.wait_for_leader()
    cluster.wait_caught_up(old)
    before = cluster.status(old)
    others = [n for n in cluster.ids if n != old]
    cluster.isolate(old)

    # Writes only the old leader hears about: appended, never committed.
    def doomed(i):
        c = cluster.client(history=history)
        c.set(f"k{i}", "doomed", only=old, timeout=0.2, deadline=0.6)
        c.set(f"only-old-{i}", "doomed", only=old, timeout=0.2, deadline=0.6)
    threads = [threading.Thread(target=doomed, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    diverged = cluster.status(old)
    for t in threads:
        t.join()
    assert diverged["last_log_index"] > before["last_log_index"], (
        f"the isolated leader {old} did not append the writes sent to it (log {before['last_log_index']} -> "
        f"{diverged['last_log_index']}); the test could not create divergent entries")
    assert not any(o.outcome == OK for o in history.ops if o.value == "doomed"), \
        "an isolated leader acknowledged a write it could not commit"

    cluster.wait_for_leader(timing.leader_bound, among=others)
    majority_client = cluster.client(nodes=others, history=history)
    for i in range(5):
        assert_ok(majority_client.set(f"k{i}", f"kept{i}"), "write in the majority")
    for i in range(20):
        assert_ok(majority_client.set(f"fill{i}", "x"), "write in the majority")
    cluster.heal()
    cluster.wait_settled()
    cluster.wait_converged()
    reader = cluster.client()
    for node in cluster.ids:
        for i in range(5):
            r = reader.get_local(f"k{i}", node)
            assert r.ok and r.value == f"kept{i}", f"{node}: k{i} = {r}, expected 'kept{i}'"
            r = reader.get_local(f"only-old-{i}", node)
            assert r.ok and r.value is None, f"{node} applied an entry that was never committed: {r}"
    assert_registers_linearizable(history)
    assert_acked_writes_survive(majority_client, history)


@pytest.mark.points(2)
def test_commit_index_never_decreases(make_cluster, rng, timing):
    """A follower's commit index never goes backwards, even when the leader knows less about it.

    The follower's replies to the leader are cut, while the leader's appends
    still reach it: it learns a high commit index from them, but the leader
    still believes it matches only what it acknowledged before the cut. Then
    linearizable gets make the leader send confirming heartbeats, which prove
    only that older match. The follower's commit_index (status) must stay
    where it was. Guards: Figure 2 - commitIndex only increases (what is
    committed stays committed, §5.4); the min(leaderCommit, last new entry)
    rule caps how far a message may raise it, it never lowers it.
    """
    cluster = make_cluster(default=3, minimum=3)
    client = cluster.client()
    assert_ok(client.set("x", "0"), "first write")
    leader = cluster.wait_settled()
    follower = rng.choice([n for n in cluster.ids if n != leader])
    cluster.wait_caught_up(follower)
    cluster.block(follower, leader)
    for i in range(20):
        assert_ok(client.set(f"k{i}", str(i)), f"write {i} while {follower}'s replies are lost")
    target = cluster.status(leader)["commit_index"]
    high = cluster.wait_for(f"{follower} learning commit index {target} from the leader's appends",
                            lambda st: st[follower] is not None and st[follower]["commit_index"] >= target,
                            timing.catch_up_bound, nodes=[follower])[follower]["commit_index"]
    lowest = high
    end = time.monotonic() + 2.0
    for _ in range(40):
        if time.monotonic() >= end:
            break
        assert_ok(client.get("x"), "linearizable get")
        st = cluster.status(follower)
        if st is not None:
            lowest = min(lowest, st["commit_index"])
    cluster.heal()
    assert lowest >= high, (
        f"{follower}'s commit_index went backwards from {high} to {lowest} (an append_entries proving a shorter "
        f"match must not lower what it already knew was committed)")
    cluster.wait_converged()
