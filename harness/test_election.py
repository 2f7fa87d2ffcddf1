"""Leader election (Raft §5.2) and Election Safety.

What these tests prove, seen only from outside (statuses and client replies):
a leader appears and stays while the network is good; there is never more
than one leader in a term; nothing is decided without a majority; and a node
that was cut off for a long time rejoins without wrecking the cluster.
"""

import json
import socket
import time

import pytest

from .lib import forge
from .lib.checks import assert_not_acked, assert_ok, assert_one_leader_per_term


def test_initial_election(make_cluster, timing):
    """A fresh cluster elects one leader that every node follows, and keeps it.

    Guards: elections happen at all (timers, request_vote, vote counting);
    followers learn the leader from its append_entries; heartbeats sent every
    50 ms keep followers (election timeout >= 150 ms) from starting elections
    in a healthy cluster.
    """
    cluster = make_cluster(default=3)
    leader = cluster.wait_for_leader()
    statuses = cluster.wait_for(
        f"every node reports {leader} as leader",
        lambda st: all(s is not None and s.get("leader") == leader for s in st.values()),
        timing.leader_bound)
    term = statuses[leader]["term"]

    time.sleep(10 * timing.election_max)  # ten election timeouts of quiet
    later = cluster.status_all()
    changed = {n: s for n, s in later.items() if s is None or s.get("term") != term or s.get("leader") != leader}
    assert not changed, (f"leadership changed in a healthy, idle cluster (was {leader} in term {term}): "
                         f"{cluster.describe_statuses(later)}")


@pytest.mark.points(2)
def test_at_most_one_leader_per_term(make_cluster, rng, timing):
    """Election Safety: in no term do two nodes report being leader.

    The leader is frozen (SIGSTOP) several times so that new elections take
    place while the old leader still believes it leads; statuses are polled
    throughout. Guards: one vote per term (§5.2), votes counted only for the
    current term, and a leader that steps down on seeing a higher term.
    """
    cluster = make_cluster(default=5, minimum=3)
    for _ in range(3):
        leader = cluster.wait_for_leader()
        cluster.pause(leader)
        end = time.monotonic() + rng.uniform(0.6, 1.0)
        while time.monotonic() < end:
            cluster.status_all(timeout=0.05)
        new = cluster.wait_for_leader(among=[n for n in cluster.ids if n != leader])
        assert new != leader
        cluster.resume(leader)  # the old leader wakes up in an old term
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            cluster.status_all(timeout=0.05)
    cluster.wait_for_leader()
    by_term = cluster.leaders_by_term()
    assert len(by_term) >= 4, f"expected a leader in at least 4 terms, saw {by_term}"
    assert_one_leader_per_term(cluster.observed())


@pytest.mark.points(2)
@pytest.mark.parametrize("how", ["crashed", "isolated"])
def test_no_progress_without_majority(make_cluster, rng, timing, how):
    """With no majority able to talk, nothing commits; with the majority back, it does.

    crashed:  a majority of the nodes is killed; a minority stays up together.
    isolated: all nodes run, but the minority is one group and every other
              node is cut off alone, so no group holds a majority.

    Guards: a leader needs votes from a majority (§5.2) and an entry is
    committed only once a majority stores it (§5.3). A write is never
    acknowledged and no node's commit_index grows, whatever the nodes believe
    about leadership.
    """
    cluster = make_cluster(default=5, minimum=3)
    client = cluster.client()
    assert_ok(client.set("before", "1"), "write with every node up")
    leader = cluster.wait_for_leader()
    # A minority stays together; half the time the current leader is in it.
    minority = cluster.size - cluster.majority
    others = [n for n in cluster.ids if n != leader]
    if rng.random() < 0.5:
        group = rng.sample(others, minority - 1) + [leader]
    else:
        group = rng.sample(others, minority)
    rest = [n for n in cluster.ids if n not in group]
    # Everything committed so far is known everywhere: nothing may commit from now on.
    committed = next(iter(cluster.wait_converged().values()))["commit_index"]
    if how == "crashed":
        cluster.kill(rest)
        watched = group
    else:
        cluster.partition(group, *[[n] for n in rest])
        watched = cluster.ids

    assert_not_acked(client.set("during", "x", deadline=1.5), f"write with only {group} together")
    end = time.monotonic() + 2.0  # ~7 election timeouts
    while time.monotonic() < end:
        for n, s in cluster.status_all(watched, timeout=0.1).items():
            if s is not None:
                assert s["commit_index"] <= committed, (
                    f"{n} committed without a majority: commit_index {committed} -> {s['commit_index']} "
                    f"({how}: only {group} together)")
        time.sleep(0.05)

    if how == "crashed":
        cluster.start(rest)
    else:
        cluster.heal()
    cluster.wait_for_leader(timing.startup_bound)
    assert_ok(client.set("after", "2"), "write once the majority is back")
    r = client.get("before")
    assert r.ok and r.value == "1", f"a write from before the outage: {r}"


def _isolate_follower_for(cluster, rng, seconds: float):
    """Isolate a follower for `seconds` while the majority keeps writing; return (node, term before)."""
    leader = cluster.wait_for_leader()
    follower = rng.choice([n for n in cluster.ids if n != leader])
    term_before = cluster.status(leader)["term"]
    client = cluster.client(nodes=[n for n in cluster.ids if n != follower])
    cluster.isolate(follower)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        client.set(f"k{i % 5}", f"v{i}", deadline=1.0)
        time.sleep(0.02)
    cluster.heal()
    return follower, term_before


def test_isolated_node_rejoins(make_cluster, rng, timing):
    """A follower cut off for 3 s (10 election timeouts) rejoins: one leader, and it catches up.

    Guards: a node whose elections kept failing while it was alone must not
    leave the cluster leaderless or with two leaders after healing (§5.1: a
    higher term makes a leader step down; the up-to-date check of §5.4.1
    keeps the stale node from winning), and it must receive what it missed.
    """
    cluster = make_cluster(default=3)
    follower, _ = _isolate_follower_for(cluster, rng, 3.0)
    cluster.wait_settled()
    cluster.wait_converged()
    assert_ok(cluster.client().set("after-heal", "1"), "write after healing")
    assert_one_leader_per_term(cluster.observed())


@pytest.mark.reference
def test_isolated_node_does_not_inflate_term(make_cluster, rng, timing):
    """The reference node campaigns with pre-vote (§9.6): an isolated node does not bump its term,
    so on rejoining it does not depose the healthy leader.

    Reference-only: PROTOCOL.md does not require pre-vote, and a node without
    it legitimately comes back with a much higher term.
    """
    cluster = make_cluster(default=3)
    follower, term_before = _isolate_follower_for(cluster, rng, 3.0)
    isolated_term = cluster.status(follower)["term"]
    assert isolated_term <= term_before + 2, (
        f"{follower} went from term {term_before} to {isolated_term} while isolated: no pre-vote?")
    cluster.wait_converged()
    leader = cluster.wait_for_leader()
    term_after = cluster.status(leader)["term"]
    assert term_after <= term_before + 2, (
        f"the cluster's term went from {term_before} to {term_after} after {follower} rejoined")


def _vote_reply(sock: socket.socket, term: int, timeout: float):
    """The first request_vote_reply (not a pre-vote) for `term` arriving on sock, or None."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            return None
        try:
            m = json.loads(data)
        except ValueError:
            continue
        if (isinstance(m, dict) and m.get("type") == "request_vote_reply" and not m.get("pre_vote")
                and m.get("term") == term):
            return m


@pytest.mark.reference
@pytest.mark.points(2)
def test_one_vote_per_term(make_cluster, timing):
    """A node grants at most one vote per term: asked by two candidates of the same term, it
    refuses the second.

    Two of three nodes are killed; the survivor, no longer hearing a leader,
    receives request_vote for term T+1 from each dead node's address in turn
    (candidate logs as up to date as its own). It must grant the first and
    refuse the second. Guards: Figure 2, RequestVote - grant only "if votedFor
    is null or candidateId"; two votes in one term let two candidates both win
    it (Election Safety, §5.2). Reference-only: it forges peer messages in
    the reference node's sealed format (PROTOCOL.md, "Peer authentication").
    """
    cluster = make_cluster(default=3, minimum=3, proxy=False)
    leader = cluster.wait_settled()
    voter = next(n for n in cluster.ids if n != leader)
    first, second = [n for n in cluster.ids if n != voter]
    cluster.kill([first, second])
    # Past the leader lease (a node that heard a leader within election_min ignores votes).
    time.sleep(2 * timing.election_max)
    st = cluster.status(voter)
    assert st is not None, f"{voter} does not answer status"
    term = st["term"] + 1
    last = (st["last_log_index"] + 10, st["term"])  # at least as up to date as the voter's log
    with open(cluster.path("configs", f"{voter}.json")) as f:
        cluster_id = json.load(f)["cluster_id"]
    key = forge.read_key(cluster.path("configs", "cluster.key"))
    replies = {}
    with forge.Sender(bind=cluster.private[first]) as a, forge.Sender(bind=cluster.private[second]) as b:
        for candidate, sender in ((first, a), (second, b)):
            sender.send(forge.seal(forge.request_vote(candidate, voter, term, last=last), cluster_id, key),
                        cluster.private[voter])
            replies[candidate] = _vote_reply(sender.sock, term, 1.0)
    cluster.note(f"{voter}'s replies in term {term}: {replies}")
    assert replies[first] is not None and replies[first].get("vote_granted") is True, (
        f"{voter} did not grant its vote in term {term} to the first candidate {first}: {replies[first]} "
        "(the test needs a first vote to be granted)")
    assert replies[second] is not None, f"{voter} never answered the second candidate {second} in term {term}"
    assert replies[second].get("vote_granted") is not True, (
        f"{voter} voted twice in term {term}: for {first}, then for {second} (one vote per term, Figure 2)")
