"""A client of the key-value store that speaks PROTOCOL.md and nothing else.

`Client` sends `client_request`s from one UDP socket under its own client id.
Each request gets the next `seq`; a request that gets no reply within the
request timeout is sent again *with the same seq* to the next node, until the
overall deadline. A `not_leader` reply that names a leader is retried there
at once. The outcome of a request is one of:

- OK          the operation took effect (or, for a get, was read);
- CAS_FAILED  a definite "no": the cas did not apply (value = current value);
- REJECTED    a definite "no": bad_request / too_large (error says which);
- UNAVAILABLE no answer by the deadline. Indefinite: the operation may or may
              not have happened, and may still happen later. Checkers must
              accept both.

`StatusProbe` asks nodes for `status` (on a separate socket so that status
replies never mix with client replies).
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

OK = "ok"
CAS_FAILED = "cas_failed"
REJECTED = "rejected"
UNAVAILABLE = "unavailable"

Address = tuple[str, int]

_client_numbers = itertools.count(1)


def new_client_id(prefix: str = "c") -> str:
    """A fresh client id: valid per PROTOCOL.md and unique across runs."""
    return f"{prefix}{next(_client_numbers)}-{secrets.token_hex(4)}"


@dataclass(repr=False)
class Result:
    """What one request came to."""
    outcome: str
    op: str
    key: Optional[str]
    seq: int
    value: Optional[str] = None          # the reply's value (see PROTOCOL.md)
    error: Optional[str] = None          # the reply's error, when not ok
    message: Optional[str] = None
    node: Optional[str] = None           # the node whose reply decided the outcome
    reply: Optional[dict] = None         # that reply as received
    attempts: list[str] = field(default_factory=list)  # "n1: timeout", "n2: not_leader -> n3", ...
    invoked: float = 0.0                 # time.monotonic() when the request was first sent
    completed: float = 0.0               # ... and when the outcome was known

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def definite(self) -> bool:
        """True when we know whether the operation took effect."""
        return self.outcome != UNAVAILABLE

    @property
    def latency(self) -> float:
        return self.completed - self.invoked

    def __str__(self) -> str:
        detail = f" value={self.value!r}" if self.outcome in (OK, CAS_FAILED) else ""
        if self.error and self.outcome != CAS_FAILED:
            detail += f" error={self.error}"
        if self.message:
            detail += f" ({self.message})"
        return (f"{self.op} {self.key!r} seq {self.seq}: {self.outcome}{detail} from {self.node} "
                f"after {self.latency * 1000:.0f} ms [{'; '.join(self.attempts[-6:])}]")

    __repr__ = __str__  # short, also inside pytest's assertion details


class Client:
    """One client id, one socket, one outstanding request at a time.

    servers: {node id: (host, port)} where requests go (the public addresses).
    history: if given, every request is recorded there (see history.py).
    Not thread-safe: give every thread its own Client.
    """

    def __init__(self, servers: dict[str, Address], *, client_id: Optional[str] = None,
                 request_timeout: float = 0.3, deadline: float = 3.0,
                 rng: Optional[random.Random] = None, history=None):
        self.servers = dict(servers)
        self.ids = sorted(self.servers)
        self.client_id = client_id or new_client_id()
        self.request_timeout = request_timeout
        self.deadline = deadline
        self.rng = rng or random.Random()
        self.history = history
        self.seq = 0
        self.leader_guess: Optional[str] = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self._probe: Optional["StatusProbe"] = None
        # First reply seen for each recent write seq: duplicated or late replies
        # must be identical to it (exactly-once answers "with the reply it gave then").
        self.first_replies: dict[int, dict] = {}
        self.write_seqs: set[int] = set()  # seqs of set/cas/delete requests
        self.reply_mismatches: list[tuple[dict, dict]] = []

    def close(self) -> None:
        self.sock.close()
        if self._probe is not None:
            self._probe.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- status -----------------------------------------------------------------

    def status_all(self, timeout: float = 0.2) -> dict[str, Optional[dict]]:
        """{node id: status_reply or None} for every server this client knows."""
        if self._probe is None:
            self._probe = StatusProbe(self.servers, self.client_id + "-status")
        return self._probe.poll(timeout=timeout)

    def status(self, node: str, timeout: float = 0.3) -> Optional[dict]:
        if self._probe is None:
            self._probe = StatusProbe(self.servers, self.client_id + "-status")
        return self._probe.poll([node], timeout)[node]

    # -- convenience ----------------------------------------------------------

    def get(self, key: str, **kw) -> Result:
        return self.request("get", key, **kw)

    def get_local(self, key: str, node: str, **kw) -> Result:
        """A `consistency: local` read answered by `node` itself (may be stale)."""
        return self.request("get", key, consistency="local", only=node, **kw)

    def set(self, key: str, value: str, **kw) -> Result:
        return self.request("set", key, value=value, **kw)

    def cas(self, key: str, expected: str, value: str, **kw) -> Result:
        return self.request("cas", key, value=value, expected=expected, **kw)

    def delete(self, key: str, **kw) -> Result:
        return self.request("delete", key, **kw)

    # -- the request loop -----------------------------------------------------

    def request(self, op: str, key: str, *, value: Optional[str] = None, expected: Optional[str] = None,
                consistency: Optional[str] = None, node: Optional[str] = None, only: Optional[str] = None,
                timeout: Optional[float] = None, deadline: Optional[float] = None,
                extra: Optional[dict] = None) -> Result:
        """Send one command and retry it (same seq) until a definite answer or the deadline.

        node: the node to try first (default: the last leader we heard of).
        only: send to this node alone; never follow a redirect (to test what
              one particular node does, e.g. an old leader in a minority).
              A not_leader reply from it then ends the request as UNAVAILABLE.
        extra: more fields for the request (to test unknown fields).
        """
        self.seq += 1
        if op in ("set", "cas", "delete"):
            self.write_seqs.add(self.seq)
        msg: dict[str, Any] = {"type": "client_request", "src": self.client_id, "dest": "",
                               "seq": self.seq, "op": op, "key": key}
        if value is not None:
            msg["value"] = value
        if expected is not None:
            msg["expected"] = expected
        if consistency is not None:
            msg["consistency"] = consistency
        if extra:
            msg.update(extra)
        result = self._run(msg, node=node, only=only,
                           timeout=timeout if timeout is not None else self.request_timeout,
                           deadline=deadline if deadline is not None else self.deadline)
        if self.history is not None:
            self.history.record(self.client_id, msg, result)
        return result

    def resend(self, msg: dict, node: str, timeout: Optional[float] = None) -> Optional[dict]:
        """Send an exact request (e.g. a retry of an old seq) once to `node`; the reply or None."""
        self._send(msg, node)
        return self._receive(msg["seq"], time.monotonic() + (timeout or self.request_timeout))

    def send_raw(self, node: str, data: bytes) -> None:
        """Send arbitrary bytes to `node` from this client's socket."""
        self.sock.sendto(data, self.servers[node])

    def receive_raw(self, timeout: float) -> Optional[dict]:
        """The next JSON object that arrives within `timeout` s, whatever it is."""
        until = time.monotonic() + timeout
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                raw = self.sock.recv(65535)
            except socket.timeout:
                return None
            except OSError:
                continue
            try:
                reply = json.loads(raw)
            except ValueError:
                return {"unparsable": raw[:200]}
            return reply if isinstance(reply, dict) else {"not_an_object": reply}

    def _send(self, msg: dict, node: str) -> None:
        msg = dict(msg, dest=node)
        try:
            self.sock.sendto(json.dumps(msg).encode(), self.servers[node])
        except OSError:
            pass  # e.g. ECONNREFUSED from an earlier send to a dead port: same as a loss

    def _run(self, msg: dict, *, node: Optional[str], only: Optional[str], timeout: float,
             deadline: float) -> Result:
        result = Result(UNAVAILABLE, msg["op"], msg.get("key"), msg["seq"])
        start = time.monotonic()
        result.invoked = start
        end = start + deadline
        target = only or node or self.leader_guess or self.rng.choice(self.ids)
        hops_without_progress = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            self._send(msg, target)
            reply = self._receive(msg["seq"], min(end, now + timeout))
            if reply is None:
                result.attempts.append(f"{target}: timeout")
                if only is None:
                    if self.leader_guess == target:
                        self.leader_guess = None
                    target = self._next_after(target)
                continue
            error = reply.get("error")
            if reply.get("ok") is True:
                return self._finish(result, OK, reply, target, msg)
            if error == "cas_failed":
                return self._finish(result, CAS_FAILED, reply, target, msg)
            if error in ("bad_request", "too_large"):
                return self._finish(result, REJECTED, reply, target, msg)
            hint = reply.get("leader")
            result.attempts.append(f"{target}: {error} -> {hint}" if hint else f"{target}: {error}")
            if only is not None:
                # No redirect allowed: the answer stands, but it is not a
                # definite "did not happen" (a deposed leader says not_leader
                # about entries that may still commit), so: unavailable.
                result.node = target
                result.reply = reply
                result.error = error
                break
            hops_without_progress += 1
            if isinstance(hint, str) and hint in self.servers and hint != target:
                self.leader_guess = target = hint
            else:
                self.leader_guess = None
                target = self._next_after(target)
            if hops_without_progress >= len(self.ids):
                # Nobody knows a leader (an election is going on): do not spin.
                hops_without_progress = 0
                time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        result.completed = time.monotonic()
        return result

    def _finish(self, result: Result, outcome: str, reply: dict, node: str, msg: dict) -> Result:
        result.outcome = outcome
        result.completed = time.monotonic()
        result.node = node
        result.reply = reply
        result.value = reply.get("value")
        result.error = reply.get("error")
        result.message = reply.get("message")
        if outcome in (OK, CAS_FAILED) and msg.get("consistency") != "local":
            self.leader_guess = node
        return result

    def _next_after(self, node: str) -> str:
        i = self.ids.index(node) if node in self.ids else -1
        return self.ids[(i + 1) % len(self.ids)]

    def _receive(self, seq: int, until: float) -> Optional[dict]:
        """The first client_reply for `seq` before `until`; other datagrams are checked and dropped."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                raw, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            except ConnectionRefusedError:
                continue  # ICMP port unreachable from an earlier send to a dead node
            except OSError:
                return None
            try:
                reply = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(reply, dict) or reply.get("type") != "client_reply":
                continue
            rseq = reply.get("seq")
            if not isinstance(rseq, int):
                continue
            self._remember(rseq, reply)
            if rseq == seq:
                return reply

    def _remember(self, seq: int, reply: dict) -> None:
        """Keep the first decisive reply per write seq; a later different one is a mismatch.

        Only writes: a duplicated get may legitimately be served twice, at different times.
        """
        if seq not in self.write_seqs:
            return
        if reply.get("ok") is not True and reply.get("error") != "cas_failed":
            return  # not_leader & co. are answers about the node, not about the command
        key = {k: reply.get(k) for k in ("ok", "value", "error")}
        first = self.first_replies.get(seq)
        if first is None:
            self.first_replies[seq] = key
            if len(self.first_replies) > 1000:
                self.first_replies.pop(next(iter(self.first_replies)))
        elif first != key:
            self.reply_mismatches.append((first, key))


class StatusProbe:
    """Asks nodes for `status` (PROTOCOL.md: answered in any role, changes nothing)."""

    def __init__(self, servers: dict[str, Address], client_id: Optional[str] = None):
        self.servers = dict(servers)
        self.client_id = client_id or new_client_id("status")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def close(self) -> None:
        self.sock.close()

    def poll(self, nodes: Optional[Iterable[str]] = None, timeout: float = 0.2) -> dict[str, Optional[dict]]:
        """Ask every node at once; {id: status_reply or None}, waiting at most `timeout` s."""
        nodes = list(nodes) if nodes is not None else sorted(self.servers)
        self._drain()
        for n in nodes:
            msg = {"type": "status", "src": self.client_id, "dest": n}
            try:
                self.sock.sendto(json.dumps(msg).encode(), self.servers[n])
            except OSError:
                pass
        out: dict[str, Optional[dict]] = {n: None for n in nodes}
        by_addr = {self.servers[n]: n for n in nodes}
        until = time.monotonic() + timeout
        while any(v is None for v in out.values()):
            left = until - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                raw, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                break
            except OSError:
                continue
            try:
                reply = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(reply, dict) or reply.get("type") != "status_reply":
                continue
            n = by_addr.get(addr)
            if n is None and reply.get("src") in out:
                n = reply.get("src")
            if n is not None and out.get(n) is None:
                out[n] = reply
        return out

    def _drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except OSError:
            pass
        finally:
            self.sock.setblocking(True)


def describe_status(s: Optional[dict]) -> str:
    """One status in a few words, for failure messages."""
    if s is None:
        return "no reply"
    return (f"{s.get('role')} term {s.get('term')} leader {s.get('leader')} "
            f"commit {s.get('commit_index')} applied {s.get('last_applied')} log {s.get('last_log_index')}")
