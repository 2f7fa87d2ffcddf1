"""A recorded key-value workload, written as a history for `lincheck` (docs/lincheck.md).

`Recorder` runs concurrent client threads, each with its own client id (one
`Client`, so one outstanding seq at a time), doing random get / set / cas /
delete over a small key set with values that are never reused. For every
operation it records, on one clock (`time.monotonic_ns`, in microseconds
since the recorder's origin):

- `invoke_us`: taken just before the client sends the first datagram;
- `complete_us`: taken just after the client got its final answer, or gave up;
- `outcome`: `ok`, `fail` or `unknown`, and the reply's `result` / `error`.

The outcome is `fail` only when the reply is *definite*: `cas_failed` (the
cas read the key and did not apply; the checker still uses what it read), or
`bad_request` / `too_large` (the command was refused). Everything else that
is not `ok` is `unknown`: a client that timed out, or that only ever heard
`not_leader`, cannot know whether some attempt reached a leader that
appended the command and will still commit it. The checker lets an unknown
write take effect at any instant after its invocation, or never.

    rec = Recorder(cluster, clients=4, keys=5).start()
    ...                                   # inject faults
    rec.stop()
    rec.final_reads(cluster.client())     # every key once more, recorded too
    path = rec.write_jsonl(os.path.join(cluster.dir, "history.jsonl"))
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from typing import Optional

from .client import CAS_FAILED, OK, REJECTED, Client, Result

# Mix of operations (weights): mostly reads and blind writes, some cas, a few deletes.
DEFAULT_MIX = (("get", 0.40), ("set", 0.30), ("cas", 0.20), ("delete", 0.10))


def outcome_fields(result: Result) -> dict:
    """lincheck's outcome / result / error fields for one client Result.

    ok          -> outcome ok, result = the reply's value
    cas_failed  -> outcome fail, error cas_failed, result = the current value it reported
    rejected    -> outcome fail, error bad_request / too_large (did not happen)
    anything else (timeout; not_leader until the deadline) -> outcome unknown
    """
    if result.outcome == OK:
        return {"outcome": "ok", "result": result.value}
    if result.outcome == CAS_FAILED:
        fields = {"outcome": "fail", "error": "cas_failed"}
        if result.reply is not None and "value" in result.reply:
            fields["result"] = result.value
        return fields
    if result.outcome == REJECTED:
        return {"outcome": "fail", "error": result.error or "rejected"}
    fields = {"outcome": "unknown"}
    if result.error:
        fields["error"] = result.error  # e.g. the last not_leader: for the reader, not the checker
    return fields


class Recorder:
    """Concurrent random KV clients recording a lincheck history. Thread-safe."""

    def __init__(self, cluster, *, clients: int = 4, keys: int = 5, deadline: float = 2.0,
                 request_timeout: Optional[float] = None, mix=DEFAULT_MIX, think: tuple = (0.0, 0.01),
                 rng: Optional[random.Random] = None, prefix: str = "k", origin_ns: Optional[int] = None):
        self.cluster = cluster
        self.n_clients = clients
        self.keys = [f"{prefix}{i}" for i in range(keys)]
        self.deadline = deadline
        self.request_timeout = request_timeout
        self.ops_names = [m[0] for m in mix]
        self.weights = [m[1] for m in mix]
        self.think = think
        self.rng = rng or random.Random(cluster.rng.random())
        # Times count from the cluster's creation, like its fault timeline.
        self.origin_ns = origin_ns if origin_ns is not None else int(cluster.t0 * 1e9)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._ops: list[dict] = []
        self._last_value: dict[str, Optional[str]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self.clients: list[Client] = []

    # -- recording ---------------------------------------------------------------

    def now_us(self) -> int:
        return (time.monotonic_ns() - self.origin_ns) // 1000

    def run_op(self, client: Client, op: str, key: str, value: Optional[str] = None,
               expected: Optional[str] = None, **kw) -> Result:
        """Run one operation through `client` and record it. Returns the client's Result."""
        op_id = next(self._ids)
        invoke = self.now_us()
        if op == "get":
            result = client.get(key, **kw)
        elif op == "set":
            result = client.set(key, value, **kw)
        elif op == "cas":
            result = client.cas(key, expected, value, **kw)
        elif op == "delete":
            result = client.delete(key, **kw)
        else:
            raise ValueError(f"unknown op {op!r}")
        complete = self.now_us()
        entry = {"id": op_id, "client": client.client_id, "op": op, "key": key}
        if op in ("set", "cas"):
            entry["value"] = value
        if op == "cas":
            entry["expected"] = expected
        entry["invoke_us"] = invoke
        entry["complete_us"] = complete
        entry.update(outcome_fields(result))
        entry["node"] = result.node   # ignored by lincheck; shown in its tooltips
        entry["seq"] = result.seq
        with self._lock:
            self._ops.append(entry)
            if result.outcome == OK:
                self._last_value[key] = None if op == "delete" else (result.value if op == "get" else value)
        return result

    # -- the workload --------------------------------------------------------------

    def start(self) -> "Recorder":
        for i in range(self.n_clients):
            kw = {"deadline": self.deadline}
            if self.request_timeout is not None:
                kw["request_timeout"] = self.request_timeout
            client = self.cluster.client(**kw)
            self.clients.append(client)
            t = threading.Thread(target=self._run, args=(i, client, random.Random(self.rng.random())),
                                 name=f"recorder-{i}", daemon=True)
            self._threads.append(t)
        for t in self._threads:
            t.start()
        return self

    def _run(self, i: int, client: Client, rng: random.Random) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                n += 1
                key = rng.choice(self.keys)
                op = rng.choices(self.ops_names, self.weights)[0]
                value = f"c{i}.{n}"  # unique across the whole history
                if op == "cas":
                    with self._lock:
                        known = self._last_value.get(key)
                    # Mostly a value the key plausibly holds (so some cas succeed), sometimes a stale one.
                    expected = known if known is not None and rng.random() < 0.8 else f"c{rng.randrange(self.n_clients)}.{rng.randrange(1, n + 1)}"
                    self.run_op(client, op, key, value=value, expected=expected)
                elif op == "set":
                    self.run_op(client, op, key, value=value)
                else:
                    self.run_op(client, op, key)
                if self.think[1] > 0:
                    self._stop.wait(rng.uniform(*self.think))
        except BaseException as e:  # reported by stop()
            self._errors.append(e)

    def stop(self) -> None:
        """Stop the threads; each finishes (and records) the operation it is in."""
        self._stop.set()
        for t in self._threads:
            t.join(self.deadline + 3.0)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"recorder threads did not stop: {alive}"
        if self._errors:
            raise self._errors[0]

    def final_reads(self, client: Client, deadline: float = 5.0) -> list[Result]:
        """Read every key once (recorded): after healing, every acknowledged write must show."""
        return [self.run_op(client, "get", key, deadline=deadline) for key in self.keys]

    # -- results ---------------------------------------------------------------------

    @property
    def ops(self) -> list[dict]:
        with self._lock:
            return list(self._ops)

    def reply_mismatches(self) -> list:
        """Replies to one write seq that differ (exactly-once answers "with the reply it gave then")."""
        out = []
        for c in self.clients:
            out += [(c.client_id, a, b) for a, b in c.reply_mismatches]
        return out

    def count(self, op: Optional[str] = None, outcome: Optional[str] = None) -> int:
        return sum(1 for o in self.ops if (op is None or o["op"] == op) and (outcome is None or o["outcome"] == outcome))

    def summary(self) -> str:
        by: dict = {}
        for o in self.ops:
            k = (o["op"], o["outcome"] if o.get("error") != "cas_failed" else "cas_failed")
            by[k] = by.get(k, 0) + 1
        parts = [f"{op} {outcome}: {n}" for (op, outcome), n in sorted(by.items())]
        return f"{sum(by.values())} ops on {len(self.keys)} keys by {len(self.clients)} clients (" + ", ".join(parts) + ")"

    def write_jsonl(self, path: str) -> str:
        """Write the history, one operation a line, in invocation order; returns `path`."""
        ops = sorted(self.ops, key=lambda o: (o["invoke_us"], o["id"]))
        with open(path, "w", encoding="utf-8") as f:
            for o in ops:
                f.write(json.dumps(o, sort_keys=True) + "\n")
        return path
