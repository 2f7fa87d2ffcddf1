"""What the clients saw: operations from the page's form and its background
load, all recorded on one clock in lincheck's history format
(harness/lib/recorder.py), and checked with `./lincheck` on request.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Optional

from harness.lib.linearizability import check_history
from harness.lib.recorder import Recorder

from .controls import BadRequest, Conflict, _field

MAX_LOAD_CLIENTS = 16
MAX_HISTORY_OPS = 200_000     # the load stops itself beyond this (lincheck stays fast)
MAX_KEY_BYTES = 256
MAX_VALUE_BYTES = 1024
SERIES_POINTS = 120           # one point every 0.5 s: the last minute
CHECK_BUDGET_S = 20.0
MAX_CHECKS_KEPT = 50


def _percentile(sorted_values: list, q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Workload:
    def __init__(self, target, events, out_dir: str):
        self.t = target
        self.events = events
        self.out_dir = out_dir
        self.origin_ns = int(target.t0 * 1e9)
        self.form = Recorder(target, clients=0, origin_ns=self.origin_ns)
        self._form_client = None
        self._form_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.loads: list[Recorder] = []
        self.load: Optional[Recorder] = None
        self.series: list = []
        self._last_point = 0.0
        self.checks = 0
        self.last_check: Optional[dict] = None

    # -- one operation from the form ------------------------------------------------------

    def op(self, body: dict) -> dict:
        op = _field(body, "op", str)
        if op not in ("get", "set", "cas", "delete"):
            raise BadRequest(f"unknown op {op!r} (known: get, set, cas, delete)")
        key = _field(body, "key", str)
        if not key or len(key.encode()) > MAX_KEY_BYTES:
            raise BadRequest(f"field 'key' must be 1 to {MAX_KEY_BYTES} bytes")
        node = _field(body, "node", str)
        if node not in self.t.ids:
            raise BadRequest(f"unknown node {node!r} in field 'node' (known: {', '.join(self.t.ids)})")
        value = expected = None
        if op in ("set", "cas"):
            value = _field(body, "value", str)
            if len(value.encode()) > MAX_VALUE_BYTES:
                raise BadRequest(f"field 'value' is over {MAX_VALUE_BYTES} bytes")
        if op == "cas":
            expected = _field(body, "expected", str)
        with self._form_lock:
            if self._form_client is None:
                self._form_client = self.t.client(deadline=3.0)
            r = self.form.run_op(self._form_client, op, key, value=value, expected=expected, node=node)
        redirects = [a for a in r.attempts if "->" in a or "timeout" in a]
        self.events.add("client", f"{op} {key} at {node}: {r.outcome}"
                        + (f" {r.value!r}" if r.outcome != "unavailable" else "") + f" from {r.node}")
        return {"op": op, "key": key, "sent_to": node, "outcome": r.outcome,
                "value": r.value, "error": r.error, "node": r.node, "attempts": r.attempts,
                "redirects": redirects, "latency_ms": round(r.latency * 1000, 2), "seq": r.seq}

    # -- background load ------------------------------------------------------------------

    def start_load(self, body: dict) -> dict:
        n = _field(body, "clients", int, required=False, default=4)
        if not 1 <= n <= MAX_LOAD_CLIENTS:
            raise BadRequest(f"field 'clients' must be in [1, {MAX_LOAD_CLIENTS}], got {n}")
        with self._load_lock:
            if self.load is not None:
                raise Conflict("a load is running: stop it first")
            if self._ops_recorded() >= MAX_HISTORY_OPS:
                raise Conflict(f"the history holds {MAX_HISTORY_OPS} operations already: restart the dashboard")
            rec = Recorder(self.t, clients=n, keys=5, deadline=2.0, origin_ns=self.origin_ns,
                           prefix=f"L{len(self.loads) + 1}.k")
            self.loads.append(rec)
            self.load = rec.start()
        self.events.add("client", f"load started: {n} clients")
        return {"clients": n}

    def stop_load(self, body: Optional[dict] = None) -> dict:
        with self._load_lock:
            rec, self.load = self.load, None
        if rec is None:
            return {"stopped": False}
        rec.stop()
        for c in rec.clients:  # one socket each: a page that starts many loads must not run out
            c.close()
        self.events.add("client", f"load stopped: {rec.summary()}")
        return {"stopped": True, "summary": rec.summary()}

    def _ops_recorded(self) -> int:
        return len(self.form.ops) + sum(len(r.ops) for r in self.loads)

    def tick(self) -> None:
        """Called by the monitor: one chart point every 0.5 s; stops a load that grew too long."""
        now = time.monotonic()
        if now - self._last_point < 0.5:
            return
        self._last_point = now
        rec = self.load
        if rec is None:
            point = {"t": round(now - self.t.t0, 1), "ops_s": 0, "p50_ms": None, "p99_ms": None}
        else:
            horizon = (time.monotonic_ns() - self.origin_ns) // 1000 - 1_000_000
            recent = [o for o in rec.ops if o["complete_us"] >= horizon]
            lat = sorted((o["complete_us"] - o["invoke_us"]) / 1000 for o in recent if o["outcome"] == "ok")
            point = {"t": round(now - self.t.t0, 1), "ops_s": len([o for o in recent if o["outcome"] == "ok"]),
                     "p50_ms": round(_percentile(lat, 0.5), 2) if lat else None,
                     "p99_ms": round(_percentile(lat, 0.99), 2) if lat else None}
            if self._ops_recorded() >= MAX_HISTORY_OPS:
                threading.Thread(target=self.stop_load, daemon=True).start()
        self.series.append(point)
        del self.series[:-SERIES_POINTS]

    def view(self) -> dict:
        rec = self.load
        return {"load": {"running": rec is not None, "clients": rec.n_clients if rec else 0,
                         "ops": self._ops_recorded(), "series": list(self.series)},
                "check": self.last_check}

    # -- the check ------------------------------------------------------------------------

    def check(self) -> dict:
        """Stop the load (no operation may be in flight: a write still pending could already have
        been read), write every operation recorded so far as one history, run lincheck on it."""
        self.stop_load()
        with self._form_lock:
            ops = self.form.ops + [o for r in self.loads for o in r.ops]
        if not ops:
            raise Conflict("no operation recorded yet: send one from the form or start the load")
        ops.sort(key=lambda o: (o["invoke_us"], o["complete_us"]))
        self.checks += 1
        n = self.checks
        os.makedirs(self.out_dir, exist_ok=True)
        history = os.path.join(self.out_dir, f"check-{n}.jsonl")
        html = os.path.join(self.out_dir, f"check-{n}.html")
        with open(history, "w", encoding="utf-8") as f:
            for i, o in enumerate(ops, 1):
                f.write(json.dumps(dict(o, id=i), sort_keys=True) + "\n")
        if n > MAX_CHECKS_KEPT:
            for ext in ("jsonl", "html"):
                try:
                    os.remove(os.path.join(self.out_dir, f"check-{n - MAX_CHECKS_KEPT}.{ext}"))
                except OSError:
                    pass
        v = check_history(history, html=html, budget_s=CHECK_BUDGET_S)
        summary = {"ok": f"linearizable: {len(ops)} ops, checked in {v.seconds:.3f} s",
                   "violation": "NOT linearizable: " + ((v.text or "").strip().splitlines() or [""])[0],
                   "unknown": f"undecided: lincheck's budget of {CHECK_BUDGET_S:g} s ran out (not a pass)",
                   }.get(v.verdict, f"error: {v.text}")
        self.last_check = {"n": n, "verdict": v.verdict, "ops": len(ops), "seconds": round(v.seconds, 3),
                           "summary": summary,
                           "text": (v.text or "")[:4000],
                           "html": f"/checks/check-{n}.html" if os.path.exists(html) else None,
                           "history": f"/checks/check-{n}.jsonl"}
        self.events.add("check", f"lincheck: {self.last_check['summary']}")
        return self.last_check
