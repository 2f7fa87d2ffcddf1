"""The dashboard's view of the cluster, refreshed ten times a second.

One thread polls every node (status and log_tail, straight to the nodes),
the processes (up / paused / down, from /proc via the attached cluster) and
the proxy (state and counters), derives the events a person wants to see
(elections, leader changes, crashes, restarts) and publishes one JSON-ready
snapshot that the web server pushes to every page.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Optional

from harness.lib.checks import leader_of
from harness.lib.proxy import ProxyControl, ProxyError

from .network import RateMeter, link_view
from .probe import NodeProbe, tail_entries

POLL_INTERVAL_S = 0.1
MAX_EVENTS = 300


class Events:
    """A bounded, thread-safe strip of (time, kind, text)."""

    def __init__(self, t0: float):
        self.t0 = t0
        self._lock = threading.Lock()
        self._items: collections.deque = collections.deque(maxlen=MAX_EVENTS)
        self._seq = 0

    def add(self, kind: str, text: str) -> None:
        with self._lock:
            self._seq += 1
            self._items.append({"id": self._seq, "t": round(time.monotonic() - self.t0, 2),
                                "wall": time.strftime("%H:%M:%S"), "kind": kind, "text": text})

    def items(self) -> list:
        with self._lock:
            return list(self._items)


class Monitor:
    def __init__(self, target, events: Events, *, extra: Optional[Callable[[], dict]] = None,
                 on_tick: Optional[Callable[[], None]] = None, observing: Optional[Callable[[], bool]] = None):
        self.target = target        # harness.lib.attach.AttachedCluster
        self.events = events
        self.extra = extra          # more fields for the snapshot (load, scenario)
        self.on_tick = on_tick
        self.observing = observing  # true while a scenario runs: only then are statuses kept
        self.probe = NodeProbe(target.private)
        self.control = ProxyControl(target.control_addr, timeout=0.1, attempts=2)
        self.rates = RateMeter()
        self._snapshot: dict = {}
        self._version = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._prev: dict = {}
        self._prev_leader: Optional[str] = None
        self._prev_proc: dict = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dashboard-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(2.0)
        self.probe.close()
        self.control.close()

    def snapshot(self) -> tuple[int, dict]:
        with self._cond:
            return self._version, self._snapshot

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                snap = self._collect()
                with self._cond:
                    self._version += 1
                    self._snapshot = snap
                    self._cond.notify_all()
                if self.on_tick is not None:
                    self.on_tick()
            except Exception as e:  # keep watching; say what went wrong once per tick at most
                self.events.add("error", f"monitor: {type(e).__name__}: {e}")
            self._stop.wait(max(0.0, POLL_INTERVAL_S - (time.monotonic() - began)))

    def _collect(self) -> dict:
        t = self.target
        procs = {n: t.state(n) for n in t.ids}
        up = [n for n in t.ids if procs[n] == "up"]
        status, logs = self.probe.poll(up) if up else ({}, {})
        if self.observing is not None and self.observing():
            t._observe(status)  # feeds `expect one-leader-per-term` of the scenario running now
        try:
            pstate = self.control.call("state")
            pstats = self.control.call("stats").get("links", {})
            proxy_ok = True
        except ProxyError:
            pstate, pstats, proxy_ok = {}, {}, False
        now = time.monotonic()
        rates = self.rates.update(now, pstats)
        leader = leader_of(status, t.majority)
        self._derive_events(procs, status, leader)
        nodes = []
        for n in t.ids:
            s = status.get(n)
            if isinstance(s, dict):  # the page has no use for these; keep each push small
                s = {k: v for k, v in s.items() if k not in ("peer_drops", "type", "src", "dest")}
            nodes.append({"id": n, "process": procs[n], "status": s, "log": tail_entries(logs.get(n)),
                          "log_tail": logs.get(n) is not None or s is None,
                          "base_index": (logs.get(n) or {}).get("base_index"),
                          "last_index": (logs.get(n) or {}).get("last_index")})
        links = []
        for a in t.ids:
            for b in t.ids:
                if a != b:
                    view = link_view(pstate, a, b)
                    view.update({"from": a, "to": b, "rate": round(rates.get(f"{a}>{b}", 0.0), 1)})
                    links.append(view)
        snap = {"t": round(now - t.t0, 2), "ids": t.ids, "leader": leader, "nodes": nodes, "links": links,
                "proxy": {"ok": proxy_ok, "partition": pstate.get("partition"), "blocks": pstate.get("blocks", []),
                          "rules": pstate.get("rules", []),
                          "client_rate": round(sum(v for k, v in rates.items() if k.startswith("client>")), 1)},
                "events": self.events.items()}
        if self.extra is not None:
            snap.update(self.extra())
        return snap

    def _derive_events(self, procs: dict, status: dict, leader: Optional[str]) -> None:
        for n, p in procs.items():
            before = self._prev_proc.get(n)
            if before is not None and before != p:
                self.events.add("process", f"{n} is {p} (was {before})")
        self._prev_proc = dict(procs)
        for n, s in status.items():
            if not isinstance(s, dict):
                continue
            old = self._prev.get(n)
            if s.get("role") == "candidate" and (old is None or old.get("role") != "candidate"
                                                 or old.get("term") != s.get("term")):
                self.events.add("election", f"{n} campaigns (term {s.get('term')})")
            if s.get("role") == "leader" and (old is None or old.get("role") != "leader"
                                              or old.get("term") != s.get("term")):
                self.events.add("leader", f"{n} won the election: leader of term {s.get('term')}")
            self._prev[n] = s
        if leader is not None and leader != self._prev_leader:
            self.events.add("leader", f"cluster leader is now {leader}"
                            + (f" (was {self._prev_leader})" if self._prev_leader else ""))
            self._prev_leader = leader
