"""What a person can do from the page: processes, network, scenarios.

Every request is validated completely before anything is done, so a bad one
gets a BadRequest (HTTP 400 with the message) and changes nothing. Process
actions run on one long-lived thread (`ProcessWorker`): a node restarted by
the attached cluster gets PR_SET_PDEATHSIG, which Linux ties to the *thread*
that forked it, so the forking thread must live as long as the dashboard.
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import random
import re
import threading

from harness.lib.scenario import Runner, ScenarioError, parse_file

NODE_ACTIONS = {"kill": "kill -9", "restart": "restart", "pause": "pause (SIGSTOP)", "resume": "resume (SIGCONT)"}
MAX_SCENARIO_LINES = 400
SCENARIO_THREAD = "dashboard-scenario"


class BadRequest(Exception):
    pass


class Conflict(Exception):
    """The request is valid but cannot be done now (HTTP 409)."""


def _field(body: dict, name: str, kind, *, required: bool = True, default=None):
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(f"field '{name}' is required")
        return default
    v = body[name]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
        noun = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "list"}[kind.__name__]
        raise BadRequest(f"field '{name}' must be a {noun}, got {v!r}")
    return v


def _number(body: dict, name: str, lo: float, hi: float) -> float:
    v = _field(body, name, float, required=False, default=0.0)
    if not lo <= v <= hi:
        raise BadRequest(f"field '{name}' must be in [{lo:g}, {hi:g}], got {v:g}")
    return v


class ProcessWorker:
    """One thread that does every process action (see the module comment)."""

    def __init__(self):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-proc")

    def run(self, fn, *args):
        return self.pool.submit(fn, *args).result()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


class WorkerTarget:
    """The attached cluster as a scenario Target, with its process actions on the ProcessWorker."""

    def __init__(self, target, worker: ProcessWorker, events):
        self._t = target
        self._worker = worker
        self._events = events
        self._proxy_lock = threading.Lock()  # one ProxyControl socket, shared by the page and a scenario
        self.scenario_clients: list = []

    def __getattr__(self, name):
        return getattr(self._t, name)

    def _act(self, name, nodes):
        nodes = list(nodes)
        return self._worker.run(getattr(self._t, name), nodes)

    def kill(self, nodes):
        self._act("kill", nodes)

    def stop(self, nodes):
        self._act("stop", nodes)

    def pause(self, nodes):
        self._act("pause", nodes)

    def resume(self, nodes):
        self._act("resume", nodes)

    def start(self, nodes):
        self._act("start", nodes)

    def client(self, **kw):
        c = self._t.client(**kw)
        if threading.current_thread().name == SCENARIO_THREAD:
            self.scenario_clients.append(c)  # the scenario's load leaves them open: closed after the run
        return c

    def proxy(self, description: str, cmd: str, **fields) -> dict:
        with self._proxy_lock:
            reply = self._t.proxy(description, cmd, **fields)
        self._events.add("fault", description)
        return reply


class Controls:
    def __init__(self, target: WorkerTarget, events, repo: str):
        self.t = target
        self.events = events
        self.repo = repo
        self._scenario_lock = threading.Lock()
        self.scenario: dict = {"name": None, "running": False, "lines": [], "passed": None}

    # -- validation helpers ---------------------------------------------------------------

    def _node(self, body: dict, name: str = "node") -> str:
        n = _field(body, name, str)
        if n not in self.t.ids:
            raise BadRequest(f"unknown node {n!r} in field '{name}' (known: {', '.join(self.t.ids)})")
        return n

    def _endpoint(self, body: dict, name: str) -> str:
        e = _field(body, name, str)
        if e not in self.t.ids and e not in ("client", "*"):
            raise BadRequest(f"field '{name}': {e!r} is not a node id, 'client' or '*'")
        return e

    # -- processes -------------------------------------------------------------------------

    def node_action(self, body: dict) -> dict:
        n = self._node(body)
        action = _field(body, "action", str)
        if action not in NODE_ACTIONS:
            raise BadRequest(f"unknown action {action!r} (known: {', '.join(NODE_ACTIONS)})")
        state = self.t.state(n)
        if action == "restart" and state != "down":
            raise Conflict(f"{n} is {state}: kill it before restarting it")
        if action in ("kill", "pause") and state == "down":
            raise Conflict(f"{n} is down already")
        if action == "resume" and state != "paused":
            raise Conflict(f"{n} is not paused")
        self.events.add("crash" if action == "kill" else "process", f"{NODE_ACTIONS[action]} {n} (from the page)")
        {"kill": self.t.kill, "restart": self.t.start, "pause": self.t.pause, "resume": self.t.resume}[action]([n])
        return {"node": n, "action": action, "process": self.t.state(n)}

    # -- network ---------------------------------------------------------------------------

    def net_action(self, body: dict) -> dict:
        action = _field(body, "action", str)
        handlers = {"cut": self._cut, "uncut": self._cut, "isolate": self._isolate, "split": self._split,
                    "heal": self._heal, "rule": self._rule, "clear": self._clear, "reset": self._reset}
        if action not in handlers:
            raise BadRequest(f"unknown action {action!r} (known: {', '.join(handlers)})")
        return handlers[action](action, body)

    def _cut(self, action: str, body: dict) -> dict:
        a, b = self._endpoint(body, "from"), self._endpoint(body, "to")
        both = _field(body, "both", bool, required=False, default=False)
        if a == b and a != "*":
            raise BadRequest("'from' and 'to' are the same endpoint")
        cmd = "block" if action == "cut" else "unblock"
        pairs = [(a, b), (b, a)] if both else [(a, b)]
        for x, y in pairs:
            self.t.proxy(f"{action} {x}->{y}", cmd, **{"from": x, "to": y})
        return {"done": [f"{cmd} {x}>{y}" for x, y in pairs]}

    def _isolate(self, action: str, body: dict) -> dict:
        n = self._node(body)
        rest = [m for m in self.t.ids if m != n]
        self.t.proxy(f"isolate {n} (partition {','.join(rest)} | {n} alone)", "partition", groups=[rest])
        return {"partition": [rest], "isolated": n}

    def _split(self, action: str, body: dict) -> dict:
        side = _field(body, "side", list)
        if not all(isinstance(x, str) for x in side):
            raise BadRequest("field 'side' must be a list of node ids")
        unknown = [x for x in side if x not in self.t.ids]
        if unknown:
            raise BadRequest(f"unknown node(s) in field 'side': {', '.join(unknown)}")
        a = sorted(set(side), key=self.t.ids.index)
        b = [n for n in self.t.ids if n not in a]
        if not a or not b:
            raise BadRequest("a split needs at least one node on each side")
        self.t.proxy(f"partition {','.join(a)} | {','.join(b)}", "partition", groups=[a, b])
        return {"partition": [a, b]}

    def _heal(self, action: str, body: dict) -> dict:
        self.t.proxy("heal (partitions and cuts removed; loss/delay rules stay)", "heal")
        return {}

    def _rule(self, action: str, body: dict) -> dict:
        a, b = self._endpoint(body, "from"), self._endpoint(body, "to")
        fields = {"drop": _number(body, "loss", 0, 1), "delay_ms": _number(body, "delay_ms", 0, 60000),
                  "jitter_ms": _number(body, "jitter_ms", 0, 60000), "duplicate": _number(body, "duplicate", 0, 1)}
        desc = ", ".join(f"{k} {v:g}" for k, v in fields.items() if v) or "a perfect link"
        self.t.proxy(f"{a}->{b}: {desc}", "set", **{"from": a, "to": b}, **fields)
        return {"rule": dict(fields, **{"from": a, "to": b})}

    def _clear(self, action: str, body: dict) -> dict:
        a, b = self._endpoint(body, "from"), self._endpoint(body, "to")
        self.t.proxy(f"clear the rule of {a}->{b}", "clear", **{"from": a, "to": b})
        return {}

    def _reset(self, action: str, body: dict) -> dict:
        self.t.proxy("reset: a perfect network again", "reset")
        return {}

    # -- scenarios -------------------------------------------------------------------------

    def scenarios(self) -> list:
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.repo, "faults", "*.scenario")))

    def run_scenario(self, body: dict) -> dict:
        name = _field(body, "name", str)
        if name not in self.scenarios() or not re.fullmatch(r"[A-Za-z0-9_.-]+\.scenario", name):
            raise BadRequest(f"unknown scenario {name!r} (known: {', '.join(self.scenarios())})")
        try:
            sc = parse_file(os.path.join(self.repo, "faults", name))
        except ScenarioError as e:
            raise BadRequest(str(e)) from None
        if sorted(sc.ids) != sorted(self.t.ids):
            raise BadRequest(f"{name} is written for nodes {', '.join(sc.ids)}, this cluster has {', '.join(self.t.ids)}")
        if not self._scenario_lock.acquire(blocking=False):
            raise Conflict(f"scenario {self.scenario['name']} is still running")
        with self.t._obs_lock:  # what the last run saw is no evidence for this one (and stays bounded)
            self.t.observations.clear()
        self.scenario = {"name": name, "running": True, "lines": [], "passed": None}
        self.events.add("scenario", f"scenario {name} starts: {sc.title or sc.name}")

        def out(line: str) -> None:
            lines = self.scenario["lines"]
            lines.append(line)
            del lines[:-MAX_SCENARIO_LINES]
            self.events.add("scenario", line)

        def run():
            try:
                outcome = Runner(sc, self.t, rng=random.Random(), out=out).run()
                self.scenario["passed"] = outcome.passed
                self.events.add("scenario", f"scenario {name}: {'PASS' if outcome.passed else 'FAIL'}")
            except Exception as e:
                out(f"scenario stopped: {type(e).__name__}: {e}")
                self.scenario["passed"] = False
            finally:
                for c in self.t.scenario_clients:
                    c.close()
                self.t.scenario_clients.clear()
                self.scenario["running"] = False
                self._scenario_lock.release()

        threading.Thread(target=run, name=SCENARIO_THREAD, daemon=True).start()
        return {"name": name, "steps": len(sc.steps)}

    def tidy(self) -> None:
        """Keep the attached cluster's records bounded: its fault timeline, and its list of
        clients (a scenario's load closes its own; drop the closed ones)."""
        del self.t.timeline[:-1000]
        self.t._clients[:] = [c for c in self.t._clients if c.sock.fileno() != -1]

    def scenario_view(self) -> dict:
        s = self.scenario
        return {"name": s["name"], "running": s["running"], "passed": s["passed"], "lines": s["lines"][-40:]}
