"""Asks every node for `status` and `log_tail` at once, on one socket.

Both requests go straight to the nodes' private addresses (never through the
fault proxy: watching must not be subject to the faults injected), and both
are answered in any role and change nothing (docs/PROTOCOL.md). A node
without the log_tail extension stays silent or answers bad_request; its
`log` is then None and the page says so.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Optional

LOG_TAIL_ENTRIES = 32      # what the page draws; the node allows up to 64
MAX_REPLIES_PER_POLL = 64  # bounds the receive loop even if a node floods us


class NodeProbe:
    def __init__(self, addresses: dict, client_id: str = "dashboard-probe"):
        self.addresses = dict(addresses)
        self.client_id = client_id
        self.by_addr = {a: n for n, a in self.addresses.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def close(self) -> None:
        self.sock.close()

    def poll(self, nodes, timeout_s: float = 0.08) -> tuple[dict, dict]:
        """({id: status_reply or None}, {id: log_tail_reply or None})."""
        self._drain()
        for n in nodes:
            for kind, extra in (("status", {}), ("log_tail", {"count": LOG_TAIL_ENTRIES})):
                msg = dict(type=kind, src=self.client_id, dest=n, **extra)
                try:
                    self.sock.sendto(json.dumps(msg).encode(), self.addresses[n])
                except OSError:
                    pass
        status: dict = {n: None for n in nodes}
        logs: dict = {n: None for n in nodes}
        end = time.monotonic() + timeout_s
        for _ in range(MAX_REPLIES_PER_POLL):
            if all(status.values()) and all(logs.values()):
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                raw, addr = self.sock.recvfrom(65535)
                reply = json.loads(raw)
            except socket.timeout:
                break
            except (OSError, ValueError):
                continue
            n = self.by_addr.get(addr)
            if n not in status or not isinstance(reply, dict):
                continue
            if reply.get("type") == "status_reply":
                status[n] = reply
            elif reply.get("type") == "log_tail_reply" and _valid_tail(reply):
                logs[n] = reply
        return status, logs

    def _drain(self) -> None:
        self.sock.setblocking(False)
        try:
            for _ in range(1000):
                self.sock.recv(65535)
        except OSError:
            pass
        finally:
            self.sock.setblocking(True)


def _valid_tail(r: dict) -> bool:
    terms, last = r.get("terms"), r.get("last_index")
    return (isinstance(terms, list) and len(terms) <= 64 and all(isinstance(t, int) for t in terms)
            and isinstance(last, int) and last >= len(terms))


def tail_entries(r: Optional[dict]) -> Optional[list]:
    """[[index, term], ...] of a log_tail_reply, oldest first."""
    if r is None:
        return None
    first = r["last_index"] - len(r["terms"]) + 1
    return [[first + i, t] for i, t in enumerate(r["terms"])]
