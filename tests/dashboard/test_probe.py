"""The probe behind the page's node table and logs, against fake nodes: one
that answers status and log_tail, one without the log_tail extension (it
answers bad_request, as PROTOCOL.md allows), one that never answers."""

import json
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tools.dashboard.probe import NodeProbe, tail_entries  # noqa: E402


class FakeNode:
    def __init__(self, nid: str, log_tail: bool):
        self.id = nid
        self.log_tail = log_tail
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                raw, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = json.loads(raw)
            if msg["type"] == "status":
                reply = {"type": "status_reply", "src": self.id, "dest": msg["src"], "id": self.id,
                         "role": "follower", "term": 3, "leader": "n1", "commit_index": 7, "last_applied": 7,
                         "last_log_index": 9}
            elif self.log_tail:
                assert 1 <= msg["count"] <= 64
                reply = {"type": "log_tail_reply", "src": self.id, "dest": msg["src"], "base_index": 4,
                         "base_term": 1, "last_index": 9, "terms": [1, 2, 2, 3, 3]}
            else:
                reply = {"type": "client_reply", "src": self.id, "dest": msg["src"], "seq": 0, "ok": False,
                         "error": "bad_request", "message": "unknown message type 'log_tail'", "value": None}
            self.sock.sendto(json.dumps(reply).encode(), addr)

    def close(self):
        self.stop.set()
        self.thread.join(1.0)
        self.sock.close()


def test_status_and_log_tail_and_a_node_without_the_extension():
    a, b = FakeNode("n1", log_tail=True), FakeNode("n2", log_tail=False)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    probe = NodeProbe({"n1": a.address, "n2": b.address, "n3": silent.getsockname()})
    try:
        status, logs = probe.poll(["n1", "n2", "n3"], timeout_s=0.5)
        assert status["n1"]["term"] == 3 and status["n2"]["term"] == 3
        assert status["n3"] is None and logs["n3"] is None
        assert tail_entries(logs["n1"]) == [[5, 1], [6, 2], [7, 2], [8, 3], [9, 3]]
        assert logs["n2"] is None, "no log_tail: the page draws the rest and says so"
    finally:
        probe.close()
        a.close()
        b.close()
        silent.close()
