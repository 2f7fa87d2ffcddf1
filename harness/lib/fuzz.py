"""A datagram fuzz campaign against a live cluster under load.

While clients write and read, a fuzzer sends the nodes a bounded number of
hostile datagrams, chosen at random (from the seed) among these kinds:

    random        random bytes, 0-1,400 of them
    plain         well-formed peer messages of every type with plausible and
                  extreme numbers, without a MAC (what an outsider can send)
    bad_key       the same, sealed with a key that is not the cluster's
    flipped       sealed with the cluster key, then one to eight bits flipped
    truncated     sealed with the cluster key, then cut short
    insider       sealed with the cluster key but breaking a wire rule
                  (numbers >= 2^53, bad entries, wrong types) or well formed
                  and sent from an address that is no peer's: what a key
                  holder on another port can send
    client        broken client_request and status datagrams

The campaign then checks what issue 7 demands: no node crashed or stopped
answering status (a hang), no term changed, and every acknowledged write
reads back. `run()` returns the figures; `harness/fuzz_campaign.py` prints
them, and a short campaign runs in the test suite.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field

from . import forge
from .client import OK

KINDS = ("random", "plain", "bad_key", "flipped", "truncated", "insider", "client")


@dataclass
class Figures:
    datagrams: int = 0
    by_kind: dict = field(default_factory=lambda: {k: 0 for k in KINDS})
    seconds: float = 0.0
    writes_acked: int = 0
    reads_ok: int = 0
    lost_writes: list = field(default_factory=list)
    crashes: list = field(default_factory=list)
    hangs: list = field(default_factory=list)
    term_changes: list = field(default_factory=list)
    peer_drops: dict = field(default_factory=dict)

    def ok(self) -> bool:
        return not (self.lost_writes or self.crashes or self.hangs or self.term_changes)

    def summary(self) -> str:
        rate = self.datagrams / self.seconds if self.seconds else 0
        lines = [f"datagrams: {self.datagrams} in {self.seconds:.1f} s ({rate:,.0f}/s): "
                 + ", ".join(f"{k} {v}" for k, v in self.by_kind.items()),
                 f"load: {self.writes_acked} writes acknowledged, {self.reads_ok} linearizable reads ok",
                 f"crashes: {len(self.crashes)}  hangs: {len(self.hangs)}  term changes: {len(self.term_changes)}  "
                 f"lost acknowledged writes: {len(self.lost_writes)}"]
        for n, drops in sorted(self.peer_drops.items()):
            lines.append(f"{n} peer_drops: " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items()) if v))
        for what in ("crashes", "hangs", "term_changes", "lost_writes"):
            for item in getattr(self, what)[:5]:
                lines.append(f"  {what}: {item}")
        return "\n".join(lines)


class _Generator:
    def __init__(self, rng: random.Random, ids: list, cluster_id: str, key: bytes):
        self.rng, self.ids, self.cluster_id, self.key = rng, ids, cluster_id, key
        self.wrong_key = bytes(rng.randrange(256) for _ in range(32))
        self.term, self.last = 1, 1

    def number(self) -> int:
        r = self.rng.random()
        if r < 0.6:
            return self.rng.randrange(0, self.last + 3)
        if r < 0.7:
            return self.term + self.rng.randrange(0, 3)
        return self.rng.choice([forge.WIRE_MAX, forge.WIRE_MAX + 1, forge.U64_MAX, 2**63, 10**18, 2**32])

    def message(self, dest: str) -> dict:
        rng, src = self.rng, self.rng.choice([i for i in self.ids if i != dest] or self.ids)
        term = rng.choice([self.term, self.term + 1, self.term + 100, self.number()])
        kind = rng.randrange(4)
        if kind == 0:
            return forge.request_vote(src, dest, term, last=(self.number(), self.number()), pre_vote=rng.random() < 0.5)
        if kind == 1:
            return {"type": "request_vote_reply", "src": src, "dest": dest, "term": term,
                    "vote_granted": True, "pre_vote": rng.random() < 0.5}
        if kind == 2:
            prev = self.number()
            entries = [forge.command_entry(rng.choice([term, term - 1, 0]), prev + 1 + i, "fz", "forged")
                       for i in range(rng.randrange(0, 3))]
            return forge.append_entries(src, dest, term, prev=(prev, self.number()), entries=entries,
                                        commit=self.number(), read_round=self.number())
        return forge.append_reply(src, dest, term, success=rng.random() < 0.7, match=self.number(),
                                  read_round=self.number(), reject=self.number())

    def broken(self, msg: dict) -> dict:
        """A copy of msg that breaks one wire rule."""
        rng, m = self.rng, dict(msg)
        numeric = [k for k, v in m.items() if isinstance(v, int) and not isinstance(v, bool)]
        choice = rng.randrange(5)
        if choice == 0 and numeric:
            m[rng.choice(numeric)] = rng.choice([forge.WIRE_MAX + 1, forge.U64_MAX, -1, 1.5, "7", None])
        elif choice == 1 and numeric:
            del m[rng.choice(numeric)]
        elif choice == 2:
            m["type"] = rng.choice(["append_entries", "request_vote", "gossip", 5])
        elif choice == 3:
            m = forge.append_entries(m["src"], m["dest"], self.term, prev=(self.last, self.term),
                                     entries=[forge.command_entry(self.term + 1, self.last + 2, "fz", "gap")])
        else:
            m["entries"] = rng.choice(["many", [1, 2], [{"term": 1}], {"index": 1}])
        return m

    def datagram(self, kind: str, dest: str) -> bytes:
        rng = self.rng
        if kind == "random":
            return os.urandom(rng.randrange(0, 1400))
        if kind == "client":
            msg = {"type": rng.choice(["client_request", "status"]), "src": f"fz{rng.randrange(100)}", "dest": dest,
                   "seq": self.number(), "op": rng.choice(["get", "set", "cas", "delete", "incr", 3]),
                   "key": rng.choice(["", "k", 5, None]), "value": rng.choice(["v", 1, None])}
            if rng.random() < 0.5:
                del msg[rng.choice(list(msg))]
            return forge.plain(msg)
        msg = self.message(dest)
        if kind == "plain":
            return forge.plain(msg)
        if kind == "bad_key":
            return forge.seal(msg, self.cluster_id, self.wrong_key)
        if kind == "insider":
            return forge.seal(self.broken(msg) if rng.random() < 0.7 else msg, self.cluster_id, self.key)
        sealed = bytearray(forge.seal(msg, self.cluster_id, self.key))
        if kind == "flipped":
            for _ in range(rng.randrange(1, 9)):
                sealed[rng.randrange(len(sealed))] ^= 1 << rng.randrange(8)
            return bytes(sealed)
        return bytes(sealed[:rng.randrange(0, len(sealed))])  # truncated


def _load(cluster, stop: threading.Event, figures: Figures, acked: dict, lock: threading.Lock, worker: int):
    client = cluster.client(deadline=5.0)
    i = 0
    while not stop.is_set():
        key, value = f"w{worker}-{i}", str(i)
        r = client.set(key, value)
        if r.outcome == OK:
            with lock:
                acked[key] = value
                figures.writes_acked += 1
        g = client.get(key)
        if g.outcome == OK:
            with lock:
                figures.reads_ok += 1
        i += 1


def run(cluster, datagrams: int, seed: int, max_seconds: float, rate_per_s: float = 20000,
        load_workers: int = 2, progress=None) -> Figures:
    """Fuzzes a started cluster (reference node, peer_auth) under load; bounded in count and time."""
    figures = Figures()
    rng = random.Random(seed)
    with open(cluster.path("configs", f"{cluster.ids[0]}.json")) as f:
        cluster_id = json.load(f)["cluster_id"]
    gen = _Generator(rng, cluster.ids, cluster_id, forge.read_key(cluster.path("configs", "cluster.key")))
    leader = cluster.wait_settled()
    start_terms = {n: s["term"] for n, s in cluster.status_all().items() if s}
    gen.term = max(start_terms.values())

    stop, lock, acked = threading.Event(), threading.Lock(), {}
    workers = [threading.Thread(target=_load, args=(cluster, stop, figures, acked, lock, w), daemon=True)
               for w in range(load_workers)]
    for w in workers:
        w.start()
    began = time.monotonic()
    next_poll = began
    try:
        with forge.Sender() as sender:
            targets = [cluster.private[n] for n in cluster.ids]
            for i in range(datagrams):
                now = time.monotonic()
                if now - began > max_seconds:
                    break
                if now >= next_poll:
                    next_poll = now + 0.5
                    _poll(cluster, start_terms, figures, gen, now - began)
                    if progress:
                        progress(i, now - began)
                kind = KINDS[rng.randrange(len(KINDS))]
                dest_index = rng.randrange(len(targets))
                try:
                    sender.send(gen.datagram(kind, cluster.ids[dest_index]), targets[dest_index])
                except OSError:
                    pass  # e.g. EMSGSIZE for a datagram the kernel refuses: not sent, not counted
                else:
                    figures.datagrams += 1
                    figures.by_kind[kind] += 1
                # Pace to rate_per_s so the flood tests the checks, not the scheduler of 2 cores.
                ahead = figures.datagrams / rate_per_s - (time.monotonic() - began)
                if ahead > 0.002:
                    time.sleep(ahead)
    finally:
        figures.seconds = time.monotonic() - began
        stop.set()
        for w in workers:
            w.join(10)
    _poll(cluster, start_terms, figures, gen, figures.seconds)
    cluster.wait_converged()
    reader = cluster.client(deadline=5.0)
    for key, value in sorted(acked.items()):
        r = reader.get(key)
        if not (r.outcome == OK and r.value == value):
            figures.lost_writes.append(f"{key}={value!r} acknowledged, read back {r}")
    for n, s in cluster.status_all().items():
        figures.peer_drops[n] = (s or {}).get("peer_drops", {})
    return figures


def _poll(cluster, start_terms: dict, figures: Figures, gen: _Generator, t: float) -> None:
    statuses = cluster.status_all(timeout=1.0)
    for n in cluster.ids:
        if not cluster.nodes[n].is_running():
            if not any(n in c for c in figures.crashes):
                figures.crashes.append(f"{n} at {t:.1f} s: {cluster.nodes[n].describe()}")
            continue
        s = statuses.get(n)
        if s is None:
            figures.hangs.append(f"{n} did not answer status within 1 s at {t:.1f} s")
            continue
        if s["term"] != start_terms.get(n):
            figures.term_changes.append(f"{n}: term {start_terms.get(n)} -> {s['term']} at {t:.1f} s")
            start_terms[n] = s["term"]
        gen.last = max(gen.last, s["last_log_index"])
