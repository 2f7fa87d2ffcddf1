"""Randomized fault campaigns, judged by a linearizability checker.

Concurrent clients (lib/recorder.py) run random get / set / cas / delete on
a few keys while a nemesis (lib/nemesis.py) crashes, pauses and partitions
nodes (halves, a lone node, a bridge, one-way cuts) and makes links lose,
duplicate and delay datagrams. Then everything heals, the cluster settles,
every key is read once more, and `lincheck` (docs/lincheck.md) decides
whether some single-copy order of the operations explains every answer,
treating timed-out operations as "may have happened, at any later time".

The fault schedule is drawn from the test's RNG (session seed + test id):
`--seed S` replays it. On a violation the failure report names the kept
history and the HTML timeline that shows the operations that cannot be
ordered (under --reports-dir, default harness-reports/).

`--soak SECONDS` adds test_soak: one long campaign (5 nodes, or --nodes).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from .lib.checks import assert_one_leader_per_term
from .lib.linearizability import assert_linearizable
from .lib.nemesis import Nemesis
from .lib.recorder import Recorder

CAMPAIGN_S = 12.0


def run_campaign(cluster, rng, timing, *, seconds: float, clients: int, reports_dir: str, name: str,
                 budget_s: float = 10.0, min_ok: int = 20) -> None:
    """Workload + nemesis for `seconds`, heal, settle, final reads, then check with lincheck."""
    __tracebackhide__ = True
    rec = Recorder(cluster, clients=clients, keys=5, deadline=2.0, think=(0.0, 0.01)).start()
    nemesis = Nemesis(cluster, rng)
    try:
        time.sleep(rng.uniform(0.2, 0.6))          # some history before the first fault
        nemesis.run(seconds)
        cluster.note(f"faults done: {nemesis.summary()}")
        cluster.wait_for_leader(timing.startup_bound)
        time.sleep(1.0)                            # the workload goes on over a healed cluster
    finally:
        rec.stop()
    cluster.wait_settled()
    final = rec.final_reads(cluster.client(), deadline=5.0)
    cluster.note(f"history: {rec.summary()}")
    path = rec.write_jsonl(os.path.join(cluster.dir, "history.jsonl"))

    first = min((o["invoke_us"] for o in rec.ops), default=0) / 1e6
    context = (f"{rec.summary()}; faults: {nemesis.summary()}; lincheck's times are ms since the first "
               f"operation, which began at {first:.3f} s on the fault timeline")
    # The history is the main verdict: check it first, so a violation is reported with its timeline.
    assert_linearizable(path, reports_dir=reports_dir, name=name, budget_s=budget_s, context=context,
                        note=cluster.note)
    unread = [f"{r.key}: {r}" for r in final if not r.ok]
    assert not unread, f"after healing, final reads got no answer: {unread}"
    assert not nemesis.unexpected_exits, f"nodes died without being killed: {nemesis.unexpected_exits}"
    mismatches = rec.reply_mismatches()
    assert not mismatches, ("replies to the same write seq differ (exactly-once answers with the reply it "
                            f"gave then): {mismatches[:3]}")
    ok = rec.count(outcome="ok")
    assert ok >= min_ok, f"too little progress to prove anything: {context}"
    assert_one_leader_per_term(cluster.observed())


def _name(request, settings) -> str:
    return f"{request.node.name}-seed{settings.seed}"


@pytest.mark.points(5)
@pytest.mark.parametrize("size", [3, 5])
def test_random_faults_linearizable(make_cluster, rng, timing, settings, reports_dir, request, size):
    """~12 s of random crashes, pauses, partitions of random shapes, loss, duplication and delay
    under a concurrent get/set/cas/delete workload: the history is linearizable, and after
    healing every key reads back.

    Guards everything at once: commitment (§5.3, §5.4.2), the election
    restriction (§5.4.1), durable term/vote/log across SIGKILL, ReadIndex
    reads (§8), exactly-once sessions under duplicated and retried requests.
    """
    cluster = make_cluster(size)
    run_campaign(cluster, rng, timing, seconds=CAMPAIGN_S, clients=4 if size == 3 else 5,
                 reports_dir=reports_dir, name=_name(request, settings))


@pytest.mark.points(5)
def test_random_faults_linearizable_with_snapshots(make_cluster, rng, timing, settings, reports_dir, request):
    """The same campaign on 3 nodes that snapshot every 10 applied entries: nodes that
    crash, pause or sit in a minority catch up by install_snapshot while the faults go on,
    and restart from a snapshot plus the log after it. The history stays linearizable.

    Guards the snapshot path end to end (thesis ch. 5) under every fault at once: the
    sessions are in the snapshot (§6.3), a snapshot never rolls a node back, and a
    crash while snapshotting loses nothing. Run for nodes that claim snapshot support
    (the reference node, or --snapshots; see test_snapshot.py).
    """
    if not (settings.is_reference or settings.snapshots):
        pytest.skip("node does not claim snapshot support; pass --snapshots")
    cluster = make_cluster(3, params={"snapshot_threshold_entries": 10})
    run_campaign(cluster, rng, timing, seconds=CAMPAIGN_S, clients=4, reports_dir=reports_dir,
                 name=_name(request, settings))


def _extend_time_limit(seconds: float) -> None:
    """The conftest watchdog stops a test after 90 s; a soak asks for more (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, seconds)


@pytest.mark.points(5)
def test_soak(make_cluster, rng, timing, settings, reports_dir, request, soak_seconds):
    """The same campaign for --soak SECONDS (skipped unless given): rarer interleavings show up."""
    if not soak_seconds:
        pytest.skip("soak campaign: run with --soak SECONDS")
    _extend_time_limit(soak_seconds + 300)
    cluster = make_cluster(default=5, minimum=3)
    run_campaign(cluster, rng, timing, seconds=soak_seconds, clients=5, reports_dir=reports_dir,
                 name=_name(request, settings), budget_s=max(10.0, soak_seconds / 5))
