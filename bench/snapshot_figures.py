#!/usr/bin/python3
"""Figures about log growth and restart cost of a raftkv node binary.

Starts its own clusters (3 nodes by default, all on 127.0.0.1) in a fresh
temporary directory under /tmp, drives them over UDP with the messages of
docs/PROTOCOL.md, measures, prints a table and optionally writes JSON.

    snapshot_figures.py restart --node-bin build/node --sets 100000,1000000
    snapshot_figures.py soak    --node-bin build/node --duration 600 --interval 10
    snapshot_figures.py catchup --node-bin build/node --proxy-bin build/proxy --writes 100000

Every process it starts is stopped by PID when it ends, also on Ctrl-C,
SIGTERM or an error; its temporary directory is removed unless --keep.
Standard library only (run with /usr/bin/python3). See bench/README.md.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import hashlib
import json
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional

HOST = "127.0.0.1"  # every address this script uses or writes into a config
STATUS_FIELDS = ("role", "term", "leader", "commit_index", "last_applied", "last_log_index",
                 "snapshot_index")


class BenchError(RuntimeError):
    """A measurement could not be made (node died, no leader, a bound was hit)."""


def now() -> float:
    return time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Ports: the harness's scheme (harness/lib/ports.py), so a benchmark and a
# concurrent `pytest harness` never pick the same ports: 16-port blocks below
# the kernel's ephemeral range, each claimed by flock on a shared lock file.

PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "raftkv-harness-ports")
BLOCK_ALIGN = 16
LOWEST_PORT = 20000


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class PortBlock:
    def __init__(self, count: int, attempts: int = 500):
        span = (count + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN
        lock_dir = PORT_LOCK_DIR
        try:
            os.mkdir(lock_dir)
            os.chmod(lock_dir, 0o1777)
        except FileExistsError:
            pass
        if not os.access(lock_dir, os.W_OK | os.X_OK):
            lock_dir = f"{PORT_LOCK_DIR}-{os.getuid()}"
            os.makedirs(lock_dir, exist_ok=True)
        eph_lo, eph_hi = _ephemeral_range()
        bases = []
        for lo, hi in ((LOWEST_PORT, eph_lo), (eph_hi + 1, 65536)):
            start = (max(lo, LOWEST_PORT) + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN
            bases.extend(range(start, hi - span + 1, BLOCK_ALIGN))
        chooser = random.SystemRandom()
        self._fds: list[int] = []
        for _ in range(attempts):
            base = chooser.choice(bases)
            fds: list[int] = []
            try:
                for sub in range(base, base + span, BLOCK_ALIGN):
                    fd = os.open(os.path.join(lock_dir, f"block-{sub}.lock"), os.O_CREAT | os.O_RDONLY, 0o644)
                    fds.append(fd)
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                for fd in fds:
                    os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    continue
                raise
            if all(_port_is_free(p) for p in range(base, base + count)):
                self._fds = fds
                self.ports = list(range(base, base + count))
                return
            for fd in fds:
                os.close(fd)
        raise BenchError(f"could not find {count} free consecutive UDP ports on {HOST}")

    def release(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []


# ---------------------------------------------------------------------------
# Measurements of processes and directories.

def proc_status_kb(pid: int) -> dict:
    """VmRSS and VmHWM of a live process, in kB ({} if it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def dir_sizes(path: str) -> dict:
    """Sum of st_size (apparent) and st_blocks*512 (allocated) of the files under path."""
    apparent = allocated = 0
    files = {}
    count = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            apparent += st.st_size
            allocated += st.st_blocks * 512
            count += 1
            if len(files) < 200:
                files[os.path.relpath(full, path)] = {"size": st.st_size, "allocated": st.st_blocks * 512}
    # The reference node keeps an 8 MiB `reserve` file for restarts on a full disk: constant, not log growth.
    reserve = os.path.join(path, "reserve")
    reserve_size = os.lstat(reserve).st_size if os.path.isfile(reserve) else 0
    return {"apparent_bytes": apparent, "allocated_bytes": allocated, "file_count": count,
            "apparent_bytes_excl_reserve": apparent - reserve_size, "files": files}


def sha256_of(path: str) -> Optional[str]:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def pick_status(s: Optional[dict]) -> Optional[dict]:
    if not isinstance(s, dict):
        return None
    return {k: s.get(k) for k in STATUS_FIELDS if k in s}


# ---------------------------------------------------------------------------
# Processes: every child is started in its own session (so a Ctrl-C in the
# terminal reaches only this script, which then stops them in order) and is
# tracked here by PID until it has been reaped.

_children: "dict[int, subprocess.Popen]" = {}
_children_lock = threading.Lock()


def spawn(argv: list[str], log_path: str, cwd: str, stdout=None) -> subprocess.Popen:
    logf = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=logf if stdout is None else stdout, stderr=logf,
                             start_new_session=True, close_fds=True)
    finally:
        logf.close()
    with _children_lock:
        _children[p.pid] = p
    return p


def reap(p: subprocess.Popen) -> None:
    with _children_lock:
        _children.pop(p.pid, None)


def stop_process(p: subprocess.Popen, grace: float = 10.0) -> Optional[float]:
    """SIGTERM, wait up to `grace` s, then SIGKILL. Returns seconds until it exited."""
    if p.poll() is not None:
        reap(p)
        return 0.0
    t0 = now()
    try:
        p.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"pid {p.pid} still alive {grace:.0f} s after SIGTERM: SIGKILL")
        try:
            p.kill()
        except ProcessLookupError:
            pass
        p.wait(timeout=10)
    reap(p)
    return now() - t0


def stop_all_children() -> None:
    with _children_lock:
        procs = list(_children.values())
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = now() + 5.0
    for p in procs:
        try:
            p.wait(timeout=max(0.0, end - now()))
        except subprocess.TimeoutExpired:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        reap(p)


# ---------------------------------------------------------------------------
# UDP status probe (PROTOCOL.md "Status").

class StatusProbe:
    def __init__(self, addrs: dict[str, tuple[str, int]], probe_id: Optional[str] = None):
        self.addrs = dict(addrs)
        self.id = probe_id or f"figprobe-{os.urandom(4).hex()}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def send(self, node: str) -> None:
        msg = json.dumps({"type": "status", "src": self.id, "dest": node}).encode()
        try:
            self.sock.sendto(msg, self.addrs[node])
        except OSError:
            pass

    def recv_all(self) -> list[tuple[float, dict]]:
        out = []
        for _ in range(10000):
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ECONNREFUSED from an ICMP error
                continue
            t = now()
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("type") == "status_reply" and doc.get("src") in self.addrs:
                out.append((t, doc))
        return out

    def poll(self, nodes: Optional[list[str]] = None, timeout: float = 0.3) -> dict[str, Optional[dict]]:
        nodes = list(self.addrs) if nodes is None else list(nodes)
        self.recv_all()  # stale replies
        for n in nodes:
            self.send(n)
        got: dict[str, Optional[dict]] = {n: None for n in nodes}
        end = now() + timeout
        while any(v is None for v in got.values()):
            left = end - now()
            if left <= 0:
                break
            select.select([self.sock], [], [], min(left, 0.05))
            for _t, doc in self.recv_all():
                if doc["src"] in got:
                    got[doc["src"]] = doc
        return got


def leader_in(statuses: dict[str, Optional[dict]]) -> Optional[str]:
    """The node that claims leadership in the highest term any node claims it in."""
    best = None
    for n, s in statuses.items():
        if isinstance(s, dict) and s.get("role") == "leader":
            if best is None or (s.get("term") or 0) > (statuses[best].get("term") or 0):
                best = n
    return best


# ---------------------------------------------------------------------------
# The cluster.

class Cluster:
    def __init__(self, args, name: str, with_proxy: bool = False):
        self.args = args
        self.name = name
        self.size = args.nodes
        self.ids = [f"n{i}" for i in range(1, self.size + 1)]
        self.with_proxy = with_proxy
        self.dir = tempfile.mkdtemp(prefix=f"raftkv-fig-{name}-", dir="/tmp")
        self.procs: dict[str, Optional[subprocess.Popen]] = {n: None for n in self.ids}
        self.start_times: dict[str, float] = {}
        self.proxy: Optional[subprocess.Popen] = None
        self.proxy_sock: Optional[socket.socket] = None
        for sub in ("configs", "data", "logs"):
            os.makedirs(os.path.join(self.dir, sub))
        self.ports = PortBlock(2 * self.size + 1 if with_proxy else self.size)
        it = iter(self.ports.ports)
        self.private = {n: (HOST, next(it)) for n in self.ids}
        if with_proxy:
            self.public = {n: (HOST, next(it)) for n in self.ids}
            self.control = (HOST, next(it))
        else:
            self.public = dict(self.private)
            self.control = None
        self._write_configs()
        self.probe = StatusProbe(self.private)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def data_dir(self, n: str) -> str:
        return self.path("data", n)

    def _write_configs(self) -> None:
        addr = lambda a: f"{a[0]}:{a[1]}"
        params = {"heartbeat_interval_ms": 50, "election_timeout_ms": [150, 300]}
        params.update(self.args.params)
        key_file = self.path("configs", "cluster.key")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        auth = {}
        if not self.args.no_peer_auth:
            auth = {"cluster_id": "b" + os.urandom(8).hex(), "cluster_key_file": key_file}
            if self.with_proxy:
                auth["peers_behind_proxy"] = True
        for n in self.ids:
            os.makedirs(self.data_dir(n))
            cfg = {"id": n, "listen": addr(self.private[n]), "data_dir": self.data_dir(n),
                   "peers": [{"id": p, "address": addr(self.public[p])} for p in self.ids if p != n],
                   "params": params, **auth}
            self._write_json(self.path("configs", f"{n}.json"), cfg)
        # For the reference client (--loadgen client, or a human with --keep).
        # Servers at their private addresses: load is not subject to faults.
        self._write_json(self.path("configs", "client.json"), {
            "id": "fig", "servers": [{"id": n, "address": addr(self.private[n])} for n in self.ids],
            "params": {"request_timeout_ms": 500, "deadline_ms": 10000}})
        if self.with_proxy:
            self._write_json(self.path("configs", "proxy.json"), {
                "control": addr(self.control),
                "nodes": [{"id": n, "public": addr(self.public[n]), "private": addr(self.private[n])}
                          for n in self.ids]})

    @staticmethod
    def _write_json(path: str, doc: dict) -> None:
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    # -- processes --

    def start_proxy(self) -> None:
        if self.args.proxy_bin is None:
            raise BenchError("this mode needs --proxy-bin")
        argv = [self.args.proxy_bin, "--config", self.path("configs", "proxy.json"),
                "--seed", str(self.args.seed)]
        self.proxy = spawn(argv, self.path("logs", "proxy.log"), self.dir)
        self.proxy_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.proxy_sock.bind((HOST, 0))
        end = now() + 5.0
        while now() < end:
            if self.proxy.poll() is not None:
                raise BenchError(f"proxy exited with {self.proxy.returncode}:\n{self.log_tail('proxy')}")
            try:
                self.proxy_call("ping", timeout=0.05, attempts=1)
                return
            except BenchError:
                time.sleep(0.05)
        raise BenchError("proxy did not answer ping within 5 s")

    def proxy_call(self, cmd: str, timeout: float = 0.5, attempts: int = 6, **fields) -> dict:
        request = json.dumps(dict(cmd=cmd, **fields)).encode()
        sock = self.proxy_sock
        for _ in range(attempts):
            sock.setblocking(False)
            try:
                while True:
                    sock.recv(65535)
            except (BlockingIOError, OSError):
                pass
            sock.setblocking(True)
            sock.sendto(request, self.control)
            end = now() + timeout
            while True:
                left = end - now()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    raw = sock.recv(65535)
                except socket.timeout:
                    break
                except OSError:
                    time.sleep(0.05)
                    break
                try:
                    reply = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(reply, dict) and reply.get("ok") is True:
                    return reply
                if isinstance(reply, dict):
                    raise BenchError(f"proxy refused {cmd} {fields}: {reply.get('error')}")
        raise BenchError(f"proxy did not answer {cmd}")

    def start(self, nodes: Optional[list[str]] = None) -> dict[str, float]:
        """Start nodes (default all) without waiting; returns each one's start time."""
        out = {}
        for n in (self.ids if nodes is None else nodes):
            p = self.procs.get(n)
            if p is not None and p.poll() is None:
                raise BenchError(f"{n} is already running")
            argv = [self.args.node_bin, self.path("configs", f"{n}.json")]
            t0 = now()
            self.procs[n] = spawn(argv, self.path("logs", f"{n}.log"), self.dir)
            self.start_times[n] = out[n] = t0
        return out

    def stop(self, nodes: Optional[list[str]] = None) -> dict[str, Optional[float]]:
        """SIGTERM all given nodes at once, then wait for each; returns seconds until each exited."""
        targets = [n for n in (self.ids if nodes is None else nodes) if self.procs.get(n) is not None]
        t0 = now()
        for n in targets:
            p = self.procs[n]
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        out = {}
        for n in targets:
            p = self.procs[n]
            try:
                p.wait(timeout=max(0.1, t0 + self.args.stop_grace - now()))
                out[n] = now() - t0
            except subprocess.TimeoutExpired:
                log(f"{n} (pid {p.pid}) still alive {self.args.stop_grace:.0f} s after SIGTERM: SIGKILL")
                p.kill()
                p.wait(timeout=10)
                out[n] = None
            if p.returncode not in (0, -signal.SIGTERM):
                log(f"{n} exited with {p.returncode} on SIGTERM")
            reap(p)
            self.procs[n] = None
        return out

    def pid(self, n: str) -> Optional[int]:
        p = self.procs.get(n)
        return p.pid if p is not None and p.poll() is None else None

    def rss(self, n: str) -> dict:
        pid = self.pid(n)
        return proc_status_kb(pid) if pid else {}

    def check_alive(self, nodes: Optional[list[str]] = None) -> None:
        for n in (self.ids if nodes is None else nodes):
            p = self.procs.get(n)
            if p is not None and p.poll() is not None:
                raise BenchError(f"{n} exited with status {p.returncode}; last log lines:\n{self.log_tail(n)}")

    def log_tail(self, n: str, lines: int = 15) -> str:
        try:
            with open(self.path("logs", f"{n}.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def teardown(self) -> None:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        try:
            self._teardown()
        finally:
            signal.signal(signal.SIGINT, old)

    def _teardown(self) -> None:
        for n in self.ids:
            p = self.procs.get(n)
            if p is not None:
                stop_process(p, grace=5.0)
                self.procs[n] = None
        if self.proxy is not None:
            stop_process(self.proxy, grace=5.0)
            self.proxy = None
        for s in (self.probe.sock, self.proxy_sock):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self.ports.release()
        if self.args.keep:
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- observations --

    def statuses(self, timeout: float = 0.3) -> dict[str, Optional[dict]]:
        return self.probe.poll(timeout=timeout)

    def wait_leader(self, timeout: float) -> tuple[str, dict]:
        """Until one node is leader and every running node names it; returns (leader, statuses)."""
        end = now() + timeout
        st: dict = {}
        while now() < end:
            self.check_alive()
            st = self.statuses(0.2)
            ld = leader_in(st)
            if ld is not None and all(isinstance(s, dict) and s.get("leader") == ld and
                                      s.get("term") == st[ld].get("term") for s in st.values()):
                return ld, st
            time.sleep(0.03)
        raise BenchError(f"no settled leader within {timeout:.0f} s: {describe(st)}")

    def wait_converged(self, timeout: float, at_least: int = 0) -> dict:
        """Until every node's last_applied equals the highest commit_index and is >= at_least."""
        end = now() + timeout
        st: dict = {}
        while now() < end:
            self.check_alive()
            st = self.statuses(0.3)
            if all(isinstance(s, dict) for s in st.values()):
                top = max(s.get("commit_index") or 0 for s in st.values())
                if top >= at_least and all((s.get("last_applied") or 0) >= top for s in st.values()):
                    return st
            time.sleep(0.05)
        raise BenchError(f"nodes did not converge within {timeout:.0f} s: {describe(st)}")

    def data_sizes(self) -> dict[str, dict]:
        return {n: dir_sizes(self.data_dir(n)) for n in self.ids}


def describe(statuses: dict) -> str:
    parts = []
    for n, s in sorted(statuses.items()):
        if not isinstance(s, dict):
            parts.append(f"{n}: no answer")
        else:
            parts.append(f"{n}: {s.get('role')} t{s.get('term')} commit {s.get('commit_index')} "
                         f"applied {s.get('last_applied')} log {s.get('last_log_index')}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# Load generator: many virtual clients (one outstanding seq each, as the
# contract demands) multiplexed over one UDP socket, retrying the same seq on
# not_leader (at the hinted leader), busy (after 20 ms) and timeouts (at the
# next server).

class LoadGen:
    def __init__(self, servers: dict[str, tuple[str, int]], *, concurrency: int, keys: int, value_bytes: int,
                 request_timeout: float, seed: int, key_prefix: str = "key-"):
        for host, _port in servers.values():
            if not host.startswith("127."):
                raise BenchError(f"refusing to send load to {host}: loopback only")
        self.servers = dict(servers)
        self.order = list(servers)
        self.concurrency = concurrency
        self.keys = keys
        self.key_prefix = key_prefix
        self.request_timeout = request_timeout
        self.rng = random.Random(seed)
        prefix = f"fig{os.urandom(3).hex()}"
        self.client_ids = [f"{prefix}-{k}" for k in range(concurrency)]
        letters = "abcdefghijklmnopqrstuvwxyz0123456789"
        self.values = ["".join(self.rng.choice(letters) for _ in range(value_bytes)) for _ in range(64)]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.leader = self.order[0]
        self.seqs = [0] * concurrency
        self.counters = {"ok": 0, "sent": 0, "resent": 0, "timeouts": 0, "not_leader": 0, "busy": 0,
                         "rejected": 0}
        self.issued = 0

    def close(self) -> None:
        self.sock.close()

    def set_leader(self, node: str) -> None:
        if node in self.servers:
            self.leader = node

    def run(self, *, total: Optional[int] = None, duration: Optional[float] = None, hard_timeout: float,
            tick: Optional[tuple[float, Callable[[], None]]] = None, progress: float = 5.0) -> dict:
        """Send sets until `total` succeeded or `duration` passed (whichever is given),
        never longer than hard_timeout. Returns counters and elapsed time."""
        if total is None and duration is None:
            raise ValueError("total or duration")
        c = self.concurrency
        sock = self.sock
        sendto = sock.sendto
        recv = sock.recv
        servers = self.servers
        loads = json.loads
        counters = self.counters
        start = now()
        stop_at = start + (duration if duration is not None else hard_timeout)
        hard_end = start + hard_timeout
        # Per virtual client: op payload pieces, target node, send time, retry-at time.
        target = [self.leader] * c
        sent_at = [0.0] * c
        retry_at = [0.0] * c  # > 0: waiting to resend
        active = [False] * c
        key_of = [""] * c
        val_of = [""] * c
        index_of = {cid: k for k, cid in enumerate(self.client_ids)}
        ok_start = counters["ok"]
        target_ok = None if total is None else ok_start + total
        next_progress = start + progress
        next_tick = start + tick[0] if tick else None
        values = self.values
        nvals = len(values)
        order = self.order

        def request(k: int) -> bytes:
            return ('{"type":"client_request","src":"%s","dest":"%s","seq":%d,"op":"set","key":"%s","value":"%s"}'
                    % (self.client_ids[k], target[k], self.seqs[k], key_of[k], val_of[k])).encode()

        def issue(k: int) -> None:
            if (total is not None and self.issued >= total) or now() >= stop_at:
                active[k] = False
                return
            i = self.issued
            self.issued += 1
            self.seqs[k] += 1
            key_of[k] = f"{self.key_prefix}{i % self.keys}"
            val_of[k] = values[i % nvals]
            target[k] = self.leader
            active[k] = True
            retry_at[k] = 0.0
            sent_at[k] = now()
            counters["sent"] += 1
            try:
                sendto(request(k), servers[target[k]])
            except OSError:
                retry_at[k] = now() + 0.02

        def resend(k: int) -> None:
            retry_at[k] = 0.0
            sent_at[k] = now()
            counters["resent"] += 1
            try:
                sendto(request(k), servers[target[k]])
            except OSError:
                retry_at[k] = now() + 0.02

        def next_server(node: str) -> str:
            return order[(order.index(node) + 1) % len(order)]

        if total is not None:
            self.issued = 0
        for k in range(c):
            issue(k)
        last_scan = now()
        while True:
            t = now()
            if t >= hard_end:
                break
            if target_ok is not None and counters["ok"] >= target_ok:
                break
            if not any(active):
                break
            r, _, _ = select.select([sock], [], [], 0.005)
            if r:
                for _ in range(4 * c + 64):
                    try:
                        data = recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        continue
                    try:
                        doc = loads(data)
                        k = index_of[doc["dest"]]
                    except (ValueError, KeyError, TypeError):
                        continue
                    if not active[k] or doc.get("seq") != self.seqs[k]:
                        continue  # late reply to an attempt already retried or answered
                    if doc.get("ok") is True:
                        counters["ok"] += 1
                        if doc.get("src") in servers:
                            self.leader = doc["src"]
                        issue(k)
                        continue
                    err = doc.get("error")
                    if err == "not_leader":
                        counters["not_leader"] += 1
                        hint = doc.get("leader")
                        if hint in servers and hint != target[k]:
                            target[k] = hint
                            self.leader = hint
                            resend(k)
                        else:
                            target[k] = next_server(target[k])
                            sent_at[k] = now()
                            retry_at[k] = now() + 0.02
                    elif err == "busy":
                        counters["busy"] += 1
                        sent_at[k] = now()
                        retry_at[k] = now() + 0.02
                    else:  # bad_request, too_large: definite, move on
                        counters["rejected"] += 1
                        if counters["rejected"] <= 3:
                            log(f"rejected: {doc}")
                        issue(k)
            t = now()
            if t - last_scan >= 0.005:
                last_scan = t
                for k in range(c):
                    if not active[k]:
                        if duration is not None and t < stop_at and total is None:
                            issue(k)
                        continue
                    if retry_at[k] > 0.0:
                        if t >= retry_at[k]:
                            resend(k)
                    elif t - sent_at[k] >= self.request_timeout:
                        counters["timeouts"] += 1
                        target[k] = next_server(target[k])
                        resend(k)
            if next_tick is not None and t >= next_tick:
                tick[1]()
                next_tick += tick[0]
                while next_tick <= now():
                    next_tick += tick[0]
            if progress and t >= next_progress:
                done = counters["ok"] - ok_start
                log(f"  load: {done} sets in {t - start:.0f} s ({done / (t - start):.0f}/s), "
                    f"timeouts {counters['timeouts']}, not_leader {counters['not_leader']}, busy {counters['busy']}")
                next_progress += progress
            if duration is not None and t >= stop_at:
                # Let outstanding requests finish (bounded by one request timeout).
                if t >= stop_at + self.request_timeout:
                    break
                for k in range(c):
                    if active[k] and retry_at[k] > 0.0:
                        active[k] = False
        elapsed = now() - start
        done = counters["ok"] - ok_start
        return {"ok": done, "elapsed_s": round(elapsed, 3),
                "throughput": round(done / elapsed, 1) if elapsed > 0 else None,
                "hit_hard_timeout": now() >= hard_end, **{k: v for k, v in counters.items() if k != "ok"}}


def make_loadgen(args, cluster: Cluster) -> LoadGen:
    return LoadGen(cluster.private, concurrency=args.concurrency, keys=args.keys, value_bytes=args.value_bytes,
                   request_timeout=args.request_timeout, seed=args.seed)


# ---------------------------------------------------------------------------
# Restart timing.

def time_restart(cluster: Cluster, nodes: list[str], *, caught_up_index: int, timeout: float,
                 rss_later: float = 2.0) -> dict:
    """Start `nodes` (stopped) and watch them with a status every 10 ms each.

    Times from each node's own start: its first status answer and its
    last_applied >= caught_up_index. From the first start: the first status
    with role leader (only when the whole cluster restarted) and "settled"
    (every node names one leader in one term). RSS at the first answer and
    rss_later seconds after it.
    """
    probe = cluster.probe
    probe.recv_all()
    starts = cluster.start(nodes)
    t_base = min(starts.values())
    answer: dict[str, float] = {}
    rss_answer: dict[str, dict] = {}
    rss_late: dict[str, dict] = {}
    caught: dict[str, float] = {}
    first_status: dict[str, dict] = {}
    last_status: dict[str, dict] = {}
    leader_t: Optional[float] = None
    leader_id: Optional[str] = None
    settled_t: Optional[float] = None
    watch = list(cluster.ids)  # the others answer too: the leader may be one of them
    whole_cluster = set(nodes) == set(cluster.ids)  # else the leader never stopped: no election to time
    end = t_base + timeout
    next_send = now()
    while now() < end:
        t = now()
        if t >= next_send:
            for n in watch:
                probe.send(n)
            next_send = t + 0.01
        select.select([probe.sock], [], [], max(0.0, min(next_send - now(), 0.01)))
        for tr, doc in probe.recv_all():
            n = doc["src"]
            last_status[n] = doc
            if n in nodes and n not in answer and tr >= starts[n]:
                answer[n] = tr - starts[n]
                rss_answer[n] = cluster.rss(n)
                first_status[n] = pick_status(doc)
            if doc.get("role") == "leader" and leader_t is None and n in answer and whole_cluster:
                leader_t = tr - t_base
                leader_id = n
            if n in answer and n not in caught and (doc.get("last_applied") or 0) >= caught_up_index:
                caught[n] = tr - starts[n]
        ld = leader_in(last_status)
        if settled_t is None and ld is not None and len(last_status) == len(cluster.ids) and \
                all(s.get("leader") == ld and s.get("term") == last_status[ld].get("term")
                    for s in last_status.values()) and all(n in answer for n in nodes):
            settled_t = now() - t_base
        t = now()
        for n in nodes:
            if n in answer and n not in rss_late and t - starts[n] - answer[n] >= rss_later:
                rss_late[n] = cluster.rss(n)
        cluster.check_alive(nodes)
        if len(answer) == len(nodes) and len(caught) == len(nodes) and len(rss_late) == len(nodes) \
                and (leader_t is not None or not whole_cluster) and settled_t is not None:
            break
    missing = [n for n in nodes if n not in answer or n not in caught]
    if missing:
        raise BenchError(f"within {timeout:.0f} s of the restart, {missing} did not answer or catch up "
                         f"to index {caught_up_index}: {describe(last_status)}")
    return {
        "answer_s": {n: round(answer[n], 4) for n in nodes},
        "leader_seen_s": None if leader_t is None else round(leader_t, 4),
        "leader_seen": leader_id,
        "settled_s": None if settled_t is None else round(settled_t, 4),
        "caught_up_index": caught_up_index,
        "caught_up_s": {n: round(caught[n], 4) for n in nodes},
        "rss_at_answer_kb": {n: rss_answer[n].get("VmRSS") for n in nodes},
        "rss_2s_kb": {n: rss_late.get(n, {}).get("VmRSS") for n in nodes},
        "hwm_2s_kb": {n: rss_late.get(n, {}).get("VmHWM") for n in nodes},
        "status_at_answer": first_status,
    }


def mib(b: Optional[int]) -> str:
    return "-" if b is None else f"{b / 1048576:.1f}"


def kb_mib(kb: Optional[int]) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f}"


def secs(s: Optional[float]) -> str:
    return "-" if s is None else f"{s:.3f}"


# ---------------------------------------------------------------------------
# Mode: restart.

def run_restart_one(args, n_sets: int) -> dict:
    cluster = Cluster(args, f"restart{n_sets}")
    gen = None
    out: dict = {"sets": n_sets}
    try:
        log(f"restart N={n_sets}: cluster in {cluster.dir}")
        cluster.start()
        leader, _ = cluster.wait_leader(args.leader_timeout)
        gen = make_loadgen(args, cluster)
        gen.set_leader(leader)
        log(f"loading {n_sets} sets over {args.keys} keys, {args.value_bytes}-byte values, "
            f"{args.concurrency} outstanding, leader {leader}")
        load = gen.run(total=n_sets, hard_timeout=args.load_timeout)
        out["load"] = load
        log(f"loaded {load['ok']} sets in {load['elapsed_s']:.1f} s ({load['throughput']}/s)")
        if load["ok"] < n_sets:
            raise BenchError(f"only {load['ok']} of {n_sets} sets succeeded within --load-timeout "
                             f"{args.load_timeout:.0f} s")
        st = cluster.wait_converged(args.restart_timeout)
        leader = leader_in(st) or leader
        time.sleep(args.settle)  # let any background work (a snapshot being written) finish
        st = cluster.statuses()
        leader = leader_in(st) or leader
        rss = {n: cluster.rss(n) for n in cluster.ids}
        out["after_load"] = {
            "leader": leader,
            "leader_rss_kb": rss[leader].get("VmRSS"),
            "leader_hwm_kb": rss[leader].get("VmHWM"),
            "rss_kb": {n: r.get("VmRSS") for n, r in rss.items()},
            "hwm_kb": {n: r.get("VmHWM") for n, r in rss.items()},
            "data_dir": cluster.data_sizes(),
            "status": {n: pick_status(s) for n, s in st.items()},
        }
        commit = max((s or {}).get("commit_index") or 0 for s in st.values())

        log("restarting all nodes (SIGTERM, wait, start)")
        stop_s = cluster.stop()
        r = time_restart(cluster, list(cluster.ids), caught_up_index=commit, timeout=args.restart_timeout)
        r["stop_s"] = {n: None if v is None else round(v, 4) for n, v in stop_s.items()}
        out["restart_all"] = r
        log(f"restart all: answer {r['answer_s']}, leader seen {r['leader_seen_s']} s, caught up {r['caught_up_s']}")

        leader, st = cluster.wait_leader(args.leader_timeout)
        follower = next(n for n in cluster.ids if n != leader)
        commit = max((s or {}).get("commit_index") or 0 for s in st.values())
        log(f"restarting follower {follower} alone")
        stop_s = cluster.stop([follower])
        r = time_restart(cluster, [follower], caught_up_index=commit, timeout=args.restart_timeout)
        r["node"] = follower
        r["stop_s"] = None if stop_s[follower] is None else round(stop_s[follower], 4)
        out["restart_follower"] = r
        log(f"restart {follower}: answer {r['answer_s'][follower]} s, caught up {r['caught_up_s'][follower]} s")
        st = cluster.statuses()
        out["after_restarts"] = {"status": {n: pick_status(s) for n, s in st.items()},
                                 "data_dir": cluster.data_sizes(),
                                 "rss_kb": {n: cluster.rss(n).get("VmRSS") for n in cluster.ids}}
        return out
    finally:
        if gen is not None:
            gen.close()
        cluster.teardown()


def print_restart(runs: list[dict]) -> None:
    for run in runs:
        if "error" in run:
            print(f"\nN = {run['sets']}: FAILED: {run['error']}")
            continue
        a = run["after_load"]
        ra = run["restart_all"]
        rf = run["restart_follower"]
        ld = a["leader"]
        print(f"\n=== restart: N = {run['sets']} sets ===")
        print(f"load: {run['load']['ok']} sets in {run['load']['elapsed_s']:.1f} s = {run['load']['throughput']} sets/s "
              f"(timeouts {run['load']['timeouts']}, not_leader {run['load']['not_leader']}, busy {run['load']['busy']})")
        print(f"leader after load: {ld}, RSS {kb_mib(a['leader_rss_kb'])} MiB (peak {kb_mib(a['leader_hwm_kb'])} MiB)")
        hdr = (f"{'node':<5} {'role':<9} {'commit':>9} {'applied':>9} {'last_log':>9} {'snap_idx':>9} "
               f"{'RSS MiB':>8} {'data MiB':>9} {'alloc MiB':>9} {'-reserve':>9}")
        print(hdr)
        for n in sorted(a["status"]):
            s = a["status"][n] or {}
            d = a["data_dir"][n]
            print(f"{n:<5} {str(s.get('role')):<9} {str(s.get('commit_index')):>9} {str(s.get('last_applied')):>9} "
                  f"{str(s.get('last_log_index')):>9} {str(s.get('snapshot_index', '-')):>9} "
                  f"{kb_mib(a['rss_kb'][n]):>8} {mib(d['apparent_bytes']):>9} {mib(d['allocated_bytes']):>9} "
                  f"{mib(d['apparent_bytes_excl_reserve']):>9}")
        print(f"restart all: leader seen {secs(ra['leader_seen_s'])} s ({ra['leader_seen']}), "
              f"settled {secs(ra['settled_s'])} s after the first start; caught up to {ra['caught_up_index']}")
        print(f"{'node':<5} {'stop s':>8} {'answer s':>9} {'caught s':>9} {'RSS@ans':>8} {'RSS+2s':>8}  (MiB)")
        for n in sorted(ra["answer_s"]):
            print(f"{n:<5} {secs(ra['stop_s'].get(n)):>8} {secs(ra['answer_s'][n]):>9} {secs(ra['caught_up_s'][n]):>9} "
                  f"{kb_mib(ra['rss_at_answer_kb'][n]):>8} {kb_mib(ra['rss_2s_kb'][n]):>8}")
        n = rf["node"]
        print(f"restart follower {n} alone: stop {secs(rf['stop_s'])} s, answer {secs(rf['answer_s'][n])} s, "
              f"caught up {secs(rf['caught_up_s'][n])} s, RSS at answer {kb_mib(rf['rss_at_answer_kb'][n])} MiB, "
              f"+2 s {kb_mib(rf['rss_2s_kb'][n])} MiB")


def mode_restart(args) -> dict:
    runs = []
    for n_sets in args.sets:
        t0 = now()
        try:
            run = run_restart_one(args, n_sets)
        except BenchError as e:
            log(f"N={n_sets} failed: {e}")
            run = {"sets": n_sets, "error": str(e)}
        run["runtime_s"] = round(now() - t0, 1)
        runs.append(run)
    print_restart(runs)
    return {"runs": runs}


# ---------------------------------------------------------------------------
# Mode: soak.

class ClientBench:
    """The reference client's bench (write ratio 1) as the load; ops from its progress lines."""

    PROGRESS = re.compile(rb"\[\s*(\d+)s\] ops (\d+)")

    def __init__(self, args, cluster: Cluster, duration: float):
        if not args.client_bin:
            raise BenchError("--loadgen client needs --client-bin")
        argv = [args.client_bin, "--config", cluster.path("configs", "client.json"), "--json", "bench",
                "--clients", str(args.concurrency), "--duration", str(duration), "--write-ratio", "1",
                "--keys", str(args.keys), "--value-bytes", str(args.value_bytes), "--seed", str(args.seed)]
        self.ops = 0
        self.report: Optional[dict] = None
        self.proc = subprocess.Popen(argv, cwd=cluster.dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
        with _children_lock:
            _children[self.proc.pid] = self.proc
        self._out: list[bytes] = []
        self.t_err = threading.Thread(target=self._read_err, daemon=True)
        self.t_out = threading.Thread(target=lambda: self._out.append(self.proc.stdout.read()), daemon=True)
        self.t_err.start()
        self.t_out.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            m = self.PROGRESS.search(line)
            if m:
                self.ops = int(m.group(2))

    def finish(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, grace=2.0)
        reap(self.proc)
        self.t_out.join(2.0)
        try:
            self.report = json.loads(b"".join(self._out).decode().strip().splitlines()[-1])
            self.ops = self.report.get("ops", self.ops)
        except (ValueError, IndexError):
            self.report = None


def mode_soak(args) -> dict:
    cluster = Cluster(args, "soak")
    load: dict = {"gen": None, "bench": None}  # whichever generator runs
    samples: list[dict] = []
    out: dict = {}
    try:
        log(f"soak: cluster in {cluster.dir}")
        cluster.start()
        leader, _ = cluster.wait_leader(args.leader_timeout)
        t_start = now()
        state = {"leader": leader, "last_ops": 0, "last_t": t_start}

        def ops_done() -> int:
            if load["bench"] is not None:
                return load["bench"].ops
            return load["gen"].counters["ok"] if load["gen"] is not None else 0

        def sample() -> None:
            t = now()
            st = cluster.statuses(0.2)
            ld = leader_in(st) or state["leader"]
            state["leader"] = ld
            if load["gen"] is not None:
                load["gen"].set_leader(ld)
            ops = ops_done()
            sizes = cluster.data_sizes()
            rss = cluster.rss(ld)
            dt = t - state["last_t"]
            s = {"t_s": round(t - t_start, 2), "ops": ops,
                 "ops_per_s": round((ops - state["last_ops"]) / dt, 1) if dt > 0 else None,
                 "leader": ld, "leader_rss_kb": rss.get("VmRSS"), "leader_hwm_kb": rss.get("VmHWM"),
                 "data_apparent_bytes": {n: d["apparent_bytes"] for n, d in sizes.items()},
                 "data_allocated_bytes": {n: d["allocated_bytes"] for n, d in sizes.items()},
                 "status": {n: pick_status(x) for n, x in st.items()}}
            state["last_ops"], state["last_t"] = ops, t
            samples.append(s)
            log(f"  t={s['t_s']:.0f}s ops={ops} ({s['ops_per_s']}/s) leader {ld} RSS {kb_mib(s['leader_rss_kb'])} MiB "
                f"data {', '.join(mib(v) for v in s['data_apparent_bytes'].values())} MiB")
            cluster.check_alive()

        sample()
        try:
            if args.loadgen == "client":
                bench = load["bench"] = ClientBench(args, cluster, args.duration)
                end = t_start + args.duration
                next_tick = t_start + args.interval
                while now() < end and bench.proc.poll() is None:
                    time.sleep(max(0.0, min(end, next_tick) - now()))
                    if now() >= next_tick:
                        sample()
                        next_tick += args.interval
                bench.finish(timeout=30)
                out["client_bench_report"] = bench.report
            else:
                gen = load["gen"] = make_loadgen(args, cluster)
                gen.set_leader(leader)
                out["load"] = gen.run(duration=args.duration, hard_timeout=args.duration + 30,
                                      tick=(args.interval, sample), progress=0)
        except KeyboardInterrupt:
            out["interrupted"] = True
            log("interrupted: the table below ends early")
        if now() - state["last_t"] >= min(1.0, args.interval / 2):
            sample()  # the end point, unless a tick just took it
        out["samples"] = samples
        out["final_status"] = {n: pick_status(s) for n, s in cluster.statuses().items()}
        out["final_data_dir"] = cluster.data_sizes()
    finally:
        if load["gen"] is not None:
            load["gen"].close()
        if load["bench"] is not None and load["bench"].proc.poll() is None:
            stop_process(load["bench"].proc, grace=2.0)
        cluster.teardown()
    ids = sorted(samples[0]["data_apparent_bytes"]) if samples else []
    print("\n=== soak ===")
    print(f"{'t s':>7} {'ops':>10} {'ops/s':>8} {'leader':>6} {'RSS MiB':>8} "
          + " ".join(f"{n + ' MiB':>9}" for n in ids) + " " + " ".join(f"{n + ' alloc':>9}" for n in ids)
          + f" {'commit':>9} {'snap_idx':>9}")
    for s in samples:
        ldst = s["status"].get(s["leader"]) or {}
        print(f"{s['t_s']:>7.1f} {s['ops']:>10} {str(s['ops_per_s']):>8} {s['leader']:>6} {kb_mib(s['leader_rss_kb']):>8} "
              + " ".join(f"{mib(s['data_apparent_bytes'][n]):>9}" for n in ids) + " "
              + " ".join(f"{mib(s['data_allocated_bytes'][n]):>9}" for n in ids)
              + f" {str(ldst.get('commit_index')):>9} {str(ldst.get('snapshot_index', '-')):>9}")
    return out


# ---------------------------------------------------------------------------
# Mode: catchup.

def mode_catchup(args) -> dict:
    cluster = Cluster(args, "catchup", with_proxy=True)
    gen = None
    out: dict = {}
    try:
        log(f"catchup: cluster in {cluster.dir}")
        cluster.start_proxy()
        cluster.start()
        leader, _ = cluster.wait_leader(args.leader_timeout)
        follower = next(n for n in cluster.ids if n != leader)
        others = [n for n in cluster.ids if n != follower]
        cluster.proxy_call("partition", groups=[others, [follower]])
        log(f"partitioned {follower} off ({others} | {follower}); {args.writes} sets to {leader}")
        out.update({"leader": leader, "follower": follower, "partition": [others, [follower]]})
        gen = make_loadgen(args, cluster)
        gen.set_leader(leader)
        load = gen.run(total=args.writes, hard_timeout=args.load_timeout)
        out["load"] = load
        log(f"wrote {load['ok']} sets in {load['elapsed_s']:.1f} s")
        if load["ok"] < args.writes:
            raise BenchError(f"only {load['ok']} of {args.writes} sets succeeded")
        st = cluster.statuses()
        out["before_heal"] = {"status": {n: pick_status(s) for n, s in st.items()},
                              "data_dir": cluster.data_sizes()}
        # The lossy rule goes in first, so that the whole catch-up runs under it.
        rule = {"drop": args.drop, "duplicate": args.duplicate, "delay_ms": 0, "jitter_ms": 0}
        cluster.proxy_call("set", **{"from": "*", "to": "*"}, **rule)
        cluster.proxy_call("stats", reset=True)
        cluster.proxy_call("heal")
        t0 = now()
        log(f"healed; all links drop {args.drop:.0%} duplicate {args.duplicate:.0%}; waiting for {follower}")
        caught_t = None
        st = {}
        target = None
        while now() - t0 < args.timeout:
            cluster.check_alive()
            st = cluster.statuses(0.2)
            ld = leader_in(st)
            fs = st.get(follower)
            if ld is not None and isinstance(fs, dict):
                target = st[ld].get("commit_index") or 0
                if (fs.get("last_applied") or 0) >= target and target >= args.writes:
                    caught_t = now() - t0
                    break
            time.sleep(0.05)
        out["caught_up_s"] = None if caught_t is None else round(caught_t, 3)
        out["timeout_s"] = args.timeout
        out["target_commit_index"] = target
        out["follower_status"] = pick_status(st.get(follower))
        out["follower_snapshot_index"] = (st.get(follower) or {}).get("snapshot_index")
        out["status"] = {n: pick_status(s) for n, s in st.items()}
        out["data_dir"] = cluster.data_sizes()
        out["follower_rss_kb"] = cluster.rss(follower).get("VmRSS")
        try:
            links = cluster.proxy_call("stats").get("links", {})
            out["proxy_links"] = {k: v for k, v in links.items() if follower in k.split(">")}
        except BenchError:
            pass
    finally:
        if gen is not None:
            gen.close()
        cluster.teardown()
    f = out["follower"]
    fs = out.get("follower_status") or {}
    before = (out["before_heal"]["status"].get(f) or {})
    print("\n=== catchup ===")
    print(f"follower {f} partitioned off during {out['load']['ok']} sets "
          f"({out['load']['elapsed_s']:.1f} s); its last_applied then {before.get('last_applied')}")
    print(f"after heal under drop {args.drop:.0%} / duplicate {args.duplicate:.0%} on all links:")
    if out["caught_up_s"] is None:
        print(f"  NOT caught up within {args.timeout:.0f} s: last_applied {fs.get('last_applied')} "
              f"of {out['target_commit_index']}")
    else:
        print(f"  caught up in {out['caught_up_s']:.3f} s (last_applied {fs.get('last_applied')} >= leader commit "
              f"{out['target_commit_index']})")
    print(f"  follower snapshot_index: {out['follower_snapshot_index']}, data_dir "
          f"{mib(out['data_dir'][f]['apparent_bytes'])} MiB, RSS {kb_mib(out['follower_rss_kb'])} MiB")
    return out


# ---------------------------------------------------------------------------

def parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = json.loads(raw)  # 10000 -> int, [150,300] -> list, true -> bool
    except ValueError:
        value = raw
    return name.strip(), value


def parse_sets(text: str) -> list[int]:
    try:
        out = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sets expects numbers separated by commas, got {text!r}")
    if not out or any(n < 1 for n in out):
        raise argparse.ArgumentTypeError("--sets needs positive numbers")
    return out


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("common")
    g.add_argument("--node-bin", required=True, help="the node binary to measure")
    g.add_argument("--client-bin", help="the reference client (for --loadgen client in soak)")
    g.add_argument("--proxy-bin", help="the fault proxy (catchup)")
    g.add_argument("--param", action="append", type=parse_param, default=[], metavar="NAME=VALUE",
                   help="extra server param written into each node config's params (repeatable; VALUE as JSON)")
    g.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    g.add_argument("--keys", type=int, default=10000, help="key space (default 10000)")
    g.add_argument("--value-bytes", type=int, default=100, help="value size (default 100)")
    g.add_argument("--concurrency", type=int, default=128,
                   help="outstanding requests (virtual clients) of the load generator (default 128)")
    g.add_argument("--request-timeout", type=float, default=1.0, help="load generator's retry timeout, s")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    g.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, data, logs)")
    g.add_argument("--no-peer-auth", action="store_true",
                   help="omit cluster_id/cluster_key_file (for nodes other than the reference one)")
    g.add_argument("--leader-timeout", type=float, default=30.0, help="bound on electing a leader, s")
    g.add_argument("--load-timeout", type=float, default=1800.0, help="bound on one load phase, s")
    g.add_argument("--restart-timeout", type=float, default=300.0,
                   help="bound on a restart (answer + catch up) and on convergence, s")
    g.add_argument("--stop-grace", type=float, default=30.0, help="SIGTERM to SIGKILL, s")

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("restart", parents=[common], help="load N sets, then time restarts")
    r.add_argument("--sets", type=parse_sets, default=[100000, 1000000], help="comma list (default 100000,1000000)")
    r.add_argument("--settle", type=float, default=1.0, help="wait after the load before measuring, s")
    s = sub.add_parser("soak", parents=[common], help="sustained writes; data_dir and RSS over time")
    s.add_argument("--duration", type=float, default=600.0)
    s.add_argument("--interval", type=float, default=10.0)
    s.add_argument("--loadgen", choices=("python", "client"), default="python",
                   help="python: this script's generator (default); client: `CLIENT bench --write-ratio 1`")
    c = sub.add_parser("catchup", parents=[common], help="partitioned follower catching up over a lossy network")
    c.add_argument("--writes", type=int, default=100000)
    c.add_argument("--timeout", type=float, default=120.0)
    c.add_argument("--drop", type=float, default=0.10)
    c.add_argument("--duplicate", type=float, default=0.05)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    args.params = dict(args.param)
    for attr in ("node_bin", "client_bin", "proxy_bin"):
        v = getattr(args, attr)
        if v is not None:
            v = os.path.abspath(v)
            if not (os.path.isfile(v) and os.access(v, os.X_OK)):
                print(f"snapshot_figures: --{attr.replace('_', '-')} {v}: not an executable file", file=sys.stderr)
                return 2
            setattr(args, attr, v)
    if args.mode == "catchup" and not args.proxy_bin:
        print("snapshot_figures: catchup needs --proxy-bin", file=sys.stderr)
        return 2
    if args.nodes < 1 or args.concurrency < 1 or args.keys < 1 or args.value_bytes < 0:
        print("snapshot_figures: --nodes, --concurrency and --keys must be >= 1", file=sys.stderr)
        return 2
    if args.mode == "soak" and (args.duration <= 0 or args.interval <= 0):
        print("snapshot_figures: --duration and --interval must be positive", file=sys.stderr)
        return 2

    # SIGTERM/SIGHUP end the run like Ctrl-C: through the finally blocks that stop every child.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    t0 = now()
    result = {"mode": args.mode, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "argv": sys.argv, "node_bin": args.node_bin, "node_bin_sha256": sha256_of(args.node_bin),
              "params": args.params, "nodes": args.nodes, "keys": args.keys, "value_bytes": args.value_bytes,
              "concurrency": args.concurrency,
              "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}}
    code = 0
    try:
        if args.mode == "restart":
            result.update(mode_restart(args))
            if any("error" in r for r in result["runs"]):
                code = 1
        elif args.mode == "soak":
            result.update(mode_soak(args))
            if result.get("interrupted"):
                code = 130
        else:
            result.update(mode_catchup(args))
            if result.get("caught_up_s") is None:
                code = 1
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        result["error"] = "interrupted"
        code = 130
    except BenchError as e:
        log(f"error: {e}")
        result["error"] = str(e)
        code = 1
    finally:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish the cleanup whatever happens
        try:
            stop_all_children()
        finally:
            signal.signal(signal.SIGINT, old)
    result["runtime_s"] = round(now() - t0, 1)
    print(f"\nruntime {result['runtime_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        log(f"wrote {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
