"""Two clusters on one host: a stray peer address never mixes their logs.

The everyday form of "trust nothing from the wire": two groups of students run
`./setup 3 1` on one machine (different base ports), and one peer address of
the first cluster (n2 in n1's config) points at a node of the second. Each `./setup` run writes its own
cluster id and key, so the node that receives the stray traffic drops it
(counted as `foreign_cluster`, logged), and both clusters keep serving.

This runs the real `./setup` and the configs exactly as it writes them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from .conftest import REPO
from .lib import ports
from .lib.client import Client, StatusProbe
from .lib.process import ManagedProcess

pytestmark = pytest.mark.reference


def _setup(directory: str, base_port: int) -> None:
    os.makedirs(directory)
    subprocess.run([str(REPO / "setup"), "3", "1", "--base-port", str(base_port)], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL, timeout=30)


def _servers(directory: str) -> dict:
    out = {}
    for i in (1, 2, 3):
        with open(os.path.join(directory, "configs", f"server-{i}.json")) as f:
            doc = json.load(f)
        host, port = doc["listen"].rsplit(":", 1)
        out[doc["id"]] = (host, int(port))
    return out


def _wait_leader(probe: StatusProbe, timeout: float = 10.0) -> str:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        leaders = [n for n, s in probe.poll().items() if s and s.get("role") == "leader"]
        if leaders:
            return leaders[0]
        time.sleep(0.1)
    raise AssertionError(f"no leader within {timeout} s: {probe.poll()}")


def test_stray_peer_address_is_refused_and_both_clusters_serve(settings):
    node_bin = settings.node_argv[0]
    block = ports.allocate(6)
    procs: list[ManagedProcess] = []
    # Not pytest's tmp_path: that keeps three runs' data_dirs (preallocated
    # logs and reserves, ~70 MB a run) in /tmp. This directory goes at the end.
    top = tempfile.mkdtemp(prefix="raftkv-two-")
    try:
        a, b = os.path.join(top, "a"), os.path.join(top, "b")
        _setup(a, block.base)
        _setup(b, block.base + 3)
        # Cluster A's n1 believes its peer n2 lives where cluster B's n2
        # listens (a copied config, a wrong host entry): everything A's n1
        # sends to "n2" (heartbeats, votes, replies) lands in cluster B.
        b_n2 = "127.0.0.1:%d" % (block.base + 4)
        path = os.path.join(a, "configs", "server-1.json")
        with open(path) as f:
            doc = json.load(f)
        doc["peers"] = [dict(p, address=b_n2) if p["id"] == "n2" else p for p in doc["peers"]]
        with open(path, "w") as f:
            json.dump(doc, f)
        for directory, name in ((a, "a"), (b, "b")):
            for i in (1, 2, 3):
                # data_dir and the key file are relative to where a node starts, as with `make cluster`.
                argv = ["sh", "-c", f'cd "{directory}" && exec "{node_bin}" configs/server-{i}.json']
                p = ManagedProcess(f"{name}/n{i}", argv, os.path.join(directory, f"n{i}.log"))
                p.start()
                procs.append(p)
        probes = {"a": StatusProbe(_servers(a)), "b": StatusProbe(_servers(b))}
        clients = {"a": Client(_servers(a), deadline=5.0), "b": Client(_servers(b), deadline=5.0)}
        for name in ("a", "b"):
            _wait_leader(probes[name])
        # A's n1 writes to "n2" when it leads, campaigns, or answers a leading
        # n2. If n3 leads A, n1 talks only to n3: restart n3 so that an
        # election between n1 and n2 makes n1 send (votes, then heartbeats).
        if _wait_leader(probes["a"]) == "n3":
            a_n3 = procs[2]
            a_n3.kill()
            time.sleep(1.0)
            a_n3.start()
            _wait_leader(probes["a"])
        for i in range(20):
            for name, c in clients.items():
                r = c.set(f"k{i}", f"{name}{i}")
                assert r.ok, f"cluster {name}, write {i}: {r}"
        for name, c in clients.items():
            r = c.get("k19")
            assert r.ok and r.value == f"{name}19", f"cluster {name} read {r}: the clusters' data mixed"
        # B's n2 sees A's n1 traffic and refuses every datagram of it. (When
        # A's n2 leads, n1 only writes to "n2" once its election timer fires,
        # up to 300 ms in: poll for a bounded while.)
        until = time.monotonic() + 3.0
        while True:
            st = probes["b"].poll(["n2"])["n2"]
            assert st is not None, "cluster B's n2 stopped answering"
            if st.get("peer_drops", {}).get("foreign_cluster", 0) > 0 or time.monotonic() > until:
                break
            time.sleep(0.05)
        assert st.get("peer_drops", {}).get("foreign_cluster", 0) > 0, f"no foreign_cluster drops counted: {st}"
        with open(os.path.join(b, "n2.log")) as f:
            log = f.read()
        assert "foreign_cluster" in log, "the refused traffic must be logged:\n" + log[-2000:]
        # Nothing of A reached B's replicas (nor B's A's): every node holds its own cluster's values.
        time.sleep(0.5)
        # In A, n1 and n2 cannot hear each other: n1 sends to B's n2, and n1
        # drops what A's n2 sends it (wrong_address: not where n1's config
        # says n2 is). A's leader and n3 hold A's values.
        a_holders = sorted({"n3", _wait_leader(probes["a"])})
        for name, c in clients.items():
            for n in (a_holders if name == "a" else ("n1", "n2", "n3")):
                r = c.get_local("k0", n)
                assert r.ok and r.value == f"{name}0", f"cluster {name}, {n}: local k0 is {r}"
        for name in ("a", "b"):
            terms = {s["term"] for s in probes[name].poll().values() if s}
            assert max(terms) < 50, f"cluster {name}'s terms ran away: {terms}"
        for c in clients.values():
            c.close()
        for p in probes.values():
            p.close()
    finally:
        for p in procs:
            p.kill()
        block.release()
        if settings.keep_logs:
            print(f"kept {top}")
        else:
            shutil.rmtree(top, ignore_errors=True)
