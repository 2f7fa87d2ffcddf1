"""The snapshot lab: log compaction, seen from outside (PROTOCOL.md v1.1 "Snapshots").

A node that compacts its log (Raft §7) replaces the applied prefix of its log
by a snapshot of the state machine once about `snapshot_threshold_entries`
entries have been applied since its last snapshot (a server config
`params` field). A follower too far behind, or a new node with an empty
`data_dir`, then gets the snapshot instead of entries the leader no longer
has. These tests set the threshold small and check, through PROTOCOL.md
only (client requests, `status`, signals, the fault proxy and the sizes of
files under each `data_dir`), that:

- `data_dir` stays bounded under sustained writes to a few keys;
- a follower partitioned while far more than the threshold commits catches up;
- a node started with an empty `data_dir` after compaction catches up;
- kill -9 of every node at random moments, while snapshots are taken, loses
  no acknowledged write;
- exactly-once answers (client sessions) survive a snapshot and a restart;
- duplicated, delayed and reordered datagrams (stale snapshots among them)
  never roll a node back.

Which nodes are tested. The lab runs when the node is the reference node
(`settings.is_reference`) or when `--snapshots` is given (the node claims
log compaction). For any other node every test is skipped with "node does
not claim snapshot support; pass --snapshots". A node that never compacts
fails `test_data_dir_stays_bounded_under_sustained_writes`; the other tests
check correctness around snapshots and may pass without any.

Optional status field. When a node's `status_reply` carries `snapshot_index`
(PROTOCOL.md: 0 when none), the tests also check it: an integer, at most
`last_applied`, and above 0 once far more than the threshold was applied.
A node that does not report it is judged by the rest alone. Nothing here
uses the reference node's admin `snapshot` request or its
`snapshot_threshold_bytes`.

The data_dir bound. Every node's `data_dir` is measured as the sum of the
apparent sizes (`st_size`) of the regular files under it, sampled a few
times a second during the writes and once more after them; the allocated
size (`st_blocks` * 512) is shown beside it. The largest sample of any node
must stay at or below

    LIMIT = 32 MiB + 8 * (L + T * E)

    L  live data: sum of len(key) + len(value) over the latest value of each key
    T  snapshot_threshold_entries
    E  the largest command's bytes: len(key) + len(value) + 256 (framing)

while the test writes at least 3 * LIMIT bytes of keys and values in total
(T = 100, values of 12,000-14,336 bytes over 12 keys: L is about 160 KiB,
LIMIT about 44 MiB, and about 133 MiB are written). The bound is generous on purpose: the
32 MiB absorbs fixed overheads (the reference node preallocates its log in
4 MiB chunks and keeps an 8 MiB reserve file for a full disk; term, vote and
identity files), and the factor 8 lets a node keep the live snapshot and
briefly a second one while replacing it, its log up to the threshold plus
some trailing entries kept for slow followers, and log space it
preallocated or has not yet reclaimed. A log that is never compacted grows
with everything written and crosses it; the writes then stop early, once
a data_dir has reached twice the limit, since the verdict is known.
"""

from __future__ import annotations

import os
import random
import stat
import threading
import time
from typing import Optional

import pytest

from .lib.checks import assert_acked_writes_survive, assert_ok, wait_until
from .lib.client import OK, REJECTED, Client, StatusProbe
from .lib.cluster import ClusterError
from .lib.workload import fill

MiB = 1024 * 1024
KiB = 1024
FRAMING = 256            # E = len(key) + len(value) + FRAMING
BASE_ALLOWANCE = 32 * MiB
SLACK = 8
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
BALLAST_VALUE = 14_000   # a state bigger than one datagram: snapshots need several


@pytest.fixture(autouse=True)
def _needs_snapshot_support(settings):
    if not (settings.is_reference or settings.snapshots):
        pytest.skip("node does not claim snapshot support; pass --snapshots "
                    f"(and it is not the reference node: {settings.not_reference_reason})")


def _params(threshold: int) -> dict:
    return {"snapshot_threshold_entries": threshold}


def data_dir_limit(live_bytes: int, threshold: int, largest_command: int) -> int:
    """LIMIT = 32 MiB + 8 * (L + T * E), in bytes (see the module docstring)."""
    return BASE_ALLOWANCE + SLACK * (live_bytes + threshold * largest_command)


# -- workload: one sequential writer per key, values carry a counter ----------------------


def counter_of(value: Optional[str]) -> int:
    """The counter a writer put in `value` ("key#00000042|..."); -1 for an absent key."""
    if value is None:
        return -1
    try:
        return int(value.split("#", 1)[1][:8])
    except (IndexError, ValueError):
        return -2  # not a value this lab wrote


class KeyWriters:
    """One thread per key, the only writer of that key: `set key = "key#<counter>|<filler>"`
    again and again, the counter growing by one per write, each value sized at random within
    `value_bytes`. With `history`, every request is recorded for the checkers.

    A History records an operation when it completes, so a check must not run
    while a write is in flight: `pause()` lets every thread finish its current
    request and waits for them; `resume()` lets them go on.
    """

    def __init__(self, cluster, keys: list[str], *, rng: random.Random, history=None,
                 value_bytes: tuple[int, int] = (64, 512), deadline: float = 2.0):
        self.cluster = cluster
        self.keys = list(keys)
        self.history = history
        self.value_bytes = value_bytes
        self.deadline = deadline
        self.rng = random.Random(rng.random())
        self.filler = "".join(self.rng.choice(ALPHABET) for _ in range(value_bytes[1] + 4096))
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._idle = threading.Condition()
        self._busy = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self.acked = 0
        self.unavailable = 0
        self.rejected: list[str] = []
        self.acked_bytes = 0                  # sum of len(key) + len(value) of acknowledged sets
        self.largest_command = 0              # max len(key) + len(value) sent
        self.last_len: dict[str, int] = {}    # len(value) of the latest value sent per key
        self.last_acked: dict[str, str] = {}  # the latest acknowledged value per key

    def value(self, key: str, i: int, rng: random.Random) -> str:
        head = f"{key}#{i:08d}|"
        size = max(len(head), rng.randint(*self.value_bytes))
        off = rng.randrange(len(self.filler) - size + 1)
        return head + self.filler[off:off + size - len(head)]

    def start(self) -> "KeyWriters":
        for key in self.keys:
            client = self.cluster.client(history=self.history, deadline=self.deadline)
            t = threading.Thread(target=self._run, args=(key, client, random.Random(self.rng.random())),
                                 name=f"writer-{key}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def _run(self, key: str, client, rng: random.Random) -> None:
        i = 0
        try:
            while not self._stop.is_set():
                if not self._go.wait(0.05):
                    continue
                with self._idle:
                    if not self._go.is_set():
                        continue
                    self._busy += 1
                try:
                    i += 1
                    v = self.value(key, i, rng)
                    with self._lock:
                        self.last_len[key] = len(v)
                        self.largest_command = max(self.largest_command, len(key) + len(v))
                    r = client.set(key, v)
                finally:
                    with self._idle:
                        self._busy -= 1
                        self._idle.notify_all()
                with self._lock:
                    if r.ok:
                        self.acked += 1
                        self.acked_bytes += len(key) + len(v)
                        self.last_acked[key] = v
                    elif r.outcome == REJECTED:
                        self.rejected.append(str(r))
                    else:
                        self.unavailable += 1
        except BaseException as e:  # reported by stop()
            self._errors.append(e)

    def pause(self) -> None:
        """Let each thread finish its current request, then hold them all (bounded wait)."""
        with self._idle:
            self._go.clear()
            self._idle.wait_for(lambda: self._busy == 0, self.deadline + 2.0)
            assert self._busy == 0, f"{self._busy} writer(s) still busy {self.deadline + 2.0:.0f} s after pause()"

    def resume(self) -> None:
        self._go.set()

    def stop(self) -> None:
        """Stop the threads (each finishes its current request)."""
        self._stop.set()
        self._go.set()
        for t in self._threads:
            t.join(self.deadline + 2.0)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"writer threads did not stop: {alive}"
        if self._errors:
            raise self._errors[0]
        assert not self.rejected, (f"the node rejected {len(self.rejected)} valid set(s) (values at most "
                                   f"{self.value_bytes[1]} bytes, PROTOCOL.md allows 16 KiB): {self.rejected[:3]}")

    def live_bytes(self) -> int:
        """L: sum of len(key) + len(value) of the latest value of each key (sent or acknowledged)."""
        with self._lock:
            return sum(len(k) + max(n, len(self.last_acked.get(k, ""))) for k, n in self.last_len.items())

    def summary(self) -> str:
        with self._lock:
            return (f"{self.acked} sets acknowledged ({self.acked_bytes / MiB:.1f} MiB), "
                    f"{self.unavailable} with unknown outcome, {len(self.rejected)} rejected")


def _write_ballast(cluster, history, count: int, rng: random.Random) -> list[str]:
    """`count` keys of BALLAST_VALUE bytes each, written once: the state no longer fits one datagram."""
    client = cluster.client(history=history)
    keys = [f"ballast-{i}" for i in range(count)]
    for i, key in enumerate(keys):
        value = f"{key}#{0:08d}|" + "".join(rng.choice(ALPHABET) for _ in range(BALLAST_VALUE))
        assert_ok(client.set(key, value, deadline=5.0), f"writing ballast key {key}")
    return keys


# -- observations ------------------------------------------------------------------------


def _int_field(status: Optional[dict], name: str) -> Optional[int]:
    v = status.get(name) if isinstance(status, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def assert_snapshot_index_sane(statuses: dict, *, after: str, at_least: int = 0) -> None:
    """Where a node reports snapshot_index: an integer in [at_least, last_applied]
    (at_least = 1 once far more than the threshold has been applied)."""
    __tracebackhide__ = True
    for n, s in sorted(statuses.items()):
        if not isinstance(s, dict) or "snapshot_index" not in s:
            continue
        si = s["snapshot_index"]
        assert isinstance(si, int) and not isinstance(si, bool) and si >= 0, (
            f"{n} reports snapshot_index {si!r}; expected a non-negative integer (PROTOCOL.md v1.1)")
        applied = _int_field(s, "last_applied")
        assert applied is None or si <= applied, (
            f"{n} reports snapshot_index {si} beyond its last_applied {applied}: a snapshot holds applied state only")
        assert si >= at_least, (
            f"{n} reports snapshot_index {si} {after}; expected at least {at_least}: "
            f"it says it never compacted that far (status: {s})")


def _snapshot_indexes(statuses: dict) -> str:
    parts = [f"{n} {s['snapshot_index']}" for n, s in sorted(statuses.items())
             if isinstance(s, dict) and "snapshot_index" in s]
    return ", ".join(parts) if parts else "not reported"


def _max_commit(statuses: dict, nodes) -> int:
    return max((_int_field(statuses.get(n), "commit_index") or 0 for n in nodes), default=0)


def _wait_for_snapshot_index(cluster, nodes, at_least: int, timeout: float, after: str) -> None:
    """If the nodes report snapshot_index, wait until each reports >= at_least; fail if they do not."""
    __tracebackhide__ = True
    st = cluster.status_all(nodes)
    if not any(isinstance(s, dict) and "snapshot_index" in s for s in st.values()):
        cluster.note("snapshot_index not reported: nothing to wait for")
        return
    ok = wait_until(lambda: all(not isinstance(s, dict) or "snapshot_index" not in s
                                or (_int_field(s, "snapshot_index") or 0) >= at_least
                                for s in cluster.status_all(nodes).values()), timeout)
    st = cluster.status_all(nodes)
    cluster.note(f"snapshot_index: {_snapshot_indexes(st)}")
    assert ok, (f"{after}, expected every node to report snapshot_index >= {at_least} within {timeout:.0f} s; "
                f"they report {_snapshot_indexes(st)}")


def _assert_local_reads_match(cluster, node: str, keys, *, timeout: float = 3.0) -> None:
    """A `local` get at `node` returns, for every key, what a linearizable get returns
    (the writes have stopped; a retried write may still land, so both are re-read until they agree)."""
    __tracebackhide__ = True
    reader = cluster.client()
    last: dict[str, tuple] = {}

    def agree(key: str) -> bool:
        lin = reader.get(key)
        loc = reader.get_local(key, node)
        last[key] = (lin, loc)
        return lin.ok and loc.ok and lin.value == loc.value

    # One deadline for all keys: a node that lost many keys fails in `timeout`, not once per key.
    bad = sorted(keys)
    deadline = time.monotonic() + timeout
    while bad:
        bad = [k for k in bad if not agree(k)]
        if not bad or time.monotonic() >= deadline:
            break
        time.sleep(0.1)

    def short(v):
        return v if v is None or len(v) < 40 else v[:32] + f"...({len(v)} bytes)"

    shown = [f"{k}: linearizable get -> {last[k][0].outcome} {short(last[k][0].value)!r}, local get at {node} -> "
             f"{last[k][1].outcome} {short(last[k][1].value)!r}" for k in bad[:5]]
    assert not bad, (f"{node}'s own state (local reads) differs from the cluster's for {len(bad)} of "
                     f"{len(list(keys))} keys after catching up; expected the latest values:\n  " + "\n  ".join(shown))


def _assert_same_state(cluster, keys) -> None:
    """Every node's state machine (local reads) holds the same value for every key."""
    __tracebackhide__ = True
    reader = cluster.client()
    for key in sorted(keys):
        values, shown = {}, {}
        for n in cluster.ids:
            r = reader.get_local(key, n)
            values[n] = r.value if r.ok else f"<{r.outcome}>"
            shown[n] = f"counter {counter_of(r.value)}" if r.ok else f"<{r.outcome}>"
        assert len(set(values.values())) == 1, (
            f"after converging, the nodes' local reads of {key!r} disagree: {shown}; "
            "expected one value everywhere")


def _data_dir_files(path: str) -> list[tuple[str, int, int]]:
    """[(relative path, st_size, allocated bytes)] of the regular files under `path`."""
    out = []
    for root, _dirs, names in os.walk(path):
        for name in names:
            p = os.path.join(root, name)
            try:
                st = os.lstat(p)
            except OSError:  # replaced while we looked (a snapshot being swapped in)
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((os.path.relpath(p, path), st.st_size, st.st_blocks * 512))
    return out


# -- (a) data_dir bounded -------------------------------------------------------------------


@pytest.mark.points(3)
@pytest.mark.slow
def test_data_dir_stays_bounded_under_sustained_writes(make_cluster, rng, timing, settings):
    """Sustained writes of large values over 12 keys, at least 3 x LIMIT bytes in all, with
    snapshot_threshold_entries = 100: no node's data_dir ever exceeds
    LIMIT = 32 MiB + 8 * (L + T * E) (see the module docstring).

    Guards: log compaction (Raft §7): a node snapshots its state machine and
    drops the log prefix the snapshot covers, and removes superseded
    snapshots. A node that keeps every entry holds the whole volume written.
    """
    T = 100
    keys = [f"big-{i:02d}" for i in range(12)]
    value_bytes = (12_000, 14 * KiB)
    cluster = make_cluster(default=3, proxy=False, params=_params(T))
    writers = KeyWriters(cluster, keys, rng=rng, value_bytes=value_bytes, deadline=3.0)
    # Upper bounds, known before writing: the limit computed at the end can only be smaller.
    planned_limit = data_dir_limit(sum(len(k) + value_bytes[1] for k in keys), T,
                                   max(len(k) for k in keys) + value_bytes[1] + FRAMING)
    target = 3 * planned_limit
    # Time to write the volume, not a bound on the node: longer under ./grade --cpu-budget.
    time_limit = 60.0 * settings.evidence_time_factor
    cluster.note(f"writing {target / MiB:.0f} MiB (3 x the planned limit {planned_limit / MiB:.1f} MiB)")

    samples: list[tuple[float, int, dict]] = []  # (t, acknowledged bytes, {node: (size, allocated)})
    worst = (0, None, [])                          # (size, node, files) at the largest sample

    def sample() -> int:
        nonlocal worst
        t = cluster.elapsed()
        written = writers.acked_bytes
        per = {}
        for n in cluster.ids:
            files = _data_dir_files(cluster.path("data", n))
            size = sum(f[1] for f in files)
            per[n] = (size, sum(f[2] for f in files))
            if size > worst[0]:
                worst = (size, n, files)
        samples.append((t, written, per))
        return max(s for s, _ in per.values())

    writers.start()
    started = time.monotonic()
    stopped_early = False
    try:
        while writers.acked_bytes < target and time.monotonic() - started < time_limit:
            if sample() > 2 * planned_limit:
                stopped_early = True  # the verdict is known (and plain): spare the disk and the time
                break
            time.sleep(0.25)
    finally:
        writers.stop()
    elapsed = time.monotonic() - started
    cluster.note(f"writes stopped after {elapsed:.1f} s: {writers.summary()}")
    if not stopped_early:
        cluster.wait_converged(timeout=10.0)
        time.sleep(0.5)  # a node may compact right after applying the last entries
    sample()

    live = writers.live_bytes()
    largest = writers.largest_command + FRAMING
    limit = data_dir_limit(live, T, largest)
    peak, peak_node, peak_files = worst
    formula = (f"LIMIT {limit / MiB:.1f} MiB = 32 MiB + 8 x (L {live / KiB:.0f} KiB + T {T} x E {largest} bytes)")
    top = sorted(peak_files, key=lambda f: -f[1])[:6]
    files = ", ".join(f"{name} {size / MiB:.1f} MiB (allocated {alloc / MiB:.1f})" for name, size, alloc in top)
    assert peak <= limit, (
        f"{peak_node}'s data_dir reached {peak / MiB:.1f} MiB, above {formula}, "
        f"after {writers.acked_bytes / MiB:.1f} MiB of acknowledged writes"
        + (f" (writes stopped there; the test would have written {target / MiB:.0f} MiB)" if stopped_early else "")
        + f": expected a compacted log, bounded whatever the volume written.\n"
        f"largest files in {peak_node}'s data_dir then: {files}\n"
        f"data_dir sizes over time, MiB apparent (allocated):\n{_curve(samples, cluster.ids)}")
    assert writers.acked_bytes >= 3 * limit, (
        f"only {writers.acked_bytes / MiB:.1f} MiB acknowledged in {elapsed:.0f} s ({writers.summary()}); "
        f"the test needs 3 x {formula} = {3 * limit / MiB:.0f} MiB to tell a compacting node from one that keeps "
        f"everything (largest data_dir seen: {peak_node} {peak / MiB:.1f} MiB)")
    cluster.note(f"largest data_dir: {peak_node} {peak / MiB:.1f} MiB <= {formula}")
    assert_snapshot_index_sane(cluster.status_all(), after=f"after {writers.acked} writes with threshold {T}",
                               at_least=1)


def _curve(samples, ids, rows: int = 24) -> str:
    """The samples as a small table, thinned to about `rows` lines (the largest always shown)."""
    if not samples:
        return "  (no samples)"
    peak_i = max(range(len(samples)), key=lambda i: max(s for s, _ in samples[i][2].values()))
    step = max(1, len(samples) // rows)
    chosen = sorted(set(range(0, len(samples), step)) | {peak_i, len(samples) - 1})
    lines = ["  t (s)   written  " + "  ".join(f"{n:>15}" for n in ids)]
    for i in chosen:
        t, written, per = samples[i]
        cells = "  ".join(f"{per[n][0] / MiB:6.1f} ({per[n][1] / MiB:6.1f})" for n in ids)
        lines.append(f"  {t:6.2f}  {written / MiB:7.1f}  {cells}" + ("   <- largest" if i == peak_i else ""))
    return "\n".join(lines)


# -- (b) a partitioned follower catches up --------------------------------------------------------


@pytest.mark.points(2)
def test_partitioned_follower_catches_up_past_compaction(make_cluster, rng, timing):
    """A follower cut off while 10 x snapshot_threshold_entries entries commit (so the
    leader has compacted away what it lacks) catches up once healed: its commit_index and
    last_applied reach the leader's, and local reads at it return the latest values.

    Guards: install_snapshot (Raft §7): the leader sends its snapshot to a
    follower whose next entry it no longer holds, the follower replaces its
    state with it and continues with the entries after it. The state
    (ballast values included) is larger than one datagram, so the snapshot
    cannot travel in one.
    """
    T = 40
    cluster = make_cluster(default=3, params=_params(T))
    history = cluster.history()
    ballast = _write_ballast(cluster, history, 8, rng)
    writers = KeyWriters(cluster, [f"p-{i}" for i in range(6)], rng=rng, history=history,
                         value_bytes=(16, 160)).start()
    try:
        time.sleep(0.5)
        leader = cluster.wait_for_leader()
        follower = rng.choice([n for n in cluster.ids if n != leader])
        others = [n for n in cluster.ids if n != follower]
        cluster.wait_caught_up(follower)
        behind = _int_field(cluster.status(follower), "last_log_index") or 0
        cluster.isolate(follower)
        target = behind + 10 * T
        st = cluster.wait_for(f"the majority committing index {target} (10 x threshold {T} past {follower}'s "
                              f"log end {behind})", lambda st: _max_commit(st, others) >= target, 20.0, others)
        cluster.note(f"{follower} cut off at log index {behind}; the others committed {_max_commit(st, others)}; "
                     f"snapshot_index: {_snapshot_indexes(st)}")
        cluster.heal()
        goal = _max_commit(cluster.status_all(others), others)
        reached = cluster.wait_for(
            f"{follower}'s commit_index and last_applied reaching the leader's commit_index {goal} at healing",
            lambda st: isinstance(st[follower], dict) and (_int_field(st[follower], "commit_index") or 0) >= goal
            and (_int_field(st[follower], "last_applied") or 0) >= goal, timing.catch_up_bound, [follower])
        cluster.note(f"{follower} caught up: {reached[follower]}")
    finally:
        writers.stop()
    cluster.wait_converged()
    _assert_local_reads_match(cluster, follower, writers.keys + ballast)
    assert_snapshot_index_sane(cluster.status_all(), after=f"after {writers.acked} writes with threshold {T}",
                               at_least=1)
    assert_acked_writes_survive(cluster.client(), history)


# -- (c) a node with an empty data_dir ------------------------------------------------------------


@pytest.mark.points(2)
def test_node_with_empty_data_dir_catches_up_from_snapshot(make_cluster, rng, timing):
    """A node started for the first time, with an empty data_dir, after the others
    committed and compacted 10 x snapshot_threshold_entries entries, catches up (while
    writes go on) and its local reads return the latest values.

    Guards: a snapshot sent to a node that has no log at all (index 1 is long
    compacted away). The newcomer has never run: a node whose data_dir is
    wiped while the cluster runs is another matter, since it forgets
    entries it acknowledged and votes it cast, which Raft does not allow
    (a leader may rightly ignore its rejections below the match index it
    already recorded).
    """
    T = 40
    cluster = make_cluster(default=3, start=False, params=_params(T))
    newcomer = cluster.ids[-1]
    first = cluster.ids[:-1]
    cluster.start(first)
    cluster.wait_for_leader(timing.startup_bound, among=first)
    history = cluster.history()
    ballast = _write_ballast(cluster, history, 8, rng)
    writers = KeyWriters(cluster, [f"e-{i}" for i in range(6)], rng=rng, history=history,
                         value_bytes=(16, 160)).start()
    try:
        cluster.wait_for(f"{', '.join(first)} committing {10 * T} entries (10 x threshold {T})",
                         lambda st: _max_commit(st, first) >= 10 * T, 20.0, first)
        _wait_for_snapshot_index(cluster, first, 1, 5.0, f"after {10 * T} entries with threshold {T}")
        cluster.start(newcomer)
        cluster.wait_caught_up(newcomer)
    finally:
        writers.stop()
    cluster.wait_converged()
    _assert_local_reads_match(cluster, newcomer, writers.keys + ballast)
    assert_snapshot_index_sane(cluster.status_all(), after=f"after {writers.acked} writes with threshold {T}",
                               at_least=1)
    assert_acked_writes_survive(cluster.client(), history)


# -- (d) kill -9 of every node while snapshots are taken ------------------------------------------


@pytest.mark.points(3)
@pytest.mark.slow
def test_kill_all_nodes_while_snapshotting_loses_no_acked_write(make_cluster, rng, timing):
    """With snapshot_threshold_entries = 20 and a steady write load (so a snapshot is
    being taken every few dozen milliseconds), kill -9 every node at once at random
    moments and restart them: every acknowledged write reads back each time, and at
    the end all nodes hold the same state.

    Each key has one sequential writer, so a final read must return the last
    acknowledged value or the one write whose outcome was unknown (the
    register check of lib/checks.py). Guards: a snapshot is durable (written,
    fsynced, renamed into place) before the log prefix it covers is dropped,
    and a crash while writing one leaves the previous snapshot and log usable.
    """
    T = 20
    cluster = make_cluster(default=3, proxy=False, params=_params(T))
    history = cluster.history()
    ballast = _write_ballast(cluster, history, 16, rng)  # ~220 KiB of state in every snapshot
    writers = KeyWriters(cluster, [f"crash-{i}" for i in range(5)], rng=rng, history=history,
                         value_bytes=(16, 160)).start()
    reader = cluster.client()
    try:
        for round_ in range(1, 5):
            before = writers.acked
            time.sleep(rng.uniform(0.3, 1.2))
            # Odd rounds: the kill lands in the middle of the load (and of a
            # snapshot, every 20 entries). Even rounds: the writers are held
            # first, so every acknowledged write is known at the kill and is
            # read back after the restart before any new write could
            # overwrite (and so hide) one that was lost.
            strict = round_ % 2 == 0
            if strict:
                writers.pause()
            cluster.note(f"round {round_}: {writers.acked - before} sets acknowledged since the last restart"
                         + ("; writers held" if strict else ""))
            cluster.kill("all")
            time.sleep(rng.uniform(0.0, 0.3))
            cluster.start("all")
            cluster.wait_for_leader(timing.startup_bound)
            if strict:
                assert_acked_writes_survive(reader, history)
                writers.resume()
            restarted = writers.acked
            progressed = wait_until(lambda: writers.acked > restarted, timing.catch_up_bound)
            assert progressed, (f"no write acknowledged within {timing.catch_up_bound:.0f} s after restart "
                                f"{round_}; expected the writers to carry on ({writers.summary()})")
            writers.pause()  # the check needs every write recorded: none may be in flight
            assert_acked_writes_survive(reader, history)
            writers.resume()
    finally:
        writers.stop()
    assert writers.acked >= 40, f"too few writes to prove anything: {writers.summary()}"
    cluster.wait_converged()
    assert_acked_writes_survive(cluster.client(), history)
    _assert_same_state(cluster, writers.keys + ballast)
    assert_snapshot_index_sane(cluster.status_all(), after=f"after {writers.acked} writes with threshold {T}",
                               at_least=1)


# -- (e) exactly-once across a snapshot and a restart ---------------------------------------------


def _raw_request(client, node, seq, op, key, **fields):
    """Send one client_request with an explicit seq to `node`; return (message, reply or None)."""
    msg = {"type": "client_request", "src": client.client_id, "dest": node, "seq": seq, "op": op, "key": key}
    msg.update(fields)
    return msg, client.resend(msg, node, timeout=1.0)


def _decisive(reply):
    return {k: reply.get(k) for k in ("seq", "ok", "value", "error")} if isinstance(reply, dict) else reply


def _resend_until_decided(cluster, client, msg, start: str, timeout: float = 5.0) -> Optional[dict]:
    """The exact request `msg` again, following not_leader hints, until a decisive reply."""
    target, reply = start, None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        reply = client.resend(msg, target, timeout=0.5)
        if isinstance(reply, dict) and (reply.get("ok") is True or reply.get("error") in ("cas_failed",
                                                                                          "bad_request")):
            return reply
        hint = reply.get("leader") if isinstance(reply, dict) else None
        target = hint if hint in cluster.ids and hint != target else \
            cluster.ids[(cluster.ids.index(target) + 1) % len(cluster.ids)]
        time.sleep(0.05)
    return reply


@pytest.mark.points(2)
def test_exactly_once_survives_snapshot_and_restart(make_cluster, rng, timing):
    """A client's last command, answered before several snapshots and a restart of every
    node, is retried with the same seq afterwards: the reply is identical to the first
    and the command is not applied again.

    A set k = mine, then another client sets k = theirs: a re-applied retry
    would bring back "mine". A cas a -> b, then another client sets the key
    back to a: a re-applied cas would make it b again (and a node that lost
    the session would still answer ok, so the value is what tells).
    Guards: client sessions (last seq and reply per client) are part of the
    replicated state, so they are in the snapshot and restored from it.
    """
    T = 20
    cluster = make_cluster(default=3, proxy=False, params=_params(T))
    leader = cluster.wait_settled()
    me, me2, other = cluster.client(), cluster.client(), cluster.client()

    set_msg, set_first = _raw_request(me, leader, 1, "set", "once-set", value="mine")
    assert isinstance(set_first, dict) and set_first.get("ok") is True and set_first.get("value") == "mine", (
        f"set once-set = mine at the leader {leader}: expected ok with value 'mine', got {set_first}")
    assert_ok(other.set("once-set", "theirs"), "the other client's set once-set = theirs")
    assert_ok(other.set("once-cas", "a"), "the other client's set once-cas = a")
    cas_msg, cas_first = _raw_request(me2, leader, 1, "cas", "once-cas", expected="a", value="b")
    assert isinstance(cas_first, dict) and cas_first.get("ok") is True and cas_first.get("value") == "b", (
        f"cas once-cas a -> b at the leader {leader}: expected ok with value 'b', got {cas_first}")
    assert_ok(other.set("once-cas", "a"), "the other client's set once-cas = a (again)")
    mark = _max_commit(cluster.status_all(), cluster.ids)

    filled = fill(cluster, 8 * T, clients=4, prefix="once-fill")
    assert filled.count(outcome=OK) >= 6 * T, (
        f"filling {8 * T} entries (8 x threshold {T}): expected nearly all acknowledged, got {filled.summary()}")
    cluster.wait_converged()
    _wait_for_snapshot_index(cluster, cluster.ids, mark, 5.0,
                             f"after {8 * T} entries past index {mark} (threshold {T})")

    cluster.kill("all")
    cluster.start("all")
    leader = cluster.wait_settled(timing.startup_bound)

    again = _resend_until_decided(cluster, me, set_msg, leader)
    assert _decisive(again) == _decisive(set_first), (
        f"retrying seq 1 (set once-set = mine) after snapshots and a restart: expected the first reply "
        f"{_decisive(set_first)}, got {_decisive(again)}")
    r = other.get("once-set")
    assert r.ok and r.value == "theirs", (
        f"once-set after the retried set: expected 'theirs' (the retry must not apply again), got {r}")

    again = _resend_until_decided(cluster, me2, cas_msg, leader)
    assert _decisive(again) == _decisive(cas_first), (
        f"retrying seq 1 (cas once-cas a -> b) after snapshots and a restart: expected the first reply "
        f"{_decisive(cas_first)}, got {_decisive(again)}")
    r = other.get("once-cas")
    assert r.ok and r.value == "a", (
        f"once-cas after the retried cas: expected 'a' (the retry must not apply again), got {r}")


# -- (f) stale and duplicated snapshots --------------------------------------------------------------


class Watcher:
    """Samples, every ~40 ms and straight at the nodes' private addresses (no faults), each
    node's status and a `local` get of one key per node, and records every step back:
    commit_index or last_applied lower than before while the process stayed the same, or
    a key's counter lower than a value that node returned before."""

    def __init__(self, cluster, keys: list[str]):
        self.cluster = cluster
        self.keys = list(keys)
        self.regressions: list[str] = []
        self.status_samples = 0
        self.read_samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot-watcher", daemon=True)

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        c = self.cluster
        probe = StatusProbe(c.private)
        reader = Client(dict(c.private), request_timeout=0.15, deadline=0.15)
        last: dict[str, tuple] = {}        # node -> (pid, t, commit_index, last_applied)
        seen: dict[tuple, tuple] = {}      # (node, key) -> (pid, t, counter)
        i = 0
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                for n, s in probe.poll(c.ids, timeout=0.1).items():
                    commit, applied = _int_field(s, "commit_index"), _int_field(s, "last_applied")
                    if commit is None or applied is None:
                        continue
                    self.status_samples += 1
                    pid, t = c.nodes[n].pid, c.elapsed()
                    prev = last.get(n)
                    if prev is None or prev[0] != pid:  # first sample of this process
                        last[n] = (pid, t, commit, applied)
                        continue
                    if commit < prev[2]:
                        self.regressions.append(f"{n}: commit_index went from {prev[2]} (t={prev[1]:.2f}) "
                                                f"to {commit} (t={t:.2f})")
                    if applied < prev[3]:
                        self.regressions.append(f"{n}: last_applied went from {prev[3]} (t={prev[1]:.2f}) "
                                                f"to {applied} (t={t:.2f})")
                    if commit >= prev[2] and applied >= prev[3]:
                        last[n] = (pid, t, commit, applied)
                for n in c.ids:
                    key = self.keys[i % len(self.keys)]
                    r = reader.get_local(key, n)
                    if not r.ok:
                        continue
                    self.read_samples += 1
                    counter, pid, t = counter_of(r.value), c.nodes[n].pid, c.elapsed()
                    prev = seen.get((n, key))
                    if prev is not None and prev[0] == pid and counter < prev[2]:
                        self.regressions.append(f"{n}: local get {key!r} returned counter {counter} at t={t:.2f}, "
                                                f"after counter {prev[2]} at t={prev[1]:.2f}")
                    if prev is None or prev[0] != pid or counter >= prev[2]:
                        seen[(n, key)] = (pid, t, counter)
                i += 1
                self._stop.wait(max(0.0, 0.04 - (time.monotonic() - began)))
        finally:
            probe.close()
            reader.close()


@pytest.mark.points(3)
@pytest.mark.slow
def test_stale_or_duplicated_snapshots_never_roll_a_node_back(make_cluster, rng, timing):
    """Every link duplicates 20% of datagrams and delays each by 0-20 ms (reordering them),
    the threshold is 20 entries, four keys get one sequential writer each, and a follower
    is cut off twice long enough to need a snapshot; during the second catch-up and 1.5 s
    after it every datagram into it is also held back 0-200 ms and 30% duplicated, so old
    snapshots and entries arrive after newer ones. Throughout, sampled every ~40 ms: no
    node's commit_index or last_applied ever decreases, and no node's local read of a key
    ever returns an older value than it returned before. At the end all nodes converge
    and every acknowledged write reads back.

    Guards: a follower ignores an install_snapshot that does not extend what it
    has (snapshot index <= its commit index or last applied), keeps the log
    entries after a snapshot that matches its log, and never lowers its commit
    index; a duplicated snapshot datagram is harmless.
    """
    T = 20
    cluster = make_cluster(default=3, params=_params(T))
    history = cluster.history()
    ballast = _write_ballast(cluster, history, 8, rng)
    cluster.unreliable(duplicate=0.2, delay_ms=10, jitter_ms=10)
    writers = KeyWriters(cluster, [f"mono-{i}" for i in range(4)], rng=rng, history=history,
                         value_bytes=(16, 160)).start()
    watcher = Watcher(cluster, writers.keys).start()
    try:
        time.sleep(1.0)
        for phase in (1, 2):
            leader = cluster.wait_for_leader()
            follower = rng.choice([n for n in cluster.ids if n != leader])
            others = [n for n in cluster.ids if n != follower]
            behind = _int_field(cluster.status(follower), "last_log_index") or 0
            cluster.isolate(follower)
            target = behind + 5 * T
            st = cluster.wait_for(f"the majority committing index {target} (5 x threshold {T} past {follower}'s "
                                  f"log end {behind})", lambda st: _max_commit(st, others) >= target, 20.0, others)
            cluster.note(f"phase {phase}: {follower} cut off at {behind}; others committed "
                         f"{_max_commit(st, others)}; snapshot_index: {_snapshot_indexes(st)}")
            if phase == 2:
                cluster.set_link("*", follower, delay_ms=100, jitter_ms=100, duplicate=0.3)
            cluster.heal()
            cluster.wait_caught_up(follower, timeout=15.0)
            if phase == 2:
                time.sleep(1.5)  # writes go on; late copies of old messages keep arriving
                cluster.clear_link("*", follower)
            time.sleep(0.5)
    finally:
        watcher.stop()
        writers.stop()
    cluster.note(f"{writers.summary()}; watcher took {watcher.status_samples} status and "
                 f"{watcher.read_samples} local-read samples")
    stats = cluster.link_stats()
    duplicated = sum(s.get("duplicated", 0) for s in stats.values())
    assert duplicated > 0, f"the proxy duplicated no datagram; expected 20% of them: {stats}"
    assert watcher.status_samples >= 100 and watcher.read_samples >= 100, (
        f"the watcher took only {watcher.status_samples} status and {watcher.read_samples} local-read samples; "
        "expected hundreds")
    assert not watcher.regressions, (
        f"{len(watcher.regressions)} step(s) back seen while the nodes stayed up; expected commit_index, "
        f"last_applied and each key's value never to go back:\n  " + "\n  ".join(watcher.regressions[:10]))
    assert writers.acked >= 50, f"too few writes acknowledged to prove anything: {writers.summary()}"

    cluster.reset_network()
    cluster.wait_settled()
    cluster.wait_converged()
    assert_acked_writes_survive(cluster.client(), history)
    _assert_same_state(cluster, writers.keys + ballast)
    assert_snapshot_index_sane(cluster.status_all(), after=f"after {writers.acked} writes with threshold {T}",
                               at_least=1)


# -- (g) a late copy of a snapshot after the follower moved past it ------------------------------


@pytest.mark.points(2)
def test_late_copy_of_an_old_snapshot_changes_nothing(make_cluster, rng, timing):
    """A follower that needs a snapshot is healed in two phases. First (2 s) every datagram
    to it is held for 2 s and its own replies are lost, so the leader keeps resending its
    snapshot into the proxy's delay queue. Then the link is clean: the follower installs the
    snapshot, catches up and applies keys written once each, while the held copies of the
    old snapshot keep landing for another 2 s. Those keys must stay in the follower's
    state: local reads there return every one of them, and every older key.

    Guards: a follower answers an install_snapshot whose index is at or below its
    commit index as already installed and changes nothing (thesis §5.3). One that
    installs it rolls its state machine back to the snapshot while believing it
    has applied the later entries, and never applies them again.
    """
    T = 20
    HOLD_MS = 2000
    cluster = make_cluster(default=3, params=_params(T))
    history = cluster.history()
    writer = cluster.client(history=history)
    early_keys = [f"early-{i}" for i in range(10)]
    for key in early_keys:
        assert_ok(writer.set(key, key + "=v"), f"write of {key}")
    leader = cluster.wait_for_leader()
    follower = rng.choice([n for n in cluster.ids if n != leader])
    others = [n for n in cluster.ids if n != follower]
    cluster.wait_caught_up(follower)
    behind = _int_field(cluster.status(follower), "last_log_index") or 0
    cluster.isolate(follower)
    for i in range(5 * T):
        assert_ok(writer.set("filler", f"filler#{i:08d}"), f"filler write {i} with {follower} cut off")
    st = cluster.status_all(others)
    cluster.note(f"{follower} cut off at {behind}; others at commit {_max_commit(st, others)}, "
                 f"snapshot_index {_snapshot_indexes(st)}")
    # Phase 1: what the leader sends the follower (its snapshot, again and again, since
    # no reply comes back) waits in the proxy's queue for HOLD_MS.
    for n in others:
        cluster.set_link(n, follower, delay_ms=HOLD_MS)
        cluster.set_link(follower, n, drop=1.0)
    cluster.heal()
    time.sleep(HOLD_MS / 1000)
    # Phase 2: a clean link. The follower catches up at once; the held copies of the old
    # snapshot land over the next HOLD_MS, after it has applied these writes.
    for n in others:
        cluster.clear_link(n, follower)
        cluster.clear_link(follower, n)
    late = [f"late-{i}" for i in range(24)]
    for key in late:
        assert_ok(writer.set(key, key + "=v"), f"write of {key}")
        time.sleep(0.1)
    time.sleep(HOLD_MS / 1000)  # the last held copies land meanwhile
    try:
        cluster.wait_caught_up(follower, timeout=timing.catch_up_bound)
    except ClusterError as e:
        # A node rolled back to an old snapshot may never apply again: its local reads say how.
        cluster.note(f"{follower} did not catch up: {e}")
    _assert_local_reads_match(cluster, follower, late + ["filler"] + list(early_keys))
    assert_acked_writes_survive(cluster.client(), history)
