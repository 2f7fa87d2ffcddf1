#!/usr/bin/env python3
"""A test double: a node whose followers forward client requests to the leader.

    python3 harness/doubles/forwarding_node.py NODE_BINARY CONFIG_PATH

PROTOCOL.md v1.1 ("Clarifications of v1") lets a follower answer a write or
a linearizable get either with not_leader or by forwarding it to the leader
and relaying the answer. The reference node redirects; this wrapper turns it
into a forwarding node, so the harness can show that it accepts both:

    ./grade --node-cmd "python3 harness/doubles/forwarding_node.py ./node"

It starts NODE_BINARY on a private port (config `listen` replaced) and owns
the configured `listen` address itself, so peers, clients and the harness
all talk to the wrapper:

- a datagram from another source X reaches the inner node from a socket of
  its own for X (a small NAT), and the inner node's answers go back to X;
- the inner node's peer traffic leaves from the `listen` address, so the
  fault proxy still sees node-to-node links, and replies from a peer's
  address go back to the inner node as if from that peer;
- a client_request that arrives while the inner node is a follower that
  knows its leader (the wrapper polls its status every STATUS_POLL_S) is
  not given to the inner node: the wrapper sends it to that leader (from the
  `listen` address: a node-to-node datagram, cut by partitions like any
  other) and relays the leader's reply to the client with its own id as
  `src`; a client whose forwarded request gets no answer times out and
  retries, as with any lost datagram.

It exits when the inner node exits (a kill of the process group, which the
harness uses, stops both). Every table is bounded.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

MAX_SOURCES = 512          # NAT sockets, least recently used closed first
MAX_PENDING = 4096         # remembered requests and forwards
FORWARD_TTL_S = 5.0        # a forward unanswered for this long is forgotten
STATUS_POLL_S = 0.05       # how often the wrapper asks its inner node for its role and leader
MAX_DATAGRAM = 65535


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host, int(port))


def _die_with_parent() -> None:
    """The inner node dies with the wrapper, even if the wrapper is SIGKILLed alone."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _reference_auth(config: dict, config_path: str) -> dict:
    """The reference node insists on peer authentication fields the harness gives only with --reference.

    Every node of one cluster has its config in the same directory: the first wrapper there writes
    the shared key (published with link(), so no one reads half a key); all derive the same cluster id.
    Peers reach the inner node from the wrapper's sockets, hence peers_behind_proxy.
    """
    if "cluster_id" in config:
        return {"peers_behind_proxy": True}
    directory = os.path.dirname(os.path.abspath(config_path))
    key = os.path.join(directory, "forwarding-cluster.key")
    if not os.path.exists(key):
        tmp = f"{key}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        try:
            os.link(tmp, key)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return {"cluster_id": "f" + hashlib.sha256(directory.encode()).hexdigest()[:16], "cluster_key_file": key,
            "peers_behind_proxy": True}


def _send(sock, data: bytes, addr) -> None:
    try:
        sock.sendto(data, addr)
    except OSError:
        pass  # like a lost datagram: the sender retries


class Bounded(collections.OrderedDict):
    def __init__(self, limit: int, on_evict=None):
        super().__init__()
        self.limit, self.on_evict = limit, on_evict

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            _, old = self.popitem(last=False)
            if self.on_evict:
                self.on_evict(old)


class Wrapper:
    def __init__(self, node_binary: str, config_path: str):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        self.me = config["id"]
        self.listen = _addr(config["listen"])
        self.peers = {p["id"]: _addr(p["address"]) for p in config.get("peers", [])}
        self.peer_ids = {addr: pid for pid, addr in self.peers.items()}
        self.sel = selectors.DefaultSelector()
        self.main = self._socket(self.listen, "main")
        # One local socket per peer: the inner node sends to it, and peer replies come back from it.
        self.peer_socks = {pid: self._socket(("127.0.0.1", 0), ("peer", pid)) for pid in self.peers}
        inner_port = self._free_port()
        inner = dict(config, **_reference_auth(config, config_path), listen=f"127.0.0.1:{inner_port}",
                     peers=[dict(p, address="127.0.0.1:%d" % self.peer_socks[p["id"]].getsockname()[1])
                            for p in config.get("peers", [])])
        self.inner_addr = ("127.0.0.1", inner_port)
        inner_path = config_path + ".inner.json"
        with open(inner_path, "w", encoding="utf-8") as f:
            json.dump(inner, f)
        self.sources = Bounded(MAX_SOURCES, on_evict=self._close)
        self.forwards = Bounded(MAX_PENDING)   # (client id, seq) -> (source, deadline)
        self.status_sock = self._socket(("127.0.0.1", 0), "status")
        self.role, self.leader, self.next_poll = None, None, 0.0
        self.child = subprocess.Popen([node_binary, inner_path], preexec_fn=_die_with_parent)

    def _socket(self, addr, tag):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(addr)
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, tag)
        return s

    @staticmethod
    def _free_port() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def _close(self, sock) -> None:
        self.sel.unregister(sock)
        sock.close()

    def _source_socket(self, source):
        sock = self.sources.get(source)
        if sock is None:
            sock = self._socket(("127.0.0.1", 0), ("nat", source))
        self.sources.put(source, sock)
        return sock

    @staticmethod
    def _parse(data: bytes):
        try:
            msg = json.loads(data)
        except (ValueError, RecursionError):  # deep nesting: Python's parser recurses
            return None
        return msg if isinstance(msg, dict) else None

    def on_main(self, data: bytes, source) -> None:
        if source in self.peer_ids:
            msg = self._parse(data)
            key = (msg.get("dest"), msg.get("seq")) if msg and msg.get("type") == "client_reply" else None
            if key in self.forwards:  # the leader's answer to a request this node forwarded
                client, _ = self.forwards.pop(key)
                msg["src"] = self.me
                _send(self.main, json.dumps(msg).encode(), client)
                return
            # A peer's reply to the inner node's own request: deliver it as if from that peer.
            _send(self.peer_socks[self.peer_ids[source]], data, self.inner_addr)
            return
        msg = self._parse(data)
        seq = msg.get("seq") if msg else None
        # Only a request whose seq the leader's reply will carry back (an integer >= 1) is forwarded;
        # the inner node answers anything else itself (bad_request with seq 0).
        if (msg and msg.get("type") == "client_request" and isinstance(seq, int) and not isinstance(seq, bool)
                and seq >= 1 and self.role == "follower" and self.leader in self.peers):
            # A follower forwards what it receives (PROTOCOL.md v1.1); a leader, even a deposed one,
            # answers for itself, so nothing it once took is ever replayed behind its client's back.
            self.forwards.put((msg.get("src"), msg["seq"]), (source, time.monotonic() + FORWARD_TTL_S))
            _send(self.main, data, self.peers[self.leader])
            return
        _send(self._source_socket(source), data, self.inner_addr)

    def on_nat(self, data: bytes, source) -> None:
        """The inner node's answer to `source`."""
        _send(self.main, data, source)

    def poll_status(self) -> None:
        now = time.monotonic()
        if now >= self.next_poll:
            self.next_poll = now + STATUS_POLL_S
            _send(self.status_sock, json.dumps({"type": "status", "src": "fwd-" + self.me, "dest": self.me}).encode(),
                  self.inner_addr)

    def on_status(self, data: bytes) -> None:
        msg = self._parse(data)
        if msg and msg.get("type") == "status_reply":
            self.role, self.leader = msg.get("role"), msg.get("leader")

    def expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, deadline) in self.forwards.items() if deadline < now][:MAX_PENDING]:
            self.forwards.pop(key, None)

    def run(self) -> int:
        while self.child.poll() is None:
            for key, _ in self.sel.select(timeout=STATUS_POLL_S):
                tag = key.data
                try:
                    data, source = key.fileobj.recvfrom(MAX_DATAGRAM)
                except OSError:
                    continue
                if tag == "main":
                    self.on_main(data, source)
                elif tag == "status":
                    self.on_status(data)
                elif tag[0] == "peer":
                    if source == self.inner_addr:  # the inner node's message to a peer leaves from `listen`
                        _send(self.main, data, self.peers[tag[1]])
                elif source == self.inner_addr:
                    self.on_nat(data, tag[1])
            self.poll_status()
            self.expire()
        return self.child.returncode


def main(argv) -> int:
    if len(argv) != 2:
        print("usage: forwarding_node.py NODE_BINARY CONFIG_PATH", file=sys.stderr)
        return 2
    wrapper = Wrapper(*argv)

    def stop(signum, frame):
        wrapper.child.send_signal(signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = wrapper.run()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
