"""The forwarding test double (harness/doubles/forwarding_node.py) really forwards.

PROTOCOL.md v1.1 lets a follower forward a write to the leader instead of
answering not_leader. The double wraps the reference node so that its
followers forward; graded with it (`./grade --node-cmd "python3
harness/doubles/forwarding_node.py ./node"`), the suite must still give
full marks. This test proves the double does what it claims, so that such
a run shows the tests accept forwarding rather than a double that redirects
after all. It tests the harness's own tools: a harness self-test.
"""

import random
import sys
import time

import pytest

from .conftest import REPO
from .lib.checks import assert_ok
from .lib.cluster import Cluster, Timing

pytestmark = pytest.mark.harness_self_test

DOUBLE = REPO / "harness" / "doubles" / "forwarding_node.py"


def test_followers_forward_writes_to_the_leader(settings):
    node = REPO / "node"
    if not node.exists():
        pytest.skip("no ./node to wrap (run make)")
    cluster = Cluster(3, [sys.executable, str(DOUBLE), str(node)], proxy_bin=settings.proxy_bin,
                      rng=random.Random(settings.seed), timing=Timing(), peer_auth=False)
    try:
        cluster.start()
        leader = cluster.wait_settled()
        time.sleep(0.3)  # the double learns its inner node's role by polling its status every 50 ms
        client = cluster.client()
        for seq, follower in enumerate((n for n in cluster.ids if n != leader), start=1):
            msg = {"type": "client_request", "src": client.client_id, "dest": follower, "seq": seq,
                   "op": "set", "key": f"via-{follower}", "value": follower}
            reply = client.resend(msg, follower, timeout=1.0)
            assert reply is not None, f"follower {follower} did not answer"
            assert reply.get("ok") is True and reply.get("value") == follower, (
                f"follower {follower} should have forwarded the write to {leader}: {reply}")
            assert reply.get("src") == follower, f"the reply must come from {follower}: {reply}"
        r = client.get(f"via-{follower}", node=leader)
        assert_ok(r, "read back at the leader")
        assert r.value == follower, f"the forwarded write is not at the leader: {r}"
    finally:
        cluster.teardown()
