"""Bad input: garbage, broken JSON, wrong types, missing fields, oversized datagrams.

PROTOCOL.md: a datagram that is not valid JSON, or lacks a required field,
never crashes a node and never changes its state; a bad client_request or
status whose src can be read is answered with bad_request (with a message),
anything else is dropped. Keys over 256 bytes and values over 16 KiB are
refused with too_large. Any datagram up to 65,507 bytes is accepted.

These datagrams go straight to the nodes (no proxy), to every node, leader
and followers alike.
"""

import json

from .lib.checks import assert_ok
from .lib.client import REJECTED

MAX_DATAGRAM = 65507

# Datagrams whose sender cannot be identified: they must be dropped silently.
UNANSWERABLE = {
    "empty datagram": b"",
    "binary garbage": bytes(range(256)) * 4,
    "not JSON": b"hello, node",
    "truncated JSON": b'{"type":"client_request","src":"cX","dest":"n1","seq":1,"op":"set","key":"k","val',
    "JSON with trailing data": b'{"type":"status","src":"cX","dest":"n1"} {}',
    "JSON array": b'[{"type":"status","src":"cX","dest":"n1"}]',
    "JSON string": b'"status"',
    "JSON number": b"12345",
    "JSON null": b"null",
    "invalid UTF-8": b'{"type":"status","src":"c\xff\xfe","dest":"n1"}',
    "src is a number": b'{"type":"client_request","src":7,"dest":"n1","seq":1,"op":"get","key":"k"}',
    "src missing": b'{"type":"status","dest":"n1"}',
    "type missing": b'{"src":"cX","dest":"n1","seq":1,"op":"get","key":"k"}',
    "type is a number": b'{"type":3,"src":"cX","dest":"n1"}',
    "65,507 bytes of garbage": (b"\x00garbage" * (MAX_DATAGRAM // 8 + 1))[:MAX_DATAGRAM],
}

# JSON nested deeper than 32 levels, from a readable src. PROTOCOL.md v1.1 ("Clarifications of v1"):
# a node may treat it as invalid and then drop it or answer bad_request; one that parses it anyway
# answers the status. 30,000 levels breaks a parser that recurses without a limit.
DEEP_NESTING = {
    "33 levels": b'{"type":"status","src":"SRC","dest":"DEST","x":' + b"[" * 32 + b"]" * 32 + b"}",
    "30,000 levels": b'{"type":"status","src":"SRC","dest":"DEST","x":' + b"[" * 30000 + b"]" * 30000 + b"}",
}

# Bad requests from a readable src: each must get bad_request (with a message).
_MISSING = object()


def _req(**fields):
    msg = {"type": "client_request", "src": "SRC", "dest": "n1", "seq": 1, "op": "set", "key": "k", "value": "v"}
    for k, v in fields.items():
        if v is _MISSING:
            msg.pop(k)
        else:
            msg[k] = v
    return msg


BAD_REQUESTS = {
    "status without dest": {"type": "status", "src": "SRC"},
    "status with a numeric dest": {"type": "status", "src": "SRC", "dest": 1},
    "seq missing": _req(seq=_MISSING),
    "seq is a string": _req(seq="1"),
    "seq is zero": _req(seq=0),
    "seq is negative": _req(seq=-5),
    "seq is fractional": _req(seq=2.5),
    "op missing": _req(op=_MISSING),
    "op unknown": _req(op="increment"),
    "op is a number": _req(op=1),
    "key missing": _req(key=_MISSING),
    "key is a number": _req(key=42),
    "key is null": _req(key=None),
    "key is empty": _req(key=""),
    "set without value": _req(value=_MISSING),
    "set with a numeric value": _req(value=5),
    "cas without expected": _req(op="cas"),
    "cas with a list as expected": _req(op="cas", expected=["v"]),
    "dest missing": _req(dest=_MISSING),
}

# Messages that look like peer traffic but are broken: dropped, and above all
# the huge term in them must not be adopted.
BROKEN_PEER_MESSAGES = {
    "request_vote without log fields": {"type": "request_vote", "src": "PEER", "dest": "ME", "term": 1000000},
    "append_entries with string entries": {"type": "append_entries", "src": "PEER", "dest": "ME",
                                           "term": 1000000, "entries": "many"},
    "append_entries with a negative term": {"type": "append_entries", "src": "PEER", "dest": "ME", "term": -1,
                                            "prev_log_index": 0, "prev_log_term": 0, "entries": [],
                                            "leader_commit": 0},
    "request_vote_reply with a string term": {"type": "request_vote_reply", "src": "PEER", "dest": "ME",
                                              "term": "1000000", "vote_granted": True},
    "unknown message type": {"type": "gossip", "src": "PEER", "dest": "ME", "term": 1000000},
}


def _state(cluster, client, keys):
    """A snapshot of what bad input must not change: statuses and the values of `keys`."""
    statuses = cluster.status_all()
    values = {k: client.get(k).value for k in keys}
    return statuses, values


def _assert_unchanged(cluster, client, before, keys, what):
    statuses_before, values_before = before
    statuses_after, values_after = _state(cluster, client, keys)
    dead = [n for n, s in statuses_after.items() if s is None]
    assert not dead, f"after {what}: {dead} stopped answering status ({cluster.describe_statuses(statuses_after)})"
    assert values_after == values_before, f"after {what}: values changed from {values_before} to {values_after}"
    for n, s in statuses_after.items():
        b = statuses_before[n]
        assert s["term"] < 1000000, f"after {what}: {n} adopted the term of a broken message: {s}"
        if s["term"] == b["term"]:
            assert s["commit_index"] == b["commit_index"], (
                f"after {what}: {n}'s commit_index moved {b['commit_index']} -> {s['commit_index']} "
                "(nothing was written)")


def _make(make_cluster):
    cluster = make_cluster(default=3, proxy=False)
    cluster.wait_settled()
    client = cluster.client()
    for k in ("a", "b"):
        assert_ok(client.set(k, f"value of {k}"), "setup write")
    cluster.wait_converged()
    return cluster, client


def test_garbage_is_dropped(make_cluster):
    """Unreadable datagrams get no answer, crash nothing and change nothing."""
    cluster, client = _make(make_cluster)
    before = _state(cluster, client, ["a", "b"])
    answered = []
    for name, data in UNANSWERABLE.items():
        for node in cluster.ids:
            client.send_raw(node, data)
        while (reply := client.receive_raw(0.15)) is not None:
            answered.append(f"{name}: answered {reply}")
        statuses = cluster.status_all()
        dead = [n for n, s in statuses.items() if s is None]
        assert not dead, f"after '{name}', {dead} stopped answering: {cluster.describe_statuses(statuses)}"
    assert not answered, "datagrams without a readable src must be dropped:\n" + "\n".join(answered)
    _assert_unchanged(cluster, client, before, ["a", "b"], "garbage")


def test_bad_requests_get_bad_request(make_cluster):
    """Malformed client_request / status with a readable src: bad_request with a message, no effect."""
    cluster, client = _make(make_cluster)
    before = _state(cluster, client, ["a", "b", "k"])
    wrong = []
    for name, template in BAD_REQUESTS.items():
        for node in cluster.ids:
            msg = dict(template, src=client.client_id)
            if msg.get("dest") == "n1":
                msg["dest"] = node
            client.send_raw(node, json.dumps(msg).encode())
            reply = client.receive_raw(0.5)
            if not (isinstance(reply, dict) and reply.get("type") == "client_reply" and reply.get("ok") is False
                    and reply.get("error") == "bad_request" and isinstance(reply.get("message"), str)
                    and reply.get("message")):
                wrong.append(f"{name} -> {node}: {reply}")
            elif reply.get("seq") not in _allowed_seqs(msg):
                wrong.append(f"{name} -> {node}: reply carries seq {reply.get('seq')!r}, allowed: "
                             f"{_allowed_seqs(msg)} (the request's seq when it could be read, else 0)")
    assert not wrong, "expected bad_request with a message:\n" + "\n".join(wrong)
    _assert_unchanged(cluster, client, before, ["a", "b", "k"], "bad requests")


def _allowed_seqs(msg: dict) -> list:
    """PROTOCOL.md v1.1: a bad_request carries "the request's seq when it could be read (else 0)".
    A seq of a wrong type may or may not count as readable, so both answers are accepted for it."""
    seq = msg.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1:
        return [seq]
    return [0] if seq is None else [0, seq]


def test_deep_nesting_is_survived(make_cluster):
    """JSON nested deeper than 32 levels, with a readable src: dropped, bad_request or a status_reply
    (PROTOCOL.md v1.1 allows each); never a crash, never a change."""
    cluster, client = _make(make_cluster)
    before = _state(cluster, client, ["a", "b"])
    wrong = []
    for name, template in DEEP_NESTING.items():
        for node in cluster.ids:
            data = template.replace(b'"SRC"', json.dumps(client.client_id).encode()).replace(
                b'"DEST"', json.dumps(node).encode())
            client.send_raw(node, data)
            while (reply := client.receive_raw(0.3)) is not None:
                bad_request = (reply.get("type") == "client_reply" and reply.get("ok") is False
                               and reply.get("error") == "bad_request")
                if not (bad_request or reply.get("type") == "status_reply"):
                    wrong.append(f"{name} -> {node}: answered {reply}")
        statuses = cluster.status_all()
        dead = [n for n, st in statuses.items() if st is None]
        assert not dead, f"after {name} of nesting, {dead} stopped answering: {cluster.describe_statuses(statuses)}"
    assert not wrong, "deep JSON may be dropped or answered bad_request (or parsed):\n" + "\n".join(wrong)
    _assert_unchanged(cluster, client, before, ["a", "b"], "deeply nested JSON")


def test_broken_peer_messages_change_nothing(make_cluster):
    """Broken look-alikes of Raft messages from a real peer id are dropped: no crash, no term change."""
    cluster, client = _make(make_cluster)
    before = _state(cluster, client, ["a", "b"])
    for name, template in BROKEN_PEER_MESSAGES.items():
        for node in cluster.ids:
            peer = next(n for n in cluster.ids if n != node)
            msg = dict(template, src=peer, dest=node)
            client.send_raw(node, json.dumps(msg).encode())
    _assert_unchanged(cluster, client, before, ["a", "b"], "broken peer messages")


def test_unknown_fields_are_ignored(make_cluster):
    """Fields PROTOCOL.md does not define change nothing about a request or its answer."""
    cluster, client = _make(make_cluster)
    extra = {"color": "blue", "priority": 7, "nested": {"a": [1, 2]}, "consistency_hint": None}
    assert_ok(client.set("u", "1", extra=extra), "set with unknown fields")
    r = client.get("u", extra=extra)
    assert r.ok and r.value == "1", f"get with unknown fields: {r}"
    leader = cluster.wait_for_leader()
    client.send_raw(leader, json.dumps(dict({"type": "status", "src": client.client_id, "dest": leader},
                                            **extra)).encode())
    reply = client.receive_raw(1.0)
    assert isinstance(reply, dict) and reply.get("type") == "status_reply" and reply.get("id") == leader, (
        f"status with unknown fields: {reply}")


def test_size_limits(make_cluster):
    """Keys up to 256 bytes and values up to 16 KiB are fine; one byte more is too_large.

    Sizes are in bytes of UTF-8, not characters: 129 two-byte characters are
    258 bytes. A refused request changes nothing.
    """
    cluster, client = _make(make_cluster)
    cases_ok = {"key of 256 bytes": ("k" * 256, "v"), "value of 16,384 bytes": ("big", "v" * 16384),
                "key of 128 two-byte characters": ("é" * 128, "v")}
    for name, (key, value) in cases_ok.items():
        assert_ok(client.set(key, value), name)
        r = client.get(key)
        assert r.ok and r.value == value, f"{name}: read back {len(r.value or '')} characters"
    cases_large = {"key of 257 bytes": ("k" * 257, "v"), "value of 16,385 bytes": ("big", "w" * 16385),
                   "key of 129 two-byte characters": ("é" * 129, "v"),
                   "value of 8,193 two-byte characters": ("big", "é" * 8193)}
    for name, (key, value) in cases_large.items():
        r = client.set(key, value)
        assert r.outcome == REJECTED and r.error == "too_large", f"{name}: expected too_large, got {r}"
    r = client.get("big")
    assert r.ok and r.value == "v" * 16384, "a refused set changed the value"
    r = client.cas("big", "v" * 16384, "x" * 16385)
    assert r.outcome == REJECTED and r.error == "too_large", f"cas with a 16,385-byte value: {r}"


def test_largest_datagrams(make_cluster):
    """Datagrams of exactly 65,507 bytes are read whole.

    A status request padded with an unknown field to the maximum size must be
    answered (a node with a small receive buffer truncates it into invalid
    JSON); a client_request of the maximum size with a huge value gets too_large.
    """
    cluster, client = _make(make_cluster)
    before = _state(cluster, client, ["a", "b", "huge"])
    for node in cluster.ids:
        status = {"type": "status", "src": client.client_id, "dest": node, "padding": ""}
        status["padding"] = "p" * (MAX_DATAGRAM - len(json.dumps(status)))
        data = json.dumps(status).encode()
        assert len(data) == MAX_DATAGRAM
        client.send_raw(node, data)
        reply = client.receive_raw(1.0)
        assert isinstance(reply, dict) and reply.get("type") == "status_reply", (
            f"{node} did not answer a status of {MAX_DATAGRAM} bytes: {reply}")

        request = {"type": "client_request", "src": client.client_id, "dest": node, "seq": 1, "op": "set",
                   "key": "huge", "value": ""}
        request["value"] = "h" * (MAX_DATAGRAM - len(json.dumps(request)))
        data = json.dumps(request).encode()
        assert len(data) == MAX_DATAGRAM
        client.send_raw(node, data)
        reply = client.receive_raw(1.0)
        assert isinstance(reply, dict) and reply.get("error") == "too_large", (
            f"{node} answered a {MAX_DATAGRAM}-byte set with {reply}, expected too_large")
    _assert_unchanged(cluster, client, before, ["a", "b", "huge"], "maximum-size datagrams")
