"""Crashing or pausing the leader (SIGKILL, SIGSTOP): failover, catch-up, no lost writes, no stale reads.

A crash is the common case Raft is built for: the leader disappears without
a word, the followers notice the missing heartbeats, one of them wins an
election, and clients carry on at the new leader. The old leader, restarted
from its own disk, must come back as a follower and catch up. A paused
leader (SIGSTOP: a long GC, swapping, a stopped VM) is worse: when it
resumes it still believes it leads, with requests waiting in its socket.
"""

import threading
import time

import pytest

from .lib.checks import assert_acked_writes_survive, assert_ok, assert_one_leader_per_term
from .lib.workload import Writers


@pytest.mark.points(2)
def test_new_leader_after_leader_crash(make_cluster, timing):
    """After the leader is killed, a new one is elected within 10 election timeouts
    and writes work again; nothing acknowledged before the crash is lost.

    Guards: election timeouts fire when heartbeats stop (§5.2); the new leader
    has every committed entry (Leader Completeness, §5.4: votes go only to
    candidates whose log is at least as up to date).
    """
    cluster = make_cluster(default=3)
    history = cluster.history()
    client = cluster.client(history=history)
    for i in range(20):
        assert_ok(client.set(f"k{i}", f"v{i}"), "write before the crash")
    old = cluster.wait_for_leader()
    cluster.kill(old)
    crashed_at = time.monotonic()
    new = cluster.wait_for_leader(timing.leader_bound)
    took = time.monotonic() - crashed_at
    assert new != old
    cluster.note(f"new leader {new} after {took:.2f} s")
    assert_ok(client.set("after", "crash"), "write after failover")
    assert_acked_writes_survive(client, history)


def test_old_leader_rejoins_as_follower_and_catches_up(make_cluster, timing):
    """The crashed leader, restarted, follows the new leader and applies what it missed.

    Guards: a restarted node recovers its term and log from disk, accepts the
    higher term of the new leader (§5.1), and is brought up to date by the
    leader's consistency check and nextIndex backtracking (§5.3).
    """
    cluster = make_cluster(default=3)
    client = cluster.client()
    old = cluster.wait_for_leader()
    cluster.kill(old)
    new = cluster.wait_for_leader(timing.leader_bound)
    for i in range(50):
        assert_ok(client.set(f"k{i}", f"v{i}"), "write while the old leader is down")
    target = cluster.status(new)["commit_index"]
    cluster.start(old)
    statuses = cluster.wait_for(
        f"{old} following {new} with last_applied >= {target}",
        lambda st: st[old] is not None and st[old]["role"] == "follower" and st[old]["leader"] == new
        and st[old]["last_applied"] >= target, timing.catch_up_bound, nodes=[old])
    assert statuses[old]["commit_index"] >= target
    # Its state machine has the writes it missed (local reads are served by it alone).
    for i in (0, 25, 49):
        r = client.get_local(f"k{i}", old)
        assert_ok(r, f"local read at {old}")
        assert r.value == f"v{i}", f"{old} applied a different value for k{i}: {r}"


@pytest.mark.points(2)
def test_repeated_leader_crashes(make_cluster, rng, timing):
    """Three rounds of: kill the leader under load, elect another, restart the old one.
    No acknowledged write is lost; reads never go back in time.

    Guards: durability of term, vote and log across crashes (§5.4, Figure 2
    "persistent state"), and exactly-once retries across leader changes: the
    writers retry timed-out writes with the same seq at the new leader.
    """
    cluster = make_cluster(default=3)
    history = cluster.history()
    writers = Writers(cluster, history, writers=3).start()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 0.8))
            leader = cluster.wait_for_leader()
            cluster.kill(leader)
            cluster.wait_for_leader(timing.leader_bound)
            time.sleep(rng.uniform(0.2, 0.6))
            cluster.start(leader)
            cluster.wait_caught_up(leader)
    finally:
        writers.stop()
    assert writers.acked() >= 30, f"too little progress under leader crashes: {history.summary()}"
    assert_acked_writes_survive(cluster.client(), history)
    assert_one_leader_per_term(cluster.observed())


@pytest.mark.points(3)
def test_paused_leader_serves_no_stale_read(make_cluster, rng, timing):
    """Jepsen's pause nemesis: a linearizable get queued at a paused leader must not return the
    value that a newer leader replaced while it was stopped.

    Each of 3 rounds: SIGSTOP the leader; the others elect a new leader and
    commit x = new; only then send the stopped node a get of x (it waits in
    its socket); SIGCONT it. Its answer must be an error, or new: the get was
    sent after new was acknowledged, so old is a stale read. While it is
    stopped the links from the others into it are cut (a slow network), so no
    message of the new term is in its socket ahead of the get: a node that
    answers the get from its own state, without confirming its leadership,
    is caught in every round, whatever its check-quorum does. The timings
    vary per round (how many writes, when the get is sent, when it resumes).

    Guards: §8 - a leader confirms with a majority (ReadIndex) before it
    answers a read, because it may have been deposed without knowing it.
    """
    cluster = make_cluster(default=3, minimum=3)
    writer = cluster.client()
    stale = []
    for round_no in range(3):
        key, before, after = f"x{round_no}", f"old-{round_no}", f"new-{round_no}"
        assert_ok(writer.set(key, before), f"round {round_no}: write before the pause")
        old = cluster.wait_settled()
        cluster.wait_converged()
        others = [n for n in cluster.ids if n != old]
        reader = cluster.client()
        budget = timing.catch_up_bound
        answers = []
        # One datagram (timeout = deadline): the get waits in the stopped node's socket.
        ask = threading.Thread(target=lambda: answers.append(
            reader.get(key, only=old, timeout=budget, deadline=budget)), daemon=True)
        cluster.pause(old)
        try:
            for n in others:
                cluster.block(n, old)
            cluster.wait_for_leader(timing.leader_bound, among=others)
            majority_client = cluster.client(nodes=others)
            for i in range(rng.randint(1, 3)):
                assert_ok(majority_client.set(key, after), f"round {round_no}: write {i} while {old} is paused")
            majority_client.close()
            time.sleep(rng.uniform(0.0, 2 * timing.heartbeat_ms / 1000.0))
            ask.start()
            time.sleep(rng.uniform(0.05, 0.05 + 2 * timing.heartbeat_ms / 1000.0))
        finally:
            cluster.resume(old)
        ask.join(budget + 5.0)
        reader.close()
        cluster.heal()
        assert not ask.is_alive() and answers, f"round {round_no}: the get sent to {old} never returned"
        r = answers[0]
        cluster.note(f"round {round_no}: get {key} at the resumed {old}: {r}")
        if r.ok and r.value != after:
            stale.append(f"round {round_no}: {old} answered {key} = {r.value!r} after {after!r} was acknowledged")
    assert not stale, ("stale read from the paused old leader (it answered a linearizable get without "
                       "confirming it still leads): " + "; ".join(stale))
    writer.close()
