"""An unreliable network: loss, duplication, delay and reordering on every link.

UDP promises nothing, and the proxy makes sure of it: datagrams are dropped,
sent twice, held back a random time (so they overtake each other). Client
links suffer as well, so requests and replies get lost and duplicated too.
The cluster must keep making progress and every answer must stay correct.
"""

import time

import pytest

from .lib.checks import assert_acked_writes_survive, assert_one_leader_per_term, assert_registers_linearizable
from .lib.client import OK
from .lib.workload import Writers

NETWORKS = {
    # 20% loss, 10% duplicates, 0-20 ms delay: reordering everywhere.
    "lossy": dict(drop=0.2, duplicate=0.1, delay_ms=10, jitter_ms=10),
    # Few losses but many duplicates held back up to 40 ms: stale append_entries
    # keep arriving after newer ones (pitfall 7: they must not truncate the log).
    "reordering": dict(drop=0.05, duplicate=0.4, delay_ms=20, jitter_ms=20),
}


@pytest.mark.points(2)
@pytest.mark.slow
@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_progress_and_correct_answers(make_cluster, rng, timing, network):
    """Under a bad network, writes keep being acknowledged and every read is right.

    Each writer owns its keys; a read must return the last acknowledged value
    or the value of a write whose outcome was unknown (see checks.py).

    Guards: retransmission by the leader (heartbeats re-send what is
    missing), idempotent handling of duplicated and reordered append_entries
    and votes (pitfalls 4 and 7), exactly-once application of retried
    client requests, and linearizable reads despite lost confirmations.
    """
    cluster = make_cluster(default=3)
    cluster.unreliable(**NETWORKS[network])
    history = cluster.history()
    run_for = 8.0
    writers = Writers(cluster, history, writers=4, keys_per_writer=2, read_ratio=0.3).start()
    try:
        time.sleep(run_for)
    finally:
        writers.stop()
    stats = cluster.link_stats()
    dropped = sum(s.get("dropped", 0) for s in stats.values())
    duplicated = sum(s.get("duplicated", 0) for s in stats.values())
    cluster.note(f"{history.summary()}; proxy dropped {dropped}, duplicated {duplicated}")
    assert duplicated > 0 and (dropped > 0 or NETWORKS[network]["drop"] == 0), \
        f"the proxy did not inject the faults: {stats}"
    acked = history.count(op="set", outcome=OK)
    assert acked >= 30, f"only {acked} writes acknowledged in {run_for:.0f} s on a {network} network: {history.summary()}"
    assert_registers_linearizable(history)

    cluster.reset_network()
    cluster.wait_settled()
    assert_acked_writes_survive(cluster.client(), history)
    cluster.wait_converged()
    assert_one_leader_per_term(cluster.observed())
