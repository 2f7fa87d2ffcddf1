"""Client workloads that run in the background while a test injects faults.

`Writers` runs a few client threads. Each thread owns its own keys (one
writer per key) and loops: set one of its keys to a value never used before,
sometimes read one of its keys back. Every operation lands in a History that
checks.py can judge afterwards. Unique values make every read attributable to
exactly one write.

`fill()` writes many entries as fast as possible, with several clients in
parallel so the leader can batch them.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Optional

from .client import OK
from .history import History


class Writers:
    """`writers` threads; writer w owns keys "{prefix}{w}.0" ... and writes values "{prefix}{w}:{i}".

        writers = Writers(cluster, history).start()
        ...  # inject faults
        writers.stop()  # then check the history
    """

    def __init__(self, cluster, history: History, *, writers: int = 3, keys_per_writer: int = 3,
                 read_ratio: float = 0.25, prefix: str = "k", deadline: float = 2.0,
                 rng: Optional[random.Random] = None):
        self.cluster = cluster
        self.history = history
        self.writers = writers
        self.keys_per_writer = keys_per_writer
        self.read_ratio = read_ratio
        self.prefix = prefix
        self.deadline = deadline
        self.rng = rng or random.Random(cluster.rng.random())
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def keys_of(self, w: int) -> list[str]:
        return [f"{self.prefix}{w}.{j}" for j in range(self.keys_per_writer)]

    def start(self) -> "Writers":
        for w in range(self.writers):
            client = self.cluster.client(history=self.history, deadline=self.deadline)
            t = threading.Thread(target=self._run, args=(w, client, random.Random(self.rng.random())),
                                 name=f"writer-{w}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def _run(self, w: int, client, rng: random.Random) -> None:
        keys = self.keys_of(w)
        i = 0
        try:
            while not self._stop.is_set():
                key = rng.choice(keys)
                if rng.random() < self.read_ratio:
                    client.get(key)
                else:
                    i += 1
                    client.set(key, f"{self.prefix}{w}:{i}")
        except BaseException as e:  # reported by stop()
            self._errors.append(e)

    def stop(self) -> History:
        """Stop the threads (each finishes its current request) and return the history."""
        self._stop.set()
        for t in self._threads:
            t.join(self.deadline + 2.0)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"writer threads did not stop: {alive}"
        if self._errors:
            raise self._errors[0]
        return self.history

    def acked(self) -> int:
        return self.history.count(outcome=OK)


def fill(cluster, count: int, *, history: Optional[History] = None, clients: int = 8, prefix: str = "fill",
         deadline: float = 2.0, time_limit: float = 20.0) -> History:
    """Write `count` distinct keys as fast as possible; stop early after `time_limit` s."""
    history = history if history is not None else cluster.history()
    per = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    end = time.monotonic() + time_limit

    def run(i: int, n: int) -> None:
        c = cluster.client(history=history, deadline=deadline)
        for j in range(n):
            if time.monotonic() > end:
                return
            c.set(f"{prefix}{i}.{j}", f"v{i}.{j}")

    threads = [threading.Thread(target=run, args=(i, n), daemon=True) for i, n in enumerate(per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_limit + deadline + 2.0)
    return history
