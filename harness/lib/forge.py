"""Forging peer datagrams in the reference node's format, for attack tests and fuzzing.

The reference node seals every peer message (docs/PROTOCOL.md, "Peer
authentication"):

    datagram = BODY + ',"mac":"' + 64 hex digits + '"}'
    BODY     = the JSON object without its final '}' + ',"cluster":"' + CLUSTER_ID + '"'
    MAC      = HMAC-SHA-512-256(key, BODY)   (libsodium's crypto_auth)

`seal()` does the same with a key read from the cluster's key file, which is
what an insider (a node of the cluster, or someone holding its key) could
send. Without the key an attacker can only send `plain()` messages, or
sealed ones with a wrong MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from typing import Optional

from .ports import HOST

U64_MAX = 2**64 - 1
WIRE_MAX = 2**53 - 1  # PROTOCOL.md v1.1: every integer on the wire is below 2^53


def read_key(path: str) -> bytes:
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def plain(msg: dict) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


def seal(msg: dict, cluster_id: str, key: bytes) -> bytes:
    body = plain(msg)[:-1] + b',"cluster":"' + cluster_id.encode() + b'"'
    mac = hmac.new(key, body, hashlib.sha512).digest()[:32]
    return body + b',"mac":"' + mac.hex().encode() + b'"}'


def append_entries(src: str, dest: str, term: int, *, prev=(0, 0), entries=(), commit: int = 0,
                   read_round: int = 0) -> dict:
    return {"type": "append_entries", "src": src, "dest": dest, "term": term, "prev_log_index": prev[0],
            "prev_log_term": prev[1], "entries": list(entries), "leader_commit": commit, "read_round": read_round}


def append_reply(src: str, dest: str, term: int, *, success: bool = True, match: int = 0, read_round: int = 0,
                 reject: int = 0) -> dict:
    return {"type": "append_entries_reply", "src": src, "dest": dest, "term": term, "success": success,
            "match_index": match, "reject_index": reject, "conflict_index": 0, "conflict_term": 0,
            "read_round": read_round}


def request_vote(src: str, dest: str, term: int, *, last=(0, 0), pre_vote: bool = False) -> dict:
    return {"type": "request_vote", "src": src, "dest": dest, "term": term, "last_log_index": last[0],
            "last_log_term": last[1], "pre_vote": pre_vote}


def command_entry(term: int, index: int, key: str, value: str, client: str = "evil", seq: int = 1) -> dict:
    return {"term": term, "index": index,
            "cmd": {"client": client, "seq": seq, "op": "set", "key": key, "value": value}}


class Sender:
    """A UDP socket for sending forged datagrams, bound to `bind` (e.g. a killed peer's address) or anywhere."""

    def __init__(self, bind: Optional[tuple] = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind or (HOST, 0))

    def send(self, data: bytes, to: tuple) -> None:
        self.sock.sendto(data, to)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
