"""A record of client operations, for the checkers in checks.py.

Every operation is stored with the monotonic time it was invoked and the time
its outcome was known, the command, and the outcome. Two operations overlap
in real time when neither completed before the other was invoked; checkers
use that to know which orders were possible.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional

from .client import OK, UNAVAILABLE, Result


@dataclass(frozen=True)
class Op:
    client: str
    seq: int
    op: str                     # get / set / cas / delete
    key: str
    value: Optional[str]        # set, cas: the value written
    expected: Optional[str]     # cas
    consistency: Optional[str]  # get
    invoked: float
    completed: float
    outcome: str                # ok / cas_failed / rejected / unavailable
    result: Optional[str]       # the reply's value
    node: Optional[str]

    @property
    def is_write(self) -> bool:
        return self.op in ("set", "cas", "delete")

    @property
    def indefinite(self) -> bool:
        return self.outcome == UNAVAILABLE

    def __str__(self) -> str:
        args = self.key if self.op in ("get", "delete") else f"{self.key}={self.value!r}"
        if self.op == "cas":
            args = f"{self.key}: {self.expected!r}->{self.value!r}"
        res = f" -> {self.result!r}" if self.outcome == OK or self.op == "cas" else ""
        return (f"[{self.invoked:.3f}-{self.completed:.3f}] {self.client} #{self.seq} "
                f"{self.op} {args}: {self.outcome}{res} (via {self.node})")


class History:
    """Thread-safe list of Ops. Clients record into it (Client(history=...)).

    Times are stored in seconds since `origin` (a time.monotonic() value;
    Cluster.history() uses the cluster's start, so the times in a checker's
    message match those of the fault timeline).
    """

    def __init__(self, origin: Optional[float] = None):
        self.origin = time.monotonic() if origin is None else origin
        self._lock = threading.Lock()
        self._ops: list[Op] = []

    def record(self, client_id: str, msg: dict, result: Result) -> Op:
        op = Op(client=client_id, seq=msg["seq"], op=msg["op"], key=msg.get("key"),
                value=msg.get("value"), expected=msg.get("expected"),
                consistency=msg.get("consistency"), invoked=result.invoked - self.origin,
                completed=result.completed - self.origin, outcome=result.outcome, result=result.value,
                node=result.node)
        with self._lock:
            self._ops.append(op)
        return op

    @property
    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)

    def for_key(self, key: str) -> list[Op]:
        return sorted((o for o in self.ops if o.key == key), key=lambda o: o.invoked)

    def keys(self) -> list[str]:
        return sorted({o.key for o in self.ops if o.is_write})

    def count(self, op: Optional[str] = None, outcome: Optional[str] = None) -> int:
        return sum(1 for o in self.ops
                   if (op is None or o.op == op) and (outcome is None or o.outcome == outcome))

    def acked_writes(self) -> list[Op]:
        return [o for o in self.ops if o.is_write and o.outcome == OK]

    def summary(self) -> str:
        ops = self.ops
        by = {}
        for o in ops:
            by[(o.op, o.outcome)] = by.get((o.op, o.outcome), 0) + 1
        parts = [f"{op} {outcome}: {n}" for (op, outcome), n in sorted(by.items())]
        return f"{len(ops)} ops (" + ", ".join(parts) + ")"
