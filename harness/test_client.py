"""The client interface of PROTOCOL.md: redirects, exactly-once, cas, delete, local reads, seq rules.

These tests talk to nodes the way any client would, one datagram at a time
where it matters, and check the replies field by field.
"""

import json
import time

import pytest

from .lib.checks import assert_ok
from .lib.client import CAS_FAILED, OK


def _raw_request(client, node, seq, op, key, **fields):
    """Send one client_request with an explicit seq to `node`; return (message, reply or None)."""
    msg = {"type": "client_request", "src": client.client_id, "dest": node, "seq": seq, "op": op, "key": key}
    msg.update(fields)
    return msg, client.resend(msg, node, timeout=1.0)


def test_every_node_answers_or_redirects(make_cluster, timing):
    """A request sent to any node is answered by that node: by the leader with the
    result; by a follower either with not_leader naming the leader, or with
    the result it got by forwarding the request to the leader (PROTOCOL.md
    v1.1, "Clarifications of v1": both are allowed). A client that follows
    the hint gets its answer from the leader.

    Guards: PROTOCOL.md's redirect rule ("leader: the id of the leader this
    node last heard of"), learned from the leader's heartbeats.
    """
    cluster = make_cluster(default=3)
    leader = cluster.wait_settled()
    raw = cluster.client()
    for i, node in enumerate(cluster.ids, start=1):
        _, reply = _raw_request(raw, node, i, "set", f"via-{node}", value=node)
        assert reply is not None, f"{node} did not answer a client_request within 1 s"
        assert reply.get("type") == "client_reply" and reply.get("seq") == i, f"{node} answered {reply}"
        assert reply.get("src") in (None, node), f"{node} was asked, but {reply.get('src')} answered: {reply}"
        if node == leader:
            assert reply.get("ok") is True and reply.get("value") == node, f"the leader {node} answered {reply}"
        elif reply.get("ok") is True:  # the follower forwarded the write to the leader and relayed the result
            assert reply.get("value") == node, f"follower {node} relayed a wrong result: {reply}"
        else:
            assert reply.get("ok") is False and reply.get("error") == "not_leader", f"follower {node}: {reply}"
            assert reply.get("leader") == leader, f"follower {node} should name the leader {leader}: {reply}"
    for node in cluster.ids:
        client = cluster.client()
        r = client.set(f"redirected-{node}", "1", node=node)
        assert_ok(r, f"request starting at {node}")
        assert r.node in (leader, node), (
            f"the answer came from {r.node}, neither the leader {leader} nor {node}, which was asked: {r}")


@pytest.mark.points(2)
def test_exactly_once_with_duplicated_datagrams(make_cluster, timing):
    """Every datagram between clients and nodes is delivered twice; a counter
    incremented K times with cas ends at exactly K, and duplicate replies agree.

    Guards: exactly-once sessions (§8, PROTOCOL.md): a duplicated request is
    recognised by (client id, seq) and answered from the session, not
    applied again. Without them, a duplicated cas applies twice and answers
    cas_failed to a client whose increment did happen, which then increments again.
    """
    cluster = make_cluster(default=3)
    cluster.set_link("client", "*", duplicate=1.0, delay_ms=3, jitter_ms=3)
    cluster.set_link("*", "client", duplicate=1.0, delay_ms=3, jitter_ms=3)
    client = cluster.client()
    K = 25
    assert_ok(client.set("counter", "0"), "initialising the counter")
    done = 0
    attempts = 0
    while done < K and attempts < 4 * K:
        attempts += 1
        current = client.get("counter")
        assert_ok(current, "reading the counter")
        r = client.cas("counter", current.value, str(int(current.value) + 1))
        if r.outcome == OK:
            done += 1
        elif r.outcome != CAS_FAILED:
            # Unknown outcome: find out from the counter itself (one client, so no one else changes it).
            check = client.get("counter")
            assert_ok(check, "re-reading the counter")
            if check.value == str(int(current.value) + 1):
                done += 1
    assert done == K, f"only {done} of {K} increments got through in {attempts} attempts"
    final = client.get("counter")
    assert_ok(final, "final read")
    assert final.value == str(K), f"counter is {final.value} after {K} increments: some were applied twice"
    assert not client.reply_mismatches, f"replies to the same seq differ: {client.reply_mismatches[:3]}"
    stats = cluster.link_stats()
    dup = sum(s.get("duplicated", 0) for link, s in stats.items() if link.startswith("client>"))
    assert dup >= K, f"the proxy duplicated only {dup} client datagrams: {stats}"


@pytest.mark.points(2)
def test_retried_seq_applies_once_with_identical_reply(make_cluster, timing):
    """The same request (same client id and seq) sent twice has one effect and gets the same reply.

    Retrying a set after another client overwrote the key must not overwrite
    it again; retrying a cas that succeeded must answer ok again, not
    cas_failed. Guards: the session table of §8 lives in the replicated
    state machine and caches the reply to each client's last command.
    """
    cluster = make_cluster(default=3)
    leader = cluster.wait_settled()
    me, other = cluster.client(), cluster.client()

    set_msg, first = _raw_request(me, leader, 1, "set", "k", value="mine")
    assert first and first.get("ok") is True, f"first set: {first}"
    assert_ok(other.set("k", "theirs"), "the other client's set")
    again = me.resend(set_msg, leader, timeout=1.0)
    assert again is not None, "no reply to the retried set"
    assert _decisive(again) == _decisive(first), f"retry answered {again}, first answer was {first}"
    r = other.get("k")
    assert r.ok and r.value == "theirs", f"the retried set was applied again: k = {r.value!r}"

    cas_msg, first = _raw_request(me, leader, 2, "cas", "k", expected="theirs", value="swapped")
    assert first and first.get("ok") is True and first.get("value") == "swapped", f"cas: {first}"
    again = me.resend(cas_msg, leader, timeout=1.0)
    assert again is not None and _decisive(again) == _decisive(first), (
        f"retried cas answered {again}; the first answer was {first}")


def _decisive(reply):
    return {k: reply.get(k) for k in ("seq", "ok", "value", "error")}


def test_cas_semantics(make_cluster):
    """cas sets the key only if it holds `expected`; otherwise cas_failed with the current value.

    Guards: PROTOCOL.md's cas: value after success is the new one; a failed
    cas reports the current value, or null for an absent key, and changes nothing.
    """
    cluster = make_cluster(default=3)
    c = cluster.client()
    r = c.cas("c", "anything", "x")
    assert r.outcome == CAS_FAILED and r.value is None, f"cas on an absent key: {r}"
    assert_ok(c.set("c", "a"), "set")
    r = c.cas("c", "b", "x")
    assert r.outcome == CAS_FAILED and r.value == "a", f"cas with a wrong expected value: {r}"
    r = c.cas("c", "a", "b")
    assert r.ok and r.value == "b", f"cas with the right expected value: {r}"
    r = c.get("c")
    assert r.ok and r.value == "b", f"after the cas: {r}"
    r = c.cas("c", "b", "")
    assert r.ok and r.value == "", f"cas to the empty string: {r}"


def test_delete(make_cluster):
    """delete answers the removed value (null if none); the key then reads as null."""
    cluster = make_cluster(default=3)
    c = cluster.client()
    assert_ok(c.set("d", "v"), "set")
    r = c.delete("d")
    assert r.ok and r.value == "v", f"delete of an existing key: {r}"
    r = c.get("d")
    assert r.ok and r.value is None, f"get after delete: {r}"
    r = c.delete("d")
    assert r.ok and r.value is None, f"delete of an absent key: {r}"
    assert_ok(c.set("d", "again"), "set after delete")
    assert c.get("d").value == "again"


def test_local_reads(make_cluster, timing):
    """A `consistency: local` get is answered by the node it is sent to, from its own state.

    Every node answers it (no redirect) and, once it has applied a write,
    returns that value. Guards: local reads never wait for anyone and never
    go through the log.
    """
    cluster = make_cluster(default=3)
    c = cluster.client()
    assert_ok(c.set("L", "1"), "set")
    cluster.wait_converged()
    for node in cluster.ids:
        r = c.get_local("L", node)
        assert r.ok and r.node == node, f"local read sent to {node}: {r}"
        assert r.value == "1", f"{node} has applied the write but its local read says {r.value!r}"
    leader = cluster.wait_for_leader()
    before = cluster.status(leader)["last_log_index"]
    for _ in range(5):
        c.get_local("L", leader)
        c.get("L")
    after = cluster.status(leader)["last_log_index"]
    assert after == before, f"reads appended to the log ({before} -> {after}); PROTOCOL.md forbids it"


def test_seq_rules(make_cluster, timing):
    """seq must be an integer >= 1: 0, negative, fractional or string seqs get bad_request.
    A request with an old seq (the client already moved on) gets no reply or
    bad_request, and is never applied (PROTOCOL.md v1.1, "Clarifications of v1").

    Guards: PROTOCOL.md's seq rules; exactly-once must not be fooled into
    applying a command below the session's last seq.
    """
    cluster = make_cluster(default=3)
    leader = cluster.wait_settled()
    c = cluster.client()
    for bad in (0, -1, 1.5, "1", "missing"):
        msg = {"type": "client_request", "src": c.client_id, "dest": leader, "seq": bad, "op": "set",
               "key": "s", "value": "bad"}
        if bad == "missing":
            del msg["seq"]
        c.send_raw(leader, json.dumps(msg).encode())
        reply = c.receive_raw(1.0)
        assert reply is not None and reply.get("ok") is False and reply.get("error") == "bad_request", (
            f"seq {bad!r}: expected bad_request, got {reply}")
        assert isinstance(reply.get("message"), str) and reply["message"], f"bad_request without message: {reply}"

    _, r1 = _raw_request(c, leader, 10, "set", "s", value="ten")
    _, r2 = _raw_request(c, leader, 11, "set", "s", value="eleven")
    assert r1 and r1.get("ok") and r2 and r2.get("ok"), f"plain sets: {r1}, {r2}"
    _, old = _raw_request(c, leader, 10, "set", "s", value="replayed")
    # PROTOCOL.md v1.1, "Clarifications of v1": no reply, or bad_request; never a new application.
    assert old is None or (old.get("ok") is False and old.get("error") == "bad_request"), (
        f"a request with an old seq (10, after 11) must get no reply or bad_request, got {old}")
    time.sleep(0.1)
    r = cluster.client().get("s")
    assert r.ok and r.value == "eleven", f"after a request with an old seq, s = {r.value!r}"
