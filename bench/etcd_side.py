"""The etcd side of `make bench` (bench/kv_bench.py): a 3-member etcd cluster
on 127.0.0.1 and a closed-loop client over etcd's own gRPC API.

The client is Debian's python3-etcd3 (over python3-grpcio): the only etcd
client Debian ships besides etcdctl, which starts a process per request. Its
Python overhead is charged to etcd (bench/README.md says how much): the
clients run in several processes so that the GIL is not the limit.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from typing import Optional

from snapshot_figures import HOST, BenchError, PortBlock, log, now, spawn, stop_process

ETCD_BIN = "/usr/bin/etcd"
DEBIAN_PACKAGES = ["etcd-server", "python3-etcd3", "python3-grpcio"]


def available() -> Optional[str]:
    """None when etcd and its client can be used, else why not."""
    if not os.access(ETCD_BIN, os.X_OK):
        return f"{ETCD_BIN} not found (Debian package etcd-server)"
    try:
        import etcd3  # noqa: F401
    except ImportError:
        return "python module etcd3 not found (Debian package python3-etcd3)"
    return None


def install_if_root() -> Optional[str]:
    """Installs the Debian packages when root and they are missing; returns why etcd is skipped, or None."""
    why = available()
    if why is None:
        return None
    if os.geteuid() != 0:
        return f"{why}; not root, so not installing: apt-get install -y {' '.join(DEBIAN_PACKAGES)}"
    log(f"etcd: {why}; installing {' '.join(DEBIAN_PACKAGES)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", *DEBIAN_PACKAGES], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", *DEBIAN_PACKAGES], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        return f"apt-get install failed: {r.stderr.decode(errors='replace')[-300:]}"
    return available()


class EtcdCluster:
    """Three etcd members on 127.0.0.1, fsync on (etcd's default), in a fresh /tmp directory."""

    def __init__(self, heartbeat_ms: int, election_ms: int, size: int = 3):
        self.ids = [f"e{i}" for i in range(1, size + 1)]
        self.dir = tempfile.mkdtemp(prefix="raftkv-bench-etcd-", dir="/tmp")
        self.ports = PortBlock(2 * size)
        it = iter(self.ports.ports)
        self.client_port = {n: next(it) for n in self.ids}
        self.peer_port = {n: next(it) for n in self.ids}
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.procs: dict[str, Optional[subprocess.Popen]] = {n: None for n in self.ids}
        self.token = "raftkv-bench-" + os.urandom(4).hex()

    def endpoint(self, n: str) -> tuple[str, int]:
        return HOST, self.client_port[n]

    def start(self, n: str) -> None:
        peers = ",".join(f"{m}=http://{HOST}:{self.peer_port[m]}" for m in self.ids)
        argv = [ETCD_BIN, "--name", n, "--data-dir", os.path.join(self.dir, n),
                "--listen-client-urls", f"http://{HOST}:{self.client_port[n]}",
                "--advertise-client-urls", f"http://{HOST}:{self.client_port[n]}",
                "--listen-peer-urls", f"http://{HOST}:{self.peer_port[n]}",
                "--initial-advertise-peer-urls", f"http://{HOST}:{self.peer_port[n]}",
                "--initial-cluster", peers, "--initial-cluster-token", self.token,
                "--initial-cluster-state", "new",
                "--heartbeat-interval", str(self.heartbeat_ms), "--election-timeout", str(self.election_ms),
                "--log-level", "warn"]
        self.procs[n] = spawn(argv, os.path.join(self.dir, f"{n}.log"), self.dir)

    def start_all(self) -> None:
        for n in self.ids:
            self.start(n)

    def kill9(self, n: str) -> None:
        p = self.procs[n]
        if p is not None and p.poll() is None:
            p.kill()  # SIGKILL to this member's PID only
            p.wait(timeout=10)
        if p is not None:
            stop_process(p, grace=0.1)  # reaps the bookkeeping entry
        self.procs[n] = None

    def client(self, n: str, timeout_s: float = 1.0):
        import etcd3
        host, port = self.endpoint(n)
        return etcd3.client(host=host, port=port, timeout=timeout_s)

    def leader(self, timeout_s: float = 30.0) -> str:
        """The member every running member names as leader."""
        end = now() + timeout_s
        last = ""
        while now() < end:
            names = {}
            running = [n for n in self.ids if self.procs[n] is not None]
            for n in running:
                try:
                    c = self.client(n, 0.5)
                    try:
                        st = c.status()
                    finally:
                        c.close()
                    if st.leader is not None:
                        names[n] = st.leader.name
                except Exception as e:  # not up yet, no leader yet
                    last = f"{n}: {e.__class__.__name__}"
            if len(names) == len(running) and len(set(names.values())) == 1:
                name = next(iter(names.values()))
                if name in running:
                    return name
            time.sleep(0.05)
        raise BenchError(f"etcd: no leader within {timeout_s:.0f} s ({last})")

    def teardown(self) -> None:
        for n in self.ids:
            p = self.procs[n]
            if p is not None:
                stop_process(p, grace=5.0)
                self.procs[n] = None
        self.ports.release()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- load ----

def _worker(endpoints, threads, duration_s, write, keys, value_bytes, seed, out_q):
    """One process: `threads` closed-loop clients sharing one gRPC channel."""
    import random
    import threading
    import etcd3
    host, port = endpoints[seed % len(endpoints)]
    c = etcd3.client(host=host, port=port, timeout=2.0)
    value = "x" * value_bytes
    lat: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    end = time.monotonic() + duration_s

    def run(t):
        rng = random.Random(seed * 1000 + t)
        mine = lat[t]
        while True:
            key = f"bench-key-{rng.randrange(keys)}"
            t0 = time.monotonic()
            if t0 >= end:
                return
            try:
                if write:
                    c.put(key, value)
                else:
                    c.get(key)  # serializable=False: a linearizable read
            except Exception:
                errors[t] += 1
                continue
            t1 = time.monotonic()
            if t1 <= end:
                mine.append((t1 - t0) * 1000.0)

    ts = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(duration_s + 10)
    c.close()
    out_q.put(([x for xs in lat for x in xs], sum(errors)))


def run_load(cluster: EtcdCluster, *, clients: int, duration_s: float, write: bool, keys: int,
             value_bytes: int, seed: int) -> tuple[list[float], int]:
    """Closed-loop load from `clients` clients spread over up to 4 processes; returns (latencies ms, errors)."""
    procs_n = min(clients, 4)
    per = [clients // procs_n + (1 if i < clients % procs_n else 0) for i in range(procs_n)]
    endpoints = [cluster.endpoint(n) for n in cluster.ids if cluster.procs[n] is not None]
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(endpoints, per[i], duration_s, write, keys, value_bytes,
                                            seed + i, q), daemon=True) for i in range(procs_n)]
    for p in ps:
        p.start()
    lat: list[float] = []
    errors = 0
    for _ in ps:
        try:
            got, err = q.get(timeout=duration_s + 30)
        except Exception:
            break
        lat.extend(got)
        errors += err
    for p in ps:
        p.join(5)
        if p.is_alive():
            p.kill()  # by its own PID: it is our child
            p.join(5)
    return lat, errors


def load_keys(cluster: EtcdCluster, keys: int, value_bytes: int, clients: int = 16) -> float:
    """Puts bench-key-0..keys-1 once each; returns seconds taken."""
    import threading
    t0 = now()
    value = "x" * value_bytes
    leader = cluster.leader()
    c = cluster.client(leader, 5.0)
    errors: list[str] = []

    def run(part):
        for k in range(part, keys, clients):
            for _attempt in range(20):
                try:
                    c.put(f"bench-key-{k}", value)
                    break
                except Exception as e:
                    err = str(e)
                    time.sleep(0.05)
            else:
                errors.append(err)
                return

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    c.close()
    if errors:
        raise BenchError(f"etcd: loading keys failed: {errors[0]}")
    return now() - t0


def failover_trial(cluster: EtcdCluster, timeout_s: float = 30.0) -> float:
    """kill -9 the leader; seconds until a put through a survivor is acknowledged."""
    leader = cluster.leader()
    survivors = [n for n in cluster.ids if n != leader and cluster.procs[n] is not None]
    clients = [cluster.client(n, 1.0) for n in survivors]
    for c in clients:  # connected before the kill: the trial times the election, not a TCP handshake
        c.status()
        c.timeout = 0.05
    t0 = now()
    cluster.kill9(leader)
    took = None
    i = 0
    while now() - t0 < timeout_s:
        try:
            clients[i % len(clients)].put("bench-failover", str(i))
            took = now() - t0
            break
        except Exception:
            i += 1
    for c in clients:
        c.close()
    cluster.start(leader)  # rejoins from its own data dir
    if took is None:
        raise BenchError(f"etcd: no put acknowledged within {timeout_s:.0f} s of killing {leader}")
    cluster.leader()
    return took
