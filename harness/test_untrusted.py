"""Trust nothing from the wire: nine attacks by someone on the same host.

Each test replays one attack an outsider can mount with plain UDP sockets and
what `./client status` shows (ids, term, leader, last index), and checks that
it changes nothing: no crash, no term change, no forged entry applied, no
acknowledged write lost, reads keep working.

Two kinds of attacker:
- an outsider without the cluster key: forged peer messages carry no MAC
  (or a wrong one) and must be dropped before they are parsed;
- an insider with the key, sending from a peer's own address (the peer is
  killed first so its port is free): the node's wire and core rules must
  still refuse every number it cannot check.

These look inside the reference node's peer format, so they are marked
`reference`. The disk attacks (the ninth) are in test_damaged_state.py.
"""

from __future__ import annotations

import json
import time

import pytest

from .lib import forge
from .lib.checks import assert_ok
from .lib.client import REJECTED

pytestmark = pytest.mark.reference


def _make(make_cluster, size=3):
    cluster = make_cluster(size, proxy=False)
    leader = cluster.wait_settled()
    client = cluster.client()
    assert_ok(client.set("a", "1"), "setup write")
    cluster.wait_converged()
    return cluster, client, leader


def _key(cluster):
    return forge.read_key(cluster.path("configs", "cluster.key"))


def _cluster_id(cluster):
    with open(cluster.path("configs", "n1.json")) as f:
        return json.load(f)["cluster_id"]


def _terms(cluster):
    return {n: (s or {}).get("term") for n, s in cluster.status_all().items()}


def _assert_serving(cluster, client, what, key="a", value="1"):
    statuses = cluster.status_all()
    dead = [n for n, s in statuses.items() if s is None and n in cluster.running()]
    assert not dead, f"after {what}: {dead} stopped answering ({cluster.describe_statuses(statuses)})"
    r = client.get(key)
    assert r.ok and r.value == value, f"after {what}: linearizable get {key!r} gave {r}"
    assert_ok(client.set("after", what[:40]), f"a write after {what}")


def _drops(cluster, node):
    s = cluster.status(node) or {}
    return s.get("peer_drops", {})


def test_huge_term_does_not_wedge_the_cluster(make_cluster):
    """Attack 1: append_entries with term 2^64-1 in a peer's name; then a full restart still elects."""
    cluster, client, leader = _make(make_cluster)
    terms = _terms(cluster)
    key, cid = _key(cluster), _cluster_id(cluster)
    with forge.Sender() as s:
        for n in cluster.ids:
            peer = next(p for p in cluster.ids if p != n)
            m = forge.append_entries(peer, n, forge.U64_MAX)
            s.send(forge.plain(m), cluster.private[n])           # no MAC
            s.send(forge.seal(m, cid, key), cluster.private[n])  # valid MAC, wrong address
    time.sleep(0.3)
    assert _terms(cluster) == terms, f"a forged term was adopted: {terms} -> {_terms(cluster)}"
    _assert_serving(cluster, client, "a term of 2^64-1")
    cluster.restart(cluster.ids)
    cluster.wait_for_leader(cluster.timing.startup_bound)
    _assert_serving(cluster, client, "a full restart")


def test_insider_huge_numbers_are_dropped(make_cluster):
    """Attacks 1 and 2 from a peer's own address with the key: terms and indexes >= 2^53 are dropped."""
    cluster, client, leader = _make(make_cluster)
    follower = next(n for n in cluster.ids if n != leader)
    other = next(n for n in cluster.ids if n not in (leader, follower))
    term = cluster.status(leader)["term"]
    cluster.kill(other)
    key, cid = _key(cluster), _cluster_id(cluster)
    with forge.Sender(bind=cluster.private[other]) as s:
        s.send(forge.seal(forge.append_entries(other, follower, forge.U64_MAX), cid, key), cluster.private[follower])
        s.send(forge.seal(forge.append_entries(other, follower, forge.WIRE_MAX + 1), cid, key),
               cluster.private[follower])
        # Attack 2: a successful reply claiming a match far past the leader's log (used to SIGSEGV).
        s.send(forge.seal(forge.append_reply(other, leader, term, match=10**18), cid, key), cluster.private[leader])
        s.send(forge.seal(forge.append_reply(other, leader, term, match=forge.WIRE_MAX), cid, key),
               cluster.private[leader])
    time.sleep(0.3)
    st = cluster.status(leader)
    assert st is not None and st["role"] == "leader" and st["term"] == term, f"leader after forged replies: {st}"
    assert cluster.status(follower)["term"] == term
    drops = {n: _drops(cluster, n) for n in (leader, follower)}
    assert sum(drops[follower].values()) >= 2 and sum(drops[leader].values()) >= 2, f"drops not counted: {drops}"
    _assert_serving(cluster, client, "insider numbers beyond 2^53")
    cluster.start(other)
    cluster.wait_caught_up(other)


def test_forged_appends_apply_nothing(make_cluster):
    """Attack 3: forged append_entries in peers' names (term T+1, commit past the end) apply nothing."""
    cluster, client, leader = _make(make_cluster)
    terms = _terms(cluster)
    last = cluster.status(leader)["last_log_index"]
    term = terms[leader]
    key, cid = _key(cluster), _cluster_id(cluster)
    with forge.Sender() as s:
        for n in cluster.ids:
            for sender in (p for p in cluster.ids if p != n):
                for t in (term, term + 1):
                    m = forge.append_entries(sender, n, t, prev=(last, term),
                                             entries=[forge.command_entry(t, last + 1, "fz", "forged")],
                                             commit=last + 5)
                    s.send(forge.plain(m), cluster.private[n])
                    s.send(forge.seal(m, cid, key)[:-20] + b'0' * 18 + b'"}', cluster.private[n])  # bad MAC
                    s.send(forge.seal(m, cid, key), cluster.private[n])  # good MAC, wrong source address
    time.sleep(0.3)
    assert _terms(cluster) == terms, f"terms moved: {terms} -> {_terms(cluster)}"
    for n in cluster.ids:
        r = client.get_local("fz", n)
        assert r.ok and r.value is None, f"{n} applied a forged entry: {r}"
    drops = _drops(cluster, leader)
    assert drops.get("no_mac", 0) >= 1 and drops.get("bad_mac", 0) >= 1 and drops.get("wrong_address", 0) >= 1, (
        f"each kind of forgery must be counted: {drops}")
    _assert_serving(cluster, client, "forged appends")


def test_forged_acks_do_not_commit(make_cluster):
    """Attack 4: with both followers down, forged acks must not make the leader acknowledge a write."""
    cluster, client, leader = _make(make_cluster)
    followers = [n for n in cluster.ids if n != leader]
    term = cluster.status(leader)["term"]
    last = cluster.status(leader)["last_log_index"]
    cluster.kill(followers)
    writer = cluster.client(request_timeout=0.3, deadline=1.5)
    with forge.Sender() as s:
        import threading
        stop = threading.Event()

        def ack_everything():
            while not stop.is_set():
                for f in followers:
                    for match in range(last, last + 4):
                        s.send(forge.plain(forge.append_reply(f, leader, term, match=match)), cluster.private[leader])
                time.sleep(0.005)

        t = threading.Thread(target=ack_everything, daemon=True)
        t.start()
        try:
            r = writer.set("lost", "acked-without-majority")
        finally:
            stop.set()
            t.join(2)
    assert not r.ok, f"the leader acknowledged a write no follower has: {r}"
    cluster.kill(leader)
    cluster.start(followers)
    cluster.wait_for_leader(cluster.timing.startup_bound, among=followers)
    cluster.start(leader)
    r = client.get("lost")
    assert r.ok, f"get after failover: {r}"


def test_future_read_round_does_not_stop_reads(make_cluster):
    """Attack 5: read_round 2^64-1 to each follower, and an in-range future round as an insider."""
    cluster, client, leader = _make(make_cluster)
    term = cluster.status(leader)["term"]
    key, cid = _key(cluster), _cluster_id(cluster)
    followers = [n for n in cluster.ids if n != leader]
    with forge.Sender() as s:
        for f in followers:
            m = forge.append_entries(leader, f, term, read_round=forge.U64_MAX)
            s.send(forge.plain(m), cluster.private[f])
            s.send(forge.seal(m, cid, key), cluster.private[f])
    insider = followers[1]
    cluster.kill(insider)
    with forge.Sender(bind=cluster.private[insider]) as s:
        for _ in range(5):
            s.send(forge.seal(forge.append_reply(insider, leader, term, match=0, read_round=2**52), cid, key),
                   cluster.private[leader])
    time.sleep(0.2)
    assert _drops(cluster, leader).get("future_read_round", 0) >= 1, _drops(cluster, leader)
    for i in range(20):
        r = client.get("a")
        assert r.ok and r.value == "1", f"read {i} after forged read rounds: {r}"
    _assert_serving(cluster, client, "forged read rounds")
    cluster.start(insider)


def test_unsent_match_index_does_not_starve_a_follower(make_cluster):
    """Attack 6: a reply claiming a match beyond what the leader sent; the follower must still catch up."""
    cluster, client, leader = _make(make_cluster)
    victim = next(n for n in cluster.ids if n != leader)
    term = cluster.status(leader)["term"]
    cluster.kill(victim)
    for i in range(5):
        assert_ok(client.set(f"k{i}", str(i)), "write while the victim is down")
    last = cluster.status(leader)["last_log_index"]
    key, cid = _key(cluster), _cluster_id(cluster)
    # Only a claim beyond what the leader sent can be told from a real ack;
    # a key holder claiming exactly what was sent is a Byzantine peer, which
    # Raft does not survive (nor claim to).
    with forge.Sender(bind=cluster.private[victim]) as s:
        s.send(forge.seal(forge.append_reply(victim, leader, term, match=last + 3), cid, key),
               cluster.private[leader])
    time.sleep(0.1)
    assert _drops(cluster, leader).get("unsent_match", 0) >= 1, _drops(cluster, leader)
    cluster.start(victim)
    st = cluster.wait_caught_up(victim)
    assert st["last_log_index"] >= last, f"{victim} never received the entries it missed: {st}"
    r = client.get_local("k4", victim)
    assert r.ok and r.value == "4", f"{victim} after catching up: {r}"


def test_entries_with_decreasing_terms_are_refused(make_cluster):
    """Attack 7: entries below the log's last term (or above the message's) are dropped; the node restarts."""
    cluster, client, leader = _make(make_cluster)
    victim = next(n for n in cluster.ids if n != leader)
    sender = next(n for n in cluster.ids if n not in (leader, victim))
    st = cluster.status(victim)
    term, last = st["term"], st["last_log_index"]
    cluster.kill(sender)
    key, cid = _key(cluster), _cluster_id(cluster)
    bad = [
        forge.append_entries(sender, victim, term, prev=(last, term),
                             entries=[forge.command_entry(term - 1, last + 1, "dz", "decreasing")]),
        forge.append_entries(sender, victim, term, prev=(last, term),
                             entries=[forge.command_entry(term + 5, last + 1, "dz", "future")]),
        forge.append_entries(sender, victim, term, prev=(last, term),
                             entries=[forge.command_entry(term, last + 1, "dz", "a"),
                                      forge.command_entry(term - 1, last + 2, "dz", "b")]),
    ]
    with forge.Sender(bind=cluster.private[sender]) as s:
        for m in bad:
            s.send(forge.seal(m, cid, key), cluster.private[victim])
    time.sleep(0.2)
    after = cluster.status(victim)
    assert after["last_log_index"] == last, f"{victim} appended a forged entry: {st} -> {after}"
    cluster.start(sender)
    cluster.restart(victim)
    cluster.wait_caught_up(victim)
    _assert_serving(cluster, client, "entries with bad terms")


def test_huge_seq_cannot_poison_a_client_id(make_cluster):
    """Attack 8: seq 2^64-1 (or 2^40) for a client id is refused; the id keeps working."""
    cluster, client, leader = _make(make_cluster)
    victim = cluster.client()
    for seq in (forge.U64_MAX, forge.WIRE_MAX + 1, 2**40):
        msg = {"type": "client_request", "src": victim.client_id, "dest": leader, "seq": seq, "op": "set",
               "key": "p", "value": "poison"}
        victim.send_raw(leader, json.dumps(msg).encode())
        reply = victim.receive_raw(1.0)
        assert isinstance(reply, dict) and reply.get("error") == "bad_request", f"seq {seq}: {reply}"
        assert reply.get("seq", 0) <= forge.WIRE_MAX, f"the answer itself carries an out-of-range seq: {reply}"
    r = victim.set("p", "fine")
    assert r.ok, f"the client id was poisoned: {r}"
    r = client.get("p")
    assert r.ok and r.value == "fine", r


def test_short_fuzz_campaign_under_load(make_cluster, rng):
    """20,000 hostile datagrams of every kind (harness/lib/fuzz.py) while clients write and read.

    The full campaign (1,000,000 datagrams) is `python3 harness/fuzz_campaign.py`.
    """
    from .lib import fuzz
    cluster = make_cluster(3, proxy=False)
    figures = fuzz.run(cluster, 20000, rng.randrange(1, 10**6), max_seconds=30)
    assert figures.ok(), figures.summary()
    assert figures.datagrams == 20000 and figures.writes_acked > 0, figures.summary()
    drops = figures.peer_drops
    for reason in ("no_mac", "bad_mac", "malformed", "wrong_address"):
        assert sum(d.get(reason, 0) for d in drops.values()) > 0, f"no {reason} drops counted:\n{figures.summary()}"
