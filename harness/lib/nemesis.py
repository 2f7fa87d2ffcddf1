"""Randomized fault schedules ("nemesis", as Jepsen calls it) for the linearizability campaigns.

A `Nemesis` runs for a given time and, every few hundred milliseconds, may
start a fault and schedules its end:

- crash:      SIGKILL a node (often the leader), restart it from its data_dir later;
- pause:      SIGSTOP a node (often the leader), SIGCONT later;
- crash all:  now and then, SIGKILL every node at once and restart them all;
- partition:  one network shape at a time, healed later:
              halves (a random split), lone (one node, often the leader, cut off),
              bridge (two sides that share one node), one-way (some nodes cannot
              send to others, e.g. to the leader, but still hear them);
- link:       loss, duplication and delay (with jitter, hence reordering) on some
              links: between two nodes, out of a node, or on the client links.

At most (N-1)/2 nodes are crashed or paused at a time (besides "crash all"),
so the cluster can make progress between faults. Every action goes through
the Cluster, so it lands on the fault timeline that failure reports print.
All choices come from the given RNG: the same seed gives the same schedule
(thread and process timing still vary).
"""

from __future__ import annotations

import random
import time
from typing import Callable, Optional


class Nemesis:
    def __init__(self, cluster, rng: random.Random, *, crash_weight: float = 1.0, pause_weight: float = 1.0,
                 partition_weight: float = 1.5, link_weight: float = 1.0, crash_all_weight: float = 0.15,
                 fault_s: tuple = (0.4, 1.8), gap_s: tuple = (0.05, 0.5)):
        self.cluster = cluster
        self.rng = rng
        self.weights = {"crash": crash_weight, "pause": pause_weight, "partition": partition_weight,
                        "link": link_weight, "crash_all": crash_all_weight}
        self.fault_s = fault_s
        self.gap_s = gap_s
        self.max_down = (cluster.size - 1) // 2
        self.killed: set[str] = set()
        self.paused: set[str] = set()
        self.topology_busy = False
        self.links: set[tuple[str, str]] = set()
        self._undo: list[tuple[float, str, Callable[[], None]]] = []
        self.counts: dict[str, int] = {}
        self.unexpected_exits: list[str] = []  # nodes that died without being killed

    # -- helpers -----------------------------------------------------------------

    def _leader(self) -> Optional[str]:
        """The node claiming leadership in the highest term, from one quick poll."""
        best = None
        for n, s in self.cluster.status_all(timeout=0.05).items():
            if s and s.get("role") == "leader" and isinstance(s.get("term"), int):
                if best is None or s["term"] > best[0]:
                    best = (s["term"], n)
        return best[1] if best else None

    def _pick(self, candidates: list[str], prefer_leader: float = 0.5) -> Optional[str]:
        if not candidates:
            return None
        if self.rng.random() < prefer_leader:
            leader = self._leader()
            if leader in candidates:
                return leader
        return self.rng.choice(sorted(candidates))

    def _later(self, what: str, fn: Callable[[], None]) -> None:
        self._undo.append((time.monotonic() + self.rng.uniform(*self.fault_s), what, fn))

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _up(self) -> list[str]:
        return [n for n in self.cluster.ids if n not in self.killed and n not in self.paused]

    # -- faults ----------------------------------------------------------------------

    def crash(self) -> bool:
        if len(self.killed) + len(self.paused) >= self.max_down:
            return False
        n = self._pick(self._up())
        if n is None:
            return False
        self.cluster.kill(n)
        self.killed.add(n)
        self._count("crash")

        def restart(n=n):
            self.cluster.start(n)
            self.killed.discard(n)
        self._later(f"restart {n}", restart)
        return True

    def pause(self) -> bool:
        if len(self.killed) + len(self.paused) >= self.max_down:
            return False
        n = self._pick(self._up())
        if n is None:
            return False
        self.cluster.pause(n)
        self.paused.add(n)
        self._count("pause")

        def resume(n=n):
            self.cluster.resume(n)
            self.paused.discard(n)
        self._later(f"resume {n}", resume)
        return True

    def crash_all(self) -> bool:
        if self.killed or self.paused or any(w == "crash all" for _, w, _ in self._undo):
            return False
        self.cluster.kill("all")
        self.killed = set(self.cluster.ids)
        self._count("crash all")
        time.sleep(self.rng.uniform(0.0, 0.3))
        self.cluster.start("all")
        self.killed.clear()
        return True

    def partition(self) -> bool:
        if self.topology_busy:
            return False
        ids = list(self.cluster.ids)
        self.rng.shuffle(ids)
        shape = self.rng.choice(["halves", "lone", "bridge", "one-way"])
        if shape == "halves":
            cut = self.rng.randrange(1, len(ids))
            self.cluster.partition(ids[:cut], ids[cut:])
        elif shape == "lone":
            lone = self._pick(ids, prefer_leader=0.6)
            self.cluster.isolate(lone)
        elif shape == "bridge" and len(ids) >= 3:
            bridge = ids[0]
            rest = ids[1:]
            cut = self.rng.randrange(1, len(rest))
            self.cluster.partition([bridge] + rest[:cut], [bridge] + rest[cut:])
        else:
            shape = "one-way"
            # Some nodes can no longer send to the leader (or to a random node); it still reaches them.
            target = self._pick(ids, prefer_leader=0.7)
            senders = [n for n in ids if n != target]
            self.rng.shuffle(senders)
            for s in senders[:self.rng.randrange(1, len(senders) + 1)]:
                self.cluster.block(s, target)
        self.topology_busy = True
        self._count(f"partition ({shape})")

        def heal():
            self.cluster.heal()
            self.topology_busy = False
        self._later("heal", heal)
        return True

    def link(self) -> bool:
        ids = self.cluster.ids
        kind = self.rng.choice(["pair", "from", "clients", "all"])
        if kind == "pair":
            frm, to = self.rng.sample(ids, 2)
        elif kind == "from":
            frm, to = self.rng.choice(ids), "*"
        elif kind == "clients":
            frm, to = self.rng.choice([("client", "*"), ("*", "client")])
        else:
            frm, to = "*", "*"
        if (frm, to) in self.links:
            return False
        drop = self.rng.choice([0.0, 0.05, 0.1, 0.2, 0.3])
        dup = self.rng.choice([0.0, 0.1, 0.3, 0.6])
        delay = self.rng.choice([0, 2, 5, 10, 20])
        jitter = self.rng.choice([0, delay, 2 * delay]) if delay else 0
        if drop == 0 and dup == 0 and delay == 0:
            dup = 0.3
        self.cluster.set_link(frm, to, drop=drop, delay_ms=delay, jitter_ms=jitter, duplicate=dup)
        self.links.add((frm, to))
        self._count("link")

        def clear(frm=frm, to=to):
            self.cluster.clear_link(frm, to)
            self.links.discard((frm, to))
        self._later(f"clear {frm}>{to}", clear)
        return True

    # -- running ---------------------------------------------------------------------

    def _due(self, all_of_them: bool = False) -> None:
        now = time.monotonic()
        keep = []
        for item in sorted(self._undo, key=lambda u: u[0]):
            if all_of_them or item[0] <= now:
                item[2]()
            else:
                keep.append(item)
        self._undo = keep

    def run(self, seconds: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Inject faults for `seconds` (bounded), then undo every fault still active."""
        end = time.monotonic() + seconds
        kinds = sorted(self.weights)
        weights = [self.weights[k] for k in kinds]
        actions = {"crash": self.crash, "pause": self.pause, "partition": self.partition, "link": self.link,
                   "crash_all": self.crash_all}
        try:
            while time.monotonic() < end and not should_stop():
                self._due()
                kind = self.rng.choices(kinds, weights)[0]
                actions[kind]()
                time.sleep(min(self.rng.uniform(*self.gap_s), max(0.0, end - time.monotonic())))
        finally:
            self.heal_all()

    def heal_all(self) -> None:
        """End every fault: resume paused nodes, restart crashed ones, a perfect network."""
        self._due(all_of_them=True)
        self.cluster.reset_network()
        for n in self.cluster.ids:
            if n not in self.killed and not self.cluster.nodes[n].is_running():
                self.unexpected_exits.append(f"{n}: {self.cluster.nodes[n].describe()}")
            proc = self.cluster.nodes[n]
            if proc.paused:
                self.cluster.resume(n)
            if not proc.is_running():
                self.cluster.start(n)
        self.killed.clear()
        self.paused.clear()
        self.topology_busy = False
        self.links.clear()

    def summary(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items())) or "no faults"
