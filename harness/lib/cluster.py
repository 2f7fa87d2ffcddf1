"""A cluster of nodes under test: configs, processes, network faults, observations.

    cluster = Cluster(size=3, node_argv=["./node"], proxy_bin="./proxy", rng=rng)
    try:
        cluster.start()                      # proxy, nodes, status monitor
        leader = cluster.wait_for_leader()
        cluster.kill(leader)                 # SIGKILL: a crash
        cluster.partition(["n1"], ["n2", "n3"])
        ...
    finally:
        cluster.teardown()                   # kills everything it started, removes its files

Everything lives in a fresh temporary directory:

    configs/n1.json ...   node configs (PROTOCOL.md "Configs"); client.json; proxy.json
    data/n1/ ...          each node's data_dir
    logs/n1.log ...       each node's stdout+stderr across restarts; proxy.log
    logs/journal.jsonl    the proxy's message journal (docs/proxy.md), drawn when a test fails

A background monitor polls every node's `status` ten times a second. Its
samples feed `leaders_by_term()` and the observed-leader lines of the fault
timeline that failure reports print. Statuses go straight to the nodes'
private addresses: observing must not be subject to the faults injected.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Union

from . import ports
from .checks import leader_of
from .client import Client, StatusProbe, describe_status
from .history import History
from .process import ManagedProcess
from .proxy import Proxy

HOST = ports.HOST

Nodes = Union[str, Iterable[str]]


@dataclass(frozen=True)
class Timing:
    """The cluster's timing parameters and the bounds the tests derive from them."""
    heartbeat_ms: int = 50
    election_ms: tuple = (150, 300)
    request_timeout: float = 0.3   # a client waits this long for a reply before retrying
    deadline: float = 3.0          # ... and gives up (outcome unavailable) after this long

    @property
    def election_max(self) -> float:
        return self.election_ms[1] / 1000.0

    @property
    def leader_bound(self) -> float:
        """A new leader must be in place within 10 election timeouts of losing the old one."""
        return 10 * self.election_max

    @property
    def startup_bound(self) -> float:
        """The first leader, process start-up included."""
        return max(5.0, self.leader_bound)

    @property
    def catch_up_bound(self) -> float:
        """A lagging or restarted node must catch up within this long."""
        return max(5.0, 10 * self.election_max)


def write_key_file(path: str) -> None:
    """A fresh cluster key in the reference node's format: 64 hex digits and a newline, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")


class ClusterError(AssertionError):
    """A cluster-level expectation failed (no leader, no convergence, ...).

    An AssertionError, so pytest reports the test as failed (with this
    message), not as an error of the harness.
    """


_live_clusters: "set[Cluster]" = set()


@atexit.register
def _teardown_leftovers() -> None:
    for c in list(_live_clusters):
        c.teardown()


class Cluster:
    def __init__(self, size: int, node_argv: Sequence[str], *, proxy_bin: Optional[str] = None,
                 rng: Optional[random.Random] = None, timing: Timing = Timing(),
                 keep_files: bool = False, name: str = "cluster", peer_auth: bool = True,
                 params: Optional[dict] = None):
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = size
        self.ids = [f"n{i}" for i in range(1, size + 1)]
        self.node_argv = list(node_argv)
        self.proxy_bin = proxy_bin
        self.rng = rng or random.Random()
        self.timing = timing
        self.keep_files = keep_files
        self.name = name
        # The reference node authenticates peers (docs/PROTOCOL.md, "Peer
        # authentication"): its configs name a cluster id and key file. Other
        # nodes get PROTOCOL.md's configs exactly, without these fields.
        self.peer_auth = peer_auth
        # More server config `params` (PROTOCOL.md "Configs"), e.g.
        # {"snapshot_threshold_entries": 20}: added to the timing parameters,
        # and override them on a clash. A node ignores those it does not know.
        self.extra_params = dict(params or {})
        self.t0 = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix="raftkv-")
        self.timeline: list[tuple[float, str]] = []
        self.observations: list[tuple[float, str, dict]] = []
        self._obs_lock = threading.Lock()
        self._leader_claims: set[tuple] = set()
        self.nodes: dict[str, ManagedProcess] = {}
        self.proxy: Optional[Proxy] = None
        self._clients: list[Client] = []
        self._probe: Optional[StatusProbe] = None
        self._monitor: Optional[threading.Thread] = None
        self._monitor_stop = threading.Event()
        self._ports: Optional[ports.PortBlock] = None
        self._torn_down = False
        _live_clusters.add(self)
        self._layout()

    # -- layout and configs ----------------------------------------------------

    @property
    def majority(self) -> int:
        return self.size // 2 + 1

    @property
    def uses_proxy(self) -> bool:
        return self.proxy_bin is not None

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def _layout(self) -> None:
        for sub in ("configs", "data", "logs"):
            os.makedirs(self.path(sub))
        self._ports = ports.allocate(2 * self.size + 1 if self.uses_proxy else self.size)
        self.private = {n: (HOST, self._ports.take()) for n in self.ids}
        if self.uses_proxy:
            self.public = {n: (HOST, self._ports.take()) for n in self.ids}
            self.control = (HOST, self._ports.take())
        else:
            self.public = dict(self.private)
            self.control = None
        addr = lambda a: f"{a[0]}:{a[1]}"
        params = {"heartbeat_interval_ms": self.timing.heartbeat_ms,
                  "election_timeout_ms": list(self.timing.election_ms), **self.extra_params}
        auth = {}
        if self.peer_auth:
            auth = {"cluster_id": "h" + os.urandom(8).hex(), "cluster_key_file": self.path("configs", "cluster.key"),
                    "peers_behind_proxy": self.uses_proxy}
            write_key_file(auth["cluster_key_file"])
        for n in self.ids:
            os.makedirs(self.path("data", n))
            config = {"id": n, "listen": addr(self.private[n]), "data_dir": self.path("data", n),
                      "peers": [{"id": p, "address": addr(self.public[p])} for p in self.ids if p != n],
                      "params": params, **auth}
            self._write_json(self.path("configs", f"{n}.json"), config)
            self.nodes[n] = ManagedProcess(n, self.node_argv + [self.path("configs", f"{n}.json")],
                                           self.path("logs", f"{n}.log"), self.elapsed)
        # For a human poking at a kept cluster (--keep-logs) with the project's client.
        self._write_json(self.path("configs", "client.json"), {
            "id": "c1", "servers": [{"id": n, "address": addr(self.public[n])} for n in self.ids],
            "params": {"request_timeout_ms": int(self.timing.request_timeout * 1000),
                       "deadline_ms": int(self.timing.deadline * 1000)}})
        if self.uses_proxy:
            self._write_json(self.path("configs", "proxy.json"), {
                "control": addr(self.control),
                "nodes": [{"id": n, "public": addr(self.public[n]), "private": addr(self.private[n])}
                          for n in self.ids]})

    @staticmethod
    def _write_json(path: str, doc: dict) -> None:
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    # -- time and the fault timeline ---------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        """Add a line to the fault timeline (printed with times when a test fails)."""
        self.timeline.append((self.elapsed(), text))

    # -- starting and stopping ---------------------------------------------------

    def start(self, nodes: Nodes = "all") -> None:
        """Start nodes (default: all). The first call also starts the proxy and the monitor.

        A node started again after stop/kill recovers from its own data_dir.
        Starting does not wait for anything: see wait_for_leader().
        """
        if self.proxy is None and self.uses_proxy:
            self.proxy = Proxy(self.proxy_bin, self.path("configs", "proxy.json"), self.control,
                               self.rng.randrange(1, 2**31), self.path("logs", "proxy.log"), self.elapsed,
                               journal_path=self.path("logs", "journal.jsonl"))
            self.note("start proxy")
            self.proxy.start()
        if self._probe is None:
            self._probe = StatusProbe(self.private)
        for n in self._targets(nodes):
            self.note(f"start {n}")
            self.nodes[n].start()
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._monitor_loop, name=f"{self.name}-monitor", daemon=True)
            self._monitor.start()

    def _targets(self, nodes: Nodes) -> list[str]:
        if nodes == "all":
            return list(self.ids)
        if isinstance(nodes, str):
            nodes = [nodes]
        nodes = list(nodes)
        for n in nodes:
            if n not in self.nodes:
                raise ValueError(f"no node {n!r} in this cluster ({', '.join(self.ids)})")
        return nodes

    def stop(self, nodes: Nodes) -> None:
        """SIGTERM (clean stop), SIGKILL if still alive after 3 s."""
        for n in self._targets(nodes):
            self.note(f"stop {n} (SIGTERM)")
            self.nodes[n].stop()

    def kill(self, nodes: Nodes) -> None:
        """SIGKILL: a crash at an arbitrary instant."""
        targets = self._targets(nodes)
        self.note(f"kill {', '.join(targets)} (SIGKILL)")
        for n in targets:  # signal all first, so "kill all" is one instant
            self.nodes[n].signal(signal.SIGKILL)
        for n in targets:
            self.nodes[n].kill()

    def pause(self, nodes: Nodes) -> None:
        """SIGSTOP: the node freezes (a very slow node, or a GC pause)."""
        for n in self._targets(nodes):
            self.note(f"pause {n} (SIGSTOP)")
            self.nodes[n].pause()

    def resume(self, nodes: Nodes) -> None:
        for n in self._targets(nodes):
            self.note(f"resume {n} (SIGCONT)")
            self.nodes[n].resume()

    def restart(self, nodes: Nodes, crash: bool = True) -> None:
        """Kill (or cleanly stop, crash=False) and start again from the node's own disk state."""
        targets = self._targets(nodes)
        if crash:
            self.kill(targets)
        else:
            self.stop(targets)
        self.start(targets)

    def running(self) -> list[str]:
        """Nodes whose process runs and is not paused."""
        return [n for n in self.ids if self.nodes[n].is_running() and not self.nodes[n].paused]

    # -- clients and statuses ------------------------------------------------------

    def client(self, nodes: Optional[Nodes] = None, **kw) -> Client:
        """A new client (own id) that talks to the nodes' public addresses.

        nodes: the only nodes it knows (e.g. one side of a partition).
        Other keywords go to Client (history, request_timeout, deadline, ...).
        """
        servers = self.public if nodes is None else {n: self.public[n] for n in self._targets(nodes)}
        kw.setdefault("request_timeout", self.timing.request_timeout)
        kw.setdefault("deadline", self.timing.deadline)
        kw.setdefault("rng", random.Random(self.rng.random()))
        c = Client(servers, **kw)
        self._clients.append(c)
        return c

    def history(self) -> History:
        """A new, empty History whose times count from the cluster's start, like the timeline."""
        return History(origin=self.t0)

    def status_all(self, nodes: Optional[Nodes] = None, timeout: float = 0.2) -> dict[str, Optional[dict]]:
        """{id: status_reply or None} from one round of polls."""
        targets = self.ids if nodes is None else self._targets(nodes)
        out = self._probe.poll(targets, timeout)
        self._observe(out)
        return out

    def status(self, node: str, timeout: float = 0.3) -> Optional[dict]:
        return self.status_all([node], timeout)[node]

    def describe_statuses(self, statuses: dict[str, Optional[dict]]) -> str:
        parts = []
        for n, s in sorted(statuses.items()):
            text = describe_status(s)
            if s is None:
                text += f" ({self.nodes[n].describe()})"
            parts.append(f"{n}: {text}")
        return ", ".join(parts)

    def _observe(self, statuses: dict[str, Optional[dict]]) -> None:
        t = self.elapsed()
        with self._obs_lock:
            for n, s in statuses.items():
                if not isinstance(s, dict):
                    continue
                self.observations.append((t, n, s))
                claim = (n, s.get("term"))
                if s.get("role") == "leader" and claim not in self._leader_claims:
                    self._leader_claims.add(claim)
                    self.timeline.append((t, f"(observed) {n} is leader in term {s.get('term')}"))

    def _monitor_loop(self) -> None:
        probe = StatusProbe(self.private)
        try:
            while not self._monitor_stop.is_set():
                began = time.monotonic()
                try:
                    self._observe(probe.poll(timeout=0.08))
                except Exception:  # never let observation kill a test
                    pass
                self._monitor_stop.wait(max(0.0, 0.1 - (time.monotonic() - began)))
        finally:
            probe.close()

    def leaders_by_term(self) -> dict[int, set[str]]:
        """{term: nodes that claimed leadership in it}, from every status seen so far."""
        from .checks import leaders_by_term
        with self._obs_lock:
            return leaders_by_term(list(self.observations))

    def observed(self) -> list[tuple[float, str, dict]]:
        with self._obs_lock:
            return list(self.observations)

    # -- waiting for the cluster ----------------------------------------------------

    def leader_of(self, statuses: dict[str, Optional[dict]]) -> Optional[str]:
        """The leader that these statuses establish, or None.

        Exactly one node claims leadership in the highest term that anybody
        claims leadership in, and a majority of the whole cluster (it
        included) reports that term and that leader.
        """
        return leader_of(statuses, self.majority)

    def wait_for_leader(self, timeout: Optional[float] = None, among: Optional[Nodes] = None,
                        exclude: Iterable[str] = ()) -> str:
        """Poll statuses until a leader is established (see leader_of); return its id.

        among: poll only these nodes (e.g. the majority side of a partition).
        exclude: wait for a leader other than these (e.g. the old leader, which
               may still claim leadership until it hears of the new term).
        """
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        timeout = self.timing.leader_bound if timeout is None else timeout
        nodes = self.ids if among is None else self._targets(among)
        excluded = set(exclude)
        end = time.monotonic() + timeout
        statuses: dict = {}
        while True:
            statuses = self.status_all(nodes)
            leader = self.leader_of(statuses)
            if leader is not None and leader not in excluded:
                self.note(f"leader is {leader} (term {statuses[leader].get('term')})")
                return leader
            alive = [n for n in self.ids if self.nodes[n].is_running()]
            if len(alive) < self.majority:
                raise ClusterError(f"no leader can be elected: only {len(alive)} of {self.size} node processes "
                                   f"are running (statuses: {self.describe_statuses(statuses)})")
            if time.monotonic() >= end:
                break
            time.sleep(0.03)
        extra = f" other than {sorted(excluded)}" if excluded else ""
        raise ClusterError(f"no leader{extra} elected within {timeout:.1f} s "
                           f"(statuses: {self.describe_statuses(statuses)})")

    def wait_for(self, what: str, predicate: Callable[[dict], bool], timeout: float,
                 nodes: Optional[Nodes] = None) -> dict[str, Optional[dict]]:
        """Poll statuses until predicate(statuses) holds; fail with `what` and the statuses."""
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        targets = self.ids if nodes is None else self._targets(nodes)
        end = time.monotonic() + timeout
        while True:
            statuses = self.status_all(targets)
            if predicate(statuses):
                return statuses
            if time.monotonic() >= end:
                raise ClusterError(f"{what}: not reached within {timeout:.1f} s "
                                   f"(statuses: {self.describe_statuses(statuses)})")
            time.sleep(0.05)

    def wait_settled(self, timeout: Optional[float] = None, nodes: Optional[Nodes] = None) -> str:
        """Wait until every node (default: every running one) answers, all report the
        same term and the same leader, and that leader reports role leader; return it."""
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        targets = self.running() if nodes is None else self._targets(nodes)

        def settled(st: dict) -> bool:
            if any(s is None for s in st.values()):
                return False
            if len({(s.get("term"), s.get("leader")) for s in st.values()}) != 1:
                return False
            leader = next(iter(st.values())).get("leader")
            return leader in st and st[leader].get("role") == "leader" and \
                sum(1 for s in st.values() if s.get("role") == "leader") == 1

        st = self.wait_for("one leader followed by all in one term", settled,
                           self.timing.leader_bound if timeout is None else timeout, targets)
        return next(iter(st.values()))["leader"]

    def wait_caught_up(self, node: str, timeout: Optional[float] = None) -> dict:
        """Wait until `node` has applied everything any node had committed when the wait began
        (works while writes go on, unlike wait_converged)."""
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        now = self.status_all()
        target = max((s["commit_index"] for s in now.values()
                      if isinstance(s, dict) and isinstance(s.get("commit_index"), int)), default=0)
        st = self.wait_for(f"{node} applying up to index {target}",
                           lambda st: st[node] is not None and isinstance(st[node].get("last_applied"), int)
                           and st[node]["last_applied"] >= target,
                           self.timing.catch_up_bound if timeout is None else timeout, [node])
        return st[node]

    def wait_converged(self, timeout: Optional[float] = None, nodes: Optional[Nodes] = None,
                       at_least: int = 0) -> dict[str, dict]:
        """Wait until the nodes agree: each answers, all report the same last_applied,
        it is >= every commit_index they report and >= at_least.
        Default nodes: those running (not paused)."""
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        targets = self.running() if nodes is None else self._targets(nodes)

        def agreed(st: dict) -> bool:
            if any(s is None for s in st.values()):
                return False
            applied = {s.get("last_applied") for s in st.values()}
            if len(applied) != 1:
                return False
            value = applied.pop()
            return (isinstance(value, int) and value >= at_least
                    and all(isinstance(s.get("commit_index"), int) and value >= s["commit_index"]
                            for s in st.values()))

        return self.wait_for(f"agreement of {', '.join(targets)} on last_applied (>= {at_least})", agreed,
                             self.timing.catch_up_bound if timeout is None else timeout, targets)

    # -- network faults (need the proxy) ------------------------------------------------

    def _proxy_call(self, description: str, cmd: str, **fields) -> dict:
        if self.proxy is None:
            raise RuntimeError("this cluster runs without the fault proxy; create it with proxy=True")
        self.note(description)
        return self.proxy.call(cmd, **fields)

    def partition(self, *groups: Sequence[str]) -> None:
        """Node-to-node traffic passes only inside a group (client links unaffected).
        Nodes in no group are cut off from everyone."""
        groups = [list(g) for g in groups]
        self._proxy_call("partition " + " | ".join(" ".join(g) for g in groups), "partition", groups=groups)

    def isolate(self, node: str) -> None:
        """Cut `node` off from every other node (clients still reach it)."""
        others = [n for n in self.ids if n != node]
        self.partition([node], others)

    def block(self, frm: str, to: str) -> None:
        """Drop everything from `frm` to `to` (one way)."""
        self._proxy_call(f"block {frm} -> {to}", "block", **{"from": frm, "to": to})

    def unblock(self, frm: str, to: str) -> None:
        self._proxy_call(f"unblock {frm} -> {to}", "unblock", **{"from": frm, "to": to})

    def set_link(self, frm: str, to: str, drop: float = 0.0, delay_ms: int = 0, jitter_ms: int = 0,
                 duplicate: float = 0.0) -> None:
        """A rule for datagrams from `frm` to `to` (node id, "client" or "*")."""
        self._proxy_call(f"link {frm} -> {to}: drop {drop:.0%}, delay {delay_ms}±{jitter_ms} ms, "
                         f"duplicate {duplicate:.0%}", "set", **{"from": frm, "to": to, "drop": drop,
                                                                 "delay_ms": delay_ms, "jitter_ms": jitter_ms,
                                                                 "duplicate": duplicate})

    def unreliable(self, drop: float = 0.0, delay_ms: int = 0, jitter_ms: int = 0, duplicate: float = 0.0) -> None:
        """The same rule on every link, client links included."""
        self.set_link("*", "*", drop, delay_ms, jitter_ms, duplicate)

    def clear_link(self, frm: str, to: str) -> None:
        self._proxy_call(f"clear rule {frm} -> {to}", "clear", **{"from": frm, "to": to})

    def heal(self) -> None:
        """Remove partitions and blocks (loss/delay rules stay)."""
        self._proxy_call("heal", "heal")

    def reset_network(self) -> None:
        """A perfect network again: no partitions, blocks or rules."""
        self._proxy_call("reset network", "reset")

    def link_stats(self) -> dict:
        """{"a>b": {"forwarded": .., "dropped": .., "delayed": .., "duplicated": .., "blocked": ..}}"""
        if self.proxy is None:
            raise RuntimeError("this cluster runs without the fault proxy")
        return self.proxy.call("stats").get("links", {})

    # -- reports and teardown ---------------------------------------------------------

    def report(self, log_lines: int = 30) -> str:
        """Fault timeline, node states and each node's log tail: printed when a test fails."""
        out = [f"{self.name}: {self.size} nodes, files in {self.dir}"
               + ("" if self.keep_files else " (removed after the test; --keep-logs keeps them)")]
        out.append("fault timeline (seconds since the cluster was created):")
        for t, text in sorted(self.timeline, key=lambda e: e[0]):
            out.append(f"  {t:8.3f}  {text}")
        by_term = self.leaders_by_term()
        if by_term:
            out.append("leaders seen by term: " + ", ".join(f"{t}: {'/'.join(sorted(v))}"
                                                             for t, v in sorted(by_term.items())))
        with self._obs_lock:
            last = dict((n, s) for _, n, s in self.observations)
        out.append(self.log_tails(log_lines, proxy_lines=10,
                                  status_of=lambda n: f"last status: {describe_status(last.get(n))}"))
        return "\n".join(out)

    def log_tails(self, lines: int, *, proxy_lines: int = 5,
                  status_of: Optional[Callable[[str], str]] = None) -> str:
        """Each node's state and last `lines` log lines, then the proxy's."""
        out = []
        for n in self.ids:
            proc = self.nodes[n]
            detail = status_of(n) if status_of else f"last {lines} log lines:"
            out.append(f"--- {n}: {proc.describe()}; {detail}")
            out.append(proc.log_tail(lines))
        if self.proxy is not None:
            out.append(f"--- proxy: {self.proxy.process.describe()}")
            out.append(self.proxy.process.log_tail(proxy_lines))
        return "\n".join(out)

    def teardown(self) -> None:
        """Kill every process this cluster started and remove its files.

        Never raises, except to pass on a ^C that arrived meanwhile (after finishing).
        """
        if self._torn_down:
            return
        self._torn_down = True
        _live_clusters.discard(self)
        steps = [self._monitor_stop.set]
        if self._monitor is not None:
            steps.append(lambda: self._monitor.join(2.0))
        steps += [lambda n=n: self.nodes[n].signal(signal.SIGKILL) for n in self.nodes]
        steps += [lambda n=n: self.nodes[n].kill() for n in self.nodes]
        if self.proxy is not None:
            steps.append(self.proxy.close)
        steps += [c.close for c in self._clients]
        if self._probe is not None:
            steps.append(self._probe.close)
        if self._ports is not None:
            steps.append(self._ports.release)
        if not self.keep_files:
            steps.append(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        interrupted: Optional[BaseException] = None
        for step in steps:
            try:
                step()
            except KeyboardInterrupt as e:  # finish tearing down first, then let ^C through
                interrupted = e
            except Exception:
                pass
        if interrupted is not None:
            raise interrupted
