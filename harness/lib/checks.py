"""Checkers for histories and cluster observations.

The register check
------------------
Each key is a register written by set / cas / delete. A linearizable read r
of a key may return the value of a write w only if w could be the last write
ordered before r:

- w was invoked before r completed (it cannot take effect later than that
  and still be seen by r);
- if w was acknowledged, no other acknowledged write w2 started after w
  completed and finished before r started (then w2 certainly overwrote w);
- an unacknowledged (indefinite) write may take effect at any time after its
  invocation, even long after the client gave up, so it is never ruled out;
- writes with a definite "no" (cas_failed, rejected) never count.

The initial value (absent, read as None) is possible only while no
acknowledged write had completed before r started. This is a necessary
condition for linearizability, exact for the workloads the tests use (one
writer per key, unique values): it never flags a correct history, and it
catches lost acknowledged writes, stale reads, values that were never
written, and writes that came back from a discarded log.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Iterable, Optional

from .client import OK, UNAVAILABLE, Client
from .history import History, Op

ABSENT = None


def _written_value(w: Op) -> Optional[str]:
    return None if w.op == "delete" else w.value


def possible_values(writes: list[Op], read: Op) -> tuple[set, list[Op]]:
    """The values `read` may return, and the writes that could have produced them."""
    # The latest start of an acknowledged write that finished before the read
    # began: any acknowledged write that completed before that start was
    # certainly overwritten before the read.
    finished_before = [w.invoked for w in writes if w.outcome == OK and w.completed < read.invoked]
    horizon = max(finished_before, default=float("-inf"))
    candidates = []
    for w in writes:
        if w.outcome not in (OK, UNAVAILABLE) or w.invoked >= read.completed:
            continue
        if w.outcome == OK and w.completed < horizon:
            continue
        candidates.append(w)
    values = {_written_value(w) for w in candidates}
    if not finished_before:
        values.add(ABSENT)
    return values, candidates


def check_registers(history: History) -> list[str]:
    """Every ok linearizable read against the register rule above; one line per violation."""
    writes_by_key: dict[str, list[Op]] = defaultdict(list)
    reads: list[Op] = []
    for o in history.ops:
        if o.is_write:
            writes_by_key[o.key].append(o)
        elif o.op == "get" and o.outcome == OK and o.consistency != "local":
            reads.append(o)
    violations = []
    for r in sorted(reads, key=lambda o: o.invoked):
        values, candidates = possible_values(writes_by_key[r.key], r)
        if r.result not in values:
            shown = "\n      ".join(str(w) for w in writes_by_key[r.key][-8:]) or "(none)"
            violations.append(
                f"read {r}\n    returned {r.result!r}, but only {sorted(values, key=repr)} were possible;"
                f" last writes of {r.key!r}:\n      {shown}")
    return violations


def assert_registers_linearizable(history: History) -> None:
    """Fail with the first violations of check_registers, if any."""
    __tracebackhide__ = True
    violations = check_registers(history)
    assert not violations, (f"{len(violations)} read(s) saw a value that no correct store could return "
                            f"({history.summary()}):\n" + "\n".join(violations[:5]))


def read_back_all(client: Client, history: History, keys: Optional[Iterable[str]] = None,
                  deadline: float = 5.0) -> None:
    """Read every written key with a linearizable get (recorded in `history`), then check.

    This is the "every acknowledged write reads back" check: the final read of
    a key must return its last acknowledged value, or the value of a later
    write whose outcome was unknown. A key that cannot be read back at all
    within `deadline` also fails.
    """
    __tracebackhide__ = True
    client.history = history
    unreadable = []
    for key in (sorted(keys) if keys is not None else history.keys()):
        r = client.get(key, deadline=deadline)
        if not r.ok:
            unreadable.append(f"{key}: {r}")
    assert not unreadable, f"final reads got no answer: {unreadable[:5]}"
    assert_registers_linearizable(history)


def assert_acked_writes_survive(client: Client, history: History, deadline: float = 5.0) -> None:
    """Alias with the name the tests speak: read back every key and check it."""
    __tracebackhide__ = True
    read_back_all(client, history, deadline=deadline)
    assert history.count(outcome=OK) > 0, "no operation was acknowledged at all"


def leaders_by_term(observations: Iterable[tuple[float, str, dict]]) -> dict[int, set[str]]:
    """{term: ids that reported role=leader in that term} from (time, node, status) samples."""
    out: dict[int, set[str]] = defaultdict(set)
    for _, node, s in observations:
        if s and s.get("role") == "leader" and isinstance(s.get("term"), int):
            out[s["term"]].add(node)
    return dict(out)


def assert_one_leader_per_term(observations: list[tuple[float, str, dict]]) -> None:
    """Election Safety (Raft §5.2, Figure 3): at most one leader in any term."""
    __tracebackhide__ = True
    by_term = leaders_by_term(observations)
    bad = {t: sorted(ids) for t, ids in by_term.items() if len(ids) > 1}
    assert not bad, f"two leaders in the same term (term: leaders): {bad}"


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll `predicate()` until it returns something truthy; returns it, or None on timeout."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


def assert_ok(result, what: str = "request") -> None:
    """The request must have been acknowledged; the message shows what happened instead."""
    __tracebackhide__ = True
    assert result.ok, f"{what}: expected ok, got {result}"


def assert_not_acked(result, what: str = "request") -> None:
    """The request must NOT have been acknowledged (it could not have been committed)."""
    __tracebackhide__ = True
    assert not result.ok, f"{what}: was acknowledged but must not be: {result}"


def leader_of(statuses: dict, majority: int) -> Optional[str]:
    """The leader these statuses establish: the only node claiming leadership in
    the highest term anyone claims it in, which a majority (it included) follows."""
    claims = [(s["term"], n) for n, s in statuses.items()
              if isinstance(s, dict) and s.get("role") == "leader" and isinstance(s.get("term"), int)]
    if not claims:
        return None
    top = max(t for t, _ in claims)
    leaders = [n for t, n in claims if t == top]
    if len(leaders) != 1:
        return None
    leader = leaders[0]
    agree = sum(1 for n, s in statuses.items() if isinstance(s, dict) and s.get("term") == top
                and (n == leader or s.get("leader") == leader))
    return leader if agree >= majority else None
