"""Scripted fault injection: the scenario format, its parser and its runner.

A scenario is a small text file (faults/*.scenario) that says what happens to
a cluster and when, and what must be true afterwards:

    # Leader crash and recovery           <- the first comment is the title
    nodes 5                               <- cluster size (default 5), before any step
    at 0s    write-load 4                 # 4 background writer clients
    at 2s    kill leader
    at 4s    partition n1,n2 | n3,n4,n5
    at 5s    loss 0.2 n1->*
    at 6s    delay 30ms jitter 20ms *->*
    at 7s    duplicate 0.1 client->*
    at 8s    heal
    at 9s    restart all
    at 12s   expect leader within 3s
    at 12s   expect converged within 5s
    at 12s   expect writes-ok

Times count from the moment the cluster is up (it has a leader) and must not
decrease; steps with the same time run in file order, each after the
previous one finished (an expectation that waits delays the steps after it).
See docs/faults.md for every action. In short:

    kill|stop|pause|resume|restart|start  TARGETS
        TARGETS: all, or a comma list of NODE | leader | follower | random
    isolate NODE                          cut one node off from every other node
    partition GROUP | GROUP [| GROUP ...] GROUP: comma list of NODE or `rest`
                                          (the nodes named in no other group);
                                          a node in two groups is a bridge
    block A->B / unblock A->B             one direction; A, B: NODE, client or *
    loss P A->B / duplicate P A->B        P in [0,1] or a percentage (20%)
    delay D [jitter J] A->B               D, J: times (30ms, 0.5s)
    clear A->B                            remove the loss/delay/duplicate rule of A->B
    heal                                  remove partitions and blocks (rules stay)
    reset                                 a perfect network again
    write-load N                          N writer clients from now on (0 stops them)
    expect leader [within T]              a leader followed by a majority, within T
    expect converged [within T]           all up nodes: same last_applied, one leader
    expect progress [within T]            a write of the load that began after this step is acknowledged
    expect writes-ok [within T]           stop the load, read every key back, check
    expect one-leader-per-term            no term ever had two leaders (all statuses seen)
    end                                   (optional) the scenario ends here

Where NODE is a node id (n1 ... nN), `leader` (the node a majority follows,
resolved when the step runs), `follower` (a running node that is not the
leader) or `random` (a random node the action applies to, from --seed).

The runner drives a `Target`: the harness Cluster (HarnessTarget) or a
cluster started from configs behind a proxy (attach.AttachedCluster). It
prints one line per step with the cluster's state after it, and PASS/FAIL
for every expectation.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from .checks import check_registers, leader_of, leaders_by_term
from .client import OK
from .history import History

# -- the format -----------------------------------------------------------------------------

DEFAULT_NODES = 5
MAX_NODES = 64            # the proxy's limit
MAX_LOAD = 64
MAX_DELAY_MS = 60000.0    # the proxy's limit
MAX_WITHIN_S = 300.0
DEFAULT_WITHIN_S = 5.0

PROCESS_ACTIONS = ("kill", "stop", "pause", "resume", "restart", "start")
LINK_ACTIONS = ("block", "unblock", "clear")
RULE_ACTIONS = ("loss", "delay", "duplicate")
EXPECTATIONS = ("leader", "converged", "progress", "writes-ok", "one-leader-per-term")
ALL_ACTIONS = PROCESS_ACTIONS + ("isolate", "partition") + LINK_ACTIONS + RULE_ACTIONS + \
    ("heal", "reset", "write-load", "expect", "end")

NODE_REFS = ("leader", "follower", "random")   # resolved when the step runs

_TIME_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s)$")


class ScenarioError(Exception):
    """A bad scenario file: `path:line: what was expected`."""

    def __init__(self, path: str, line: int, message: str):
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


class _Bad(Exception):
    """Raised by the line parsers; becomes a ScenarioError with the file and line."""


@dataclass(frozen=True)
class Link:
    src: str
    dst: str

    def __str__(self) -> str:
        return f"{self.src}->{self.dst}"


@dataclass(frozen=True)
class Step:
    """One `at TIME ACTION ...` line.

    action: a process action (kill ...), isolate, partition, block, unblock,
    clear, loss, delay, duplicate, heal, reset, write-load, end, or
    expect-leader / expect-converged / expect-writes-ok / expect-one-leader-per-term.
    """
    time: float                        # seconds since the scenario started
    line: int
    action: str
    targets: tuple = ()                # process actions, isolate: node refs, or ("all",)
    groups: tuple = ()                 # partition: tuple of tuples of node refs / "rest"
    link: Optional[Link] = None        # block, unblock, clear, loss, delay, duplicate
    value: Optional[float] = None      # loss/duplicate: probability; delay: ms; write-load: count
    jitter: Optional[float] = None     # delay: jitter in ms
    within: Optional[float] = None     # expectations: seconds
    text: str = field(default="", compare=False)  # the action as written (for the timeline)

    @property
    def is_expectation(self) -> bool:
        return self.action.startswith("expect-")


@dataclass
class Scenario:
    path: str
    title: str
    nodes: int
    steps: list

    @property
    def ids(self) -> list:
        return [f"n{i}" for i in range(1, self.nodes + 1)]

    @property
    def name(self) -> str:
        base = self.path.rsplit("/", 1)[-1]
        return base[:-len(".scenario")] if base.endswith(".scenario") else base

    @property
    def expectations(self) -> int:
        return sum(1 for s in self.steps if s.is_expectation)

    @property
    def duration(self) -> float:
        """When the last step is due (expectations may run longer)."""
        return self.steps[-1].time if self.steps else 0.0


def parse_time(token: str) -> float:
    """'2s' -> 2.0, '500ms' -> 0.5, '1.5s' -> 1.5 (seconds)."""
    m = _TIME_RE.match(token)
    if not m:
        raise _Bad(f"expected a time such as 2s, 1.5s or 500ms, got {token!r}")
    value = float(m.group(1))
    return value / 1000.0 if m.group(2) == "ms" else value


def _fmt_seconds(s: float) -> str:
    return f"{s:g}s"


def _probability(token: str, what: str) -> float:
    try:
        p = float(token[:-1]) / 100.0 if token.endswith("%") else float(token)
    except ValueError:
        raise _Bad(f"{what}: expected a probability such as 0.2 or 20%, got {token!r}") from None
    if not 0.0 <= p <= 1.0:
        raise _Bad(f"{what}: the probability must be in [0,1] (0%..100%), got {token!r}")
    return p


def _duration_ms(token: str, what: str) -> float:
    try:
        ms = parse_time(token) * 1000.0
    except _Bad:
        raise _Bad(f"{what}: expected a time such as 30ms or 0.5s, got {token!r}") from None
    if ms > MAX_DELAY_MS:
        raise _Bad(f"{what}: at most 60000ms (60s), got {token!r}")
    return round(ms, 3)


class _LineParser:
    def __init__(self, ids: Sequence[str]):
        self.ids = list(ids)

    def _unknown(self, token: str, allowed: str) -> _Bad:
        span = f"{self.ids[0]}..{self.ids[-1]}" if len(self.ids) > 1 else self.ids[0]
        return _Bad(f"unknown node {token!r} (this scenario has nodes {span}; expected {allowed})")

    def node_ref(self, token: str, allowed: str = "a node id, leader, follower or random") -> str:
        if token in self.ids or token in NODE_REFS:
            return token
        raise self._unknown(token, allowed)

    def targets(self, action: str, args: list) -> tuple:
        if len(args) != 1:
            raise _Bad(f"{action}: expected one target: a node id, leader, follower, random, all, "
                       f"or a comma list such as n1,n2 (got {' '.join(args) or 'nothing'!r})")
        token = args[0]
        if token == "all":
            return ("all",)
        refs = [t for t in token.split(",")]
        if any(not t for t in refs):
            raise _Bad(f"{action}: empty name in the list {token!r}")
        out = tuple(self.node_ref(t, "a node id, leader, follower, random or all") for t in refs)
        concrete = [t for t in out if t in self.ids]
        if len(set(concrete)) != len(concrete):
            raise _Bad(f"{action}: a node is named twice in {token!r}")
        return out

    def endpoint(self, token: str) -> str:
        if token in ("client", "*"):
            return token
        return self.node_ref(token, "a node id, leader, follower, random, client or *")

    def link(self, action: str, args: list) -> Link:
        text = "".join(args)
        parts = text.split("->")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise _Bad(f"{action}: expected a link A->B (A, B: node id, leader, follower, random, client "
                       f"or *), got {' '.join(args) or 'nothing'!r}")
        return Link(self.endpoint(parts[0]), self.endpoint(parts[1]))

    def groups(self, args: list) -> tuple:
        text = " ".join(args)
        if not text.strip():
            raise _Bad("partition: expected groups such as n1,n2 | n3,n4,n5")
        groups = []
        rest_seen = False
        for i, chunk in enumerate(text.split("|"), 1):
            members = [m for m in re.split(r"[,\s]+", chunk.strip()) if m]
            if not members:
                raise _Bad(f"partition: group {i} is empty (expected node ids separated by commas, "
                           f"groups separated by |)")
            group = []
            for m in members:
                if m == "rest":
                    if rest_seen:
                        raise _Bad("partition: 'rest' may appear only once")
                    rest_seen = True
                    group.append(m)
                else:
                    group.append(self.node_ref(m, "a node id, leader, follower, random or rest"))
            concrete = [m for m in group if m in self.ids]
            if len(set(concrete)) != len(concrete):
                raise _Bad(f"partition: a node is named twice in group {i} ({chunk.strip()})")
            groups.append(tuple(group))
        return tuple(groups)

    def step(self, t: float, line: int, tokens: list) -> Step:
        action, args = tokens[0], tokens[1:]
        text = " ".join(tokens)
        mk = lambda **kw: Step(time=t, line=line, action=action, text=text, **kw)  # noqa: E731
        if action in PROCESS_ACTIONS:
            return mk(targets=self.targets(action, args))
        if action == "isolate":
            if len(args) != 1:
                raise _Bad("isolate: expected one node: a node id, leader, follower or random")
            return mk(targets=(self.node_ref(args[0]),))
        if action == "partition":
            return mk(groups=self.groups(args))
        if action in LINK_ACTIONS:
            return mk(link=self.link(action, args))
        if action in ("loss", "duplicate"):
            if len(args) < 2:
                raise _Bad(f"{action}: expected '{action} P A->B' (P such as 0.2 or 20%)")
            return mk(value=_probability(args[0], action), link=self.link(action, args[1:]))
        if action == "delay":
            if len(args) < 2:
                raise _Bad("delay: expected 'delay D [jitter J] A->B' (D, J such as 30ms)")
            delay = _duration_ms(args[0], "delay")
            jitter = 0.0
            rest = args[1:]
            if rest and rest[0] == "jitter":
                if len(rest) < 3:
                    raise _Bad("delay: expected 'delay D jitter J A->B' (J such as 20ms)")
                jitter = _duration_ms(rest[1], "jitter")
                rest = rest[2:]
            return mk(value=delay, jitter=jitter, link=self.link(action, rest))
        if action in ("heal", "reset", "end"):
            if args:
                raise _Bad(f"{action} takes no arguments (got {' '.join(args)!r})")
            return mk()
        if action == "write-load":
            if len(args) != 1 or not args[0].isdigit():
                raise _Bad(f"write-load: expected a number of writer clients (0 stops them), "
                           f"got {' '.join(args) or 'nothing'!r}")
            n = int(args[0])
            if n > MAX_LOAD:
                raise _Bad(f"write-load: at most {MAX_LOAD} writers, got {n}")
            return mk(value=n)
        if action == "expect":
            return self.expectation(t, line, args, text)
        raise _Bad(f"unknown action {action!r} (expected one of: {', '.join(ALL_ACTIONS)})")

    def expectation(self, t: float, line: int, args: list, text: str) -> Step:
        if not args or args[0] not in EXPECTATIONS:
            got = args[0] if args else "nothing"
            raise _Bad(f"expect: expected one of {', '.join(EXPECTATIONS)}, got {got!r}")
        what, rest = args[0], args[1:]
        if what == "one-leader-per-term":
            if rest:
                raise _Bad(f"expect one-leader-per-term takes no arguments (got {' '.join(rest)!r})")
            return Step(time=t, line=line, action="expect-" + what, text=text)
        within = DEFAULT_WITHIN_S
        if rest:
            if len(rest) != 2 or rest[0] != "within":
                raise _Bad(f"expect {what}: expected 'within T' (T such as 3s), got {' '.join(rest)!r}")
            within = parse_time(rest[1])
            if not 0 < within <= MAX_WITHIN_S:
                raise _Bad(f"expect {what}: 'within' must be more than 0 and at most {MAX_WITHIN_S:g}s")
        return Step(time=t, line=line, action="expect-" + what, within=within, text=text)


def parse(text: str, path: str = "<scenario>") -> Scenario:
    """Parse a scenario; raises ScenarioError naming path:line and what was expected."""
    title = ""
    nodes: Optional[int] = None
    nodes_line = 0
    steps: list[Step] = []
    seen_content = False
    end_line = 0
    last_time = 0.0
    last_time_line = 0
    parser: Optional[_LineParser] = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        content = raw.split("#", 1)[0].strip()
        if not content:
            if stripped.startswith("#") and not seen_content and not title:
                title = stripped.lstrip("#").strip()
            continue
        seen_content = True
        tokens = content.split()
        try:
            if end_line:
                raise _Bad(f"nothing may follow 'end' (line {end_line})")
            if tokens[0] == "nodes":
                if nodes is not None:
                    raise _Bad(f"'nodes' given twice (first on line {nodes_line})")
                if steps:
                    raise _Bad("'nodes N' must come before the first step")
                if len(tokens) != 2 or not tokens[1].isdigit() or not 1 <= int(tokens[1]) <= MAX_NODES:
                    raise _Bad(f"expected 'nodes N' with N from 1 to {MAX_NODES}, got {content!r}")
                nodes, nodes_line = int(tokens[1]), lineno
                continue
            if parser is None:
                parser = _LineParser([f"n{i}" for i in range(1, (nodes or DEFAULT_NODES) + 1)])
            if tokens[0] == "end":
                if len(tokens) != 1:
                    raise _Bad(f"expected 'end' or 'at TIME end', got {content!r}")
                step = parser.step(last_time, lineno, tokens)
            elif tokens[0] == "at":
                if len(tokens) < 3:
                    raise _Bad(f"expected 'at TIME ACTION ...', got {content!r}")
                t = parse_time(tokens[1])
                if t < last_time:
                    raise _Bad(f"time {tokens[1]} is before the time of line {last_time_line} "
                               f"({_fmt_seconds(last_time)}): steps must be in time order")
                step = parser.step(t, lineno, tokens[2:])
                last_time, last_time_line = t, lineno
            else:
                raise _Bad(f"expected 'nodes N', 'at TIME ACTION ...' or 'end', got {tokens[0]!r}")
        except _Bad as e:
            raise ScenarioError(path, lineno, str(e)) from None
        steps.append(step)
        if step.action == "end":
            end_line = lineno
    if not steps:
        raise ScenarioError(path, 0, "no steps (expected lines such as 'at 2s kill leader')")
    return Scenario(path=path, title=title, nodes=nodes or DEFAULT_NODES, steps=steps)


def parse_file(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(path, 0, f"cannot read: {e}") from None
    return parse(text, path)


# -- what the runner drives --------------------------------------------------------------------

UP, PAUSED, DOWN = "up", "paused", "down"


class Target:
    """The cluster a scenario runs against (duck-typed; see HarnessTarget, AttachedCluster).

    ids, majority, resolve_timeout (s: how long to wait for a leader to name);
    state(n) -> UP | PAUSED | DOWN; kill/stop/pause/resume/start(list of ids);
    statuses(ids, timeout) -> {id: status_reply or None}, straight to the nodes
    (never through the proxy); proxy(description, cmd, **fields) -> reply;
    client(history=, deadline=) -> Client through the proxy's public addresses;
    observed() -> [(t, id, status)] seen so far; note(text); describe(n).
    """


class HarnessTarget(Target):
    """A harness Cluster (harness/lib/cluster.py), started with the proxy."""

    def __init__(self, cluster):
        if getattr(cluster, "proxy", None) is None:
            raise ValueError("scenarios need a cluster started with the fault proxy")
        self.cluster = cluster
        self.ids = list(cluster.ids)
        self.majority = cluster.majority
        self.resolve_timeout = cluster.timing.leader_bound

    def state(self, n: str) -> str:
        p = self.cluster.nodes[n]
        if not p.is_running():
            return DOWN
        return PAUSED if p.paused else UP

    def describe(self, n: str) -> str:
        return self.cluster.nodes[n].describe()

    def kill(self, nodes):
        self.cluster.kill(list(nodes))

    def stop(self, nodes):
        self.cluster.stop(list(nodes))

    def pause(self, nodes):
        self.cluster.pause(list(nodes))

    def resume(self, nodes):
        self.cluster.resume(list(nodes))

    def start(self, nodes):
        # Cluster.start(nodes) starts stopped or killed nodes (older versions: start_node).
        starter = getattr(self.cluster, "start_node", None) or self.cluster.start
        starter(list(nodes))

    def statuses(self, nodes, timeout: float = 0.2) -> dict:
        return self.cluster.status_all(list(nodes), timeout)

    def proxy(self, description: str, cmd: str, **fields) -> dict:
        self.cluster.note(description)
        return self.cluster.proxy.call(cmd, **fields)

    def client(self, **kw):
        return self.cluster.client(**kw)

    def observed(self) -> list:
        return self.cluster.observed()

    def note(self, text: str) -> None:
        self.cluster.note(text)


def start_cluster(cluster) -> str:
    """Start a harness Cluster (proxy and every node) and wait for its first leader."""
    leader = cluster.start()
    if leader is None:  # Cluster.start() does not wait (in some versions it does, and returns the leader)
        leader = cluster.wait_for_leader(cluster.timing.startup_bound)
    return leader




def short_status(s: Optional[dict]) -> str:
    if not isinstance(s, dict):
        return "no-reply"
    return f"{s.get('role')}/{s.get('term')}/{s.get('commit_index')}"


# -- the background write load -------------------------------------------------------------------


class WriteLoad:
    """N writer threads, each with its own client and its own keys, values never reused.

    Every operation lands in one History (origin = the scenario's start). Keys
    carry a random per-run prefix, so runs against a long-lived cluster
    (attach mode) never read each other's values.
    """

    def __init__(self, target, history: History, rng: random.Random, *, deadline: float = 2.0,
                 read_ratio: float = 0.25, keys_per_writer: int = 10):
        self.target = target
        self.history = history
        self.rng = rng
        self.deadline = deadline
        self.read_ratio = read_ratio
        self.keys_per_writer = keys_per_writer
        self.prefix = f"scn{secrets.token_hex(3)}"
        self.cond = threading.Condition()
        self.held = False
        self.busy = 0
        self.active: list[dict] = []
        self.retired: list[dict] = []
        self.clients: list = []
        self.errors: list[BaseException] = []
        self.started_total = 0

    @property
    def count(self) -> int:
        return len(self.active)

    def set_count(self, n: int) -> None:
        while len(self.active) > n:
            w = self.active.pop()
            w["stop"].set()
            self.retired.append(w)
        while len(self.active) < n:
            index = self.started_total
            self.started_total += 1
            client = self.target.client(history=self.history, deadline=self.deadline)
            self.clients.append(client)
            w = {"stop": threading.Event(), "index": index}
            w["thread"] = threading.Thread(target=self._run, args=(w, client, random.Random(self.rng.random())),
                                           name=f"scenario-writer-{index}", daemon=True)
            self.active.append(w)
            w["thread"].start()
        with self.cond:
            self.cond.notify_all()

    def _run(self, w: dict, client, rng: random.Random) -> None:
        keys = [f"{self.prefix}-w{w['index']}.{j}" for j in range(self.keys_per_writer)]
        i = 0
        try:
            while True:
                with self.cond:
                    while self.held and not w["stop"].is_set():
                        self.cond.wait(0.1)
                    if w["stop"].is_set():
                        return
                    self.busy += 1
                try:
                    key = rng.choice(keys)
                    if rng.random() < self.read_ratio:
                        client.get(key)
                    else:
                        i += 1
                        client.set(key, f"{self.prefix}-w{w['index']}:{i}")
                finally:
                    with self.cond:
                        self.busy -= 1
                        self.cond.notify_all()
        except BaseException as e:  # reported by stop_all()
            self.errors.append(e)

    def hold(self) -> bool:
        """Let every writer finish its current request, then keep them waiting; True once idle."""
        end = time.monotonic() + self.deadline + 1.0
        with self.cond:
            self.held = True
            while self.busy > 0:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True

    def release(self) -> None:
        with self.cond:
            self.held = False
            self.cond.notify_all()

    def stop_all(self) -> list[str]:
        """Stop every writer (each finishes its current request); returns problems, if any."""
        self.set_count(0)
        self.release()
        problems = []
        end = time.monotonic() + self.deadline + 2.0
        for w in self.retired:
            w["thread"].join(max(0.0, end - time.monotonic()))
            if w["thread"].is_alive():
                problems.append(f"writer {w['index']} did not stop")
        self.retired = [w for w in self.retired if w["thread"].is_alive()]
        problems += [f"writer thread failed: {e!r}" for e in self.errors]
        return problems

    def reply_mismatches(self) -> list:
        out = []
        for c in self.clients:
            out.extend((c.client_id, a, b) for a, b in getattr(c, "reply_mismatches", []))
        return out


# -- the runner -------------------------------------------------------------------------------------


class StepFailed(Exception):
    pass


@dataclass
class Outcome:
    passed: bool
    lines: list
    failures: list         # one line per failed expectation or step
    expectations: int
    expectations_passed: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class Runner:
    """Runs one Scenario against a Target, printing the timeline as it goes."""

    def __init__(self, scenario: Scenario, target, *, rng: Optional[random.Random] = None,
                 out: Optional[Callable[[str], None]] = None, poll_interval: float = 0.05):
        self.scenario = scenario
        self.target = target
        self.rng = rng or random.Random()
        self.out = out
        self.poll_interval = poll_interval
        self.lines: list[str] = []
        self.failures: list[str] = []
        self.expectations_passed = 0
        self.rules: dict[tuple, dict] = {}
        self.t0 = 0.0
        self.history: Optional[History] = None
        self.load: Optional[WriteLoad] = None
        self.own_observations: list = []
        self._prev_time = -1.0

    # -- output ---------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.lines.append(text)
        if self.out is not None:
            self.out(text)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def state_line(self) -> str:
        states = {n: self.target.state(n) for n in self.target.ids}
        up = [n for n in self.target.ids if states[n] == UP]
        st = self._poll(up, 0.2) if up else {}
        parts = []
        for n in self.target.ids:
            if states[n] == UP:
                parts.append(f"{n} {short_status(st.get(n))}")
            else:
                parts.append(f"{n} {states[n]}")
        return "  ".join(parts)

    def _poll(self, nodes, timeout: float = 0.2) -> dict:
        st = self.target.statuses(nodes, timeout)
        t = self.elapsed()
        self.own_observations.extend((t, n, s) for n, s in st.items() if isinstance(s, dict))
        return st

    # -- resolving names -------------------------------------------------------------------------

    def current_leader(self, timeout: float) -> tuple[Optional[str], dict]:
        end = time.monotonic() + timeout
        while True:
            nodes = [n for n in self.target.ids if self.target.state(n) == UP]
            st = self._poll(nodes, 0.2) if nodes else {}
            leader = leader_of(st, self.target.majority)
            if leader is not None or time.monotonic() >= end:
                return leader, st
            time.sleep(self.poll_interval)

    def _resolver(self):
        cache: dict = {}
        chosen: set = set()

        def leader() -> str:
            if "leader" not in cache:
                name, st = self.current_leader(self.target.resolve_timeout)
                if name is None:
                    raise StepFailed(f"no leader to name within {self.target.resolve_timeout:g}s "
                                     f"({self._describe(st)})")
                cache["leader"] = name
            return cache["leader"]

        def resolve(ref: str, eligible: Optional[Callable[[str], bool]] = None) -> str:
            if ref == "leader":
                name = leader()
            elif ref == "follower":
                lead = leader()
                pool = [n for n in self.target.ids if n != lead and n not in chosen
                        and self.target.state(n) == UP]
                if not pool:
                    raise StepFailed(f"no running follower of {lead} left to pick")
                name = self.rng.choice(pool)
            elif ref == "random":
                pool = [n for n in self.target.ids if n not in chosen and (eligible is None or eligible(n))]
                if not pool:
                    raise StepFailed("no node left that 'random' could pick for this action")
                name = self.rng.choice(pool)
            else:
                name = ref
            chosen.add(name)
            return name
        return resolve

    def _describe(self, st: dict) -> str:
        parts = []
        for n in self.target.ids:
            if n in st:
                s = st[n]
                parts.append(f"{n} " + (f"{s.get('role')}/{s.get('term')} leader {s.get('leader')} "
                                        f"commit {s.get('commit_index')} applied {s.get('last_applied')}"
                                        if isinstance(s, dict) else "no-reply"))
            else:
                parts.append(f"{n} {self.target.state(n)}")
        return "; ".join(parts)

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> Outcome:
        sc = self.scenario
        self.t0 = time.monotonic()
        self.history = History(origin=self.t0)
        self.load = WriteLoad(self.target, self.history, random.Random(self.rng.random()))
        self.say(f"t=0.00s   begin  {self.state_line()}")
        try:
            for step in sc.steps:
                self._wait_until(step.time)
                self._run_step(step)
        finally:
            problems = self.load.stop_all()
            if len(self.history):
                self.say(f"write-load: {self.history.summary()}")
            for p in problems:
                self.say(f"write-load: {p}")
        total = sc.expectations
        passed = not self.failures
        verdict = "PASS" if passed else "FAIL"
        self.say(f"{verdict}: {self.expectations_passed} of {total} expectations passed"
                 + (f"; {len(self.failures)} failure(s):" if self.failures else ""))
        for f in self.failures:
            self.say(f"  {f}")
        return Outcome(passed, list(self.lines), list(self.failures), total, self.expectations_passed)

    def _wait_until(self, t: float) -> None:
        while True:
            left = self.t0 + t - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.5))

    def _run_step(self, step: Step) -> None:
        began = self.elapsed()
        stamp = f"t={began:.2f}s".ljust(9)
        # A step that has to wait for an earlier one (an expectation that took time) says so,
        # unless it shares that step's time (then it is simply next in line).
        late = f"  [due at {step.time:.2f}s]" if began - step.time > 0.25 and step.time > self._prev_time else ""
        self._prev_time = step.time
        self.target.note(f"scenario line {step.line}: {step.text}")
        if step.is_expectation:
            try:
                ok, detail = getattr(self, "_" + step.action.replace("-", "_"))(step)
            except StepFailed as e:
                ok, detail = False, str(e)
            except Exception as e:  # a harness or cluster error: report it as this step's failure
                ok, detail = False, f"{type(e).__name__}: {e}"
            verdict = "PASS" if ok else "FAIL"
            first, *rest = detail.splitlines() or [""]
            self.say(f"{stamp} {step.text}: {verdict} {first}{late}")
            for line in rest:
                self.say(line)
            self.target.note(f"{step.text}: {verdict} {detail}")
            if ok:
                self.expectations_passed += 1
            else:
                first = detail.splitlines()[0] if detail else ""
                self.failures.append(f"line {step.line}: {step.text}: "
                                     + (first if len(first) <= 240 else first[:240] + " ..."))
            self.say(" " * 10 + self.state_line())
            return
        try:
            try:
                detail = self._act(step)
            except StepFailed:
                raise
            except Exception as e:  # a harness or cluster error (cannot start a node, ...)
                raise StepFailed(f"{type(e).__name__}: {e}") from e
        except StepFailed as e:
            self.say(f"{stamp} {step.text}: FAILED {e}{late}")
            self.failures.append(f"line {step.line}: {step.text}: could not be done: {e}")
            self.say(" " * 10 + self.state_line())
            return
        self.say(f"{stamp} {step.text}{'  ' + detail if detail else ''}{late}")
        if step.action != "end":
            self.say(" " * 10 + self.state_line())

    # -- actions ---------------------------------------------------------------------------------

    def _act(self, step: Step) -> str:
        a = step.action
        if a in PROCESS_ACTIONS:
            return self._process(step)
        if a == "isolate":
            resolve = self._resolver()
            node = resolve(step.targets[0])
            others = [n for n in self.target.ids if n != node]
            self._proxy(f"isolate {node}", "partition", groups=[[node], others])
            return self._shown([step.targets[0]], [node])
        if a == "partition":
            return self._partition(step)
        if a in ("block", "unblock", "clear"):
            src, dst, shown = self._endpoints(step.link)
            reply = self._proxy(f"{a} {src}->{dst}", a, **{"from": src, "to": dst})
            if a == "clear":
                self.rules.pop((src, dst), None)
            if a in ("unblock", "clear") and reply.get("removed") is False:
                shown = (shown + " " if shown else "") + f"(there was no {'block' if a == 'unblock' else 'rule'})"
            return shown
        if a in RULE_ACTIONS:
            src, dst, shown = self._endpoints(step.link)
            rule = self.rules.setdefault((src, dst), {"drop": 0.0, "delay_ms": 0.0, "jitter_ms": 0.0,
                                                      "duplicate": 0.0})
            if a == "loss":
                rule["drop"] = step.value
            elif a == "duplicate":
                rule["duplicate"] = step.value
            else:
                rule["delay_ms"], rule["jitter_ms"] = step.value, step.jitter
            self._proxy(f"rule {src}->{dst}: {rule}", "set", **{"from": src, "to": dst}, **rule)
            desc = (f"rule {src}->{dst} now: loss {rule['drop']:g}, delay {rule['delay_ms']:g}ms "
                    f"jitter {rule['jitter_ms']:g}ms, duplicate {rule['duplicate']:g}")
            return (shown + " " if shown else "") + f"[{desc}]"
        if a == "heal":
            self._proxy("heal", "heal")
            return ""
        if a == "reset":
            self._proxy("reset network", "reset")
            self.rules.clear()
            return ""
        if a == "write-load":
            before = self.load.count
            self.load.set_count(int(step.value))
            return f"({before} -> {self.load.count} writers)"
        if a == "end":
            return ""
        raise StepFailed(f"unknown action {a!r}")  # the parser never lets one through

    def _proxy(self, description: str, cmd: str, **fields) -> dict:
        try:
            return self.target.proxy(description, cmd, **fields)
        except Exception as e:  # ProxyError: refused or unanswered
            raise StepFailed(f"the proxy did not do it: {e}") from None

    @staticmethod
    def _shown(refs, names) -> str:
        if list(refs) == list(names):
            return ""
        return "(" + ", ".join(names) + ")"

    def _endpoints(self, link: Link) -> tuple[str, str, str]:
        resolve = self._resolver()
        src = link.src if link.src in ("client", "*") else resolve(link.src)
        dst = link.dst if link.dst in ("client", "*") else resolve(link.dst)
        shown = "" if (src, dst) == (link.src, link.dst) else f"({src}->{dst})"
        return src, dst, shown

    def _partition(self, step: Step) -> str:
        resolve = self._resolver()
        resolved = [[m if m == "rest" else resolve(m) for m in g] for g in step.groups]
        named = {m for g in resolved for m in g if m != "rest"}
        rest = [n for n in self.target.ids if n not in named]
        groups = []
        for g in resolved:
            out = []
            for m in g:
                for x in (rest if m == "rest" else [m]):
                    if x not in out:
                        out.append(x)
            groups.append(out)
        text = " | ".join(",".join(g) for g in groups)
        self._proxy(f"partition {text}", "partition", groups=groups)
        given = " | ".join(",".join(g) for g in step.groups)
        return "" if given == text else f"({text})"

    def _process(self, step: Step) -> str:
        a = step.action
        eligible = {
            "kill": lambda n: self.target.state(n) != DOWN,
            "stop": lambda n: self.target.state(n) != DOWN,
            "pause": lambda n: self.target.state(n) == UP,
            "resume": lambda n: self.target.state(n) == PAUSED,
            "start": lambda n: self.target.state(n) == DOWN,
            "restart": lambda n: True,
        }[a]
        if step.targets == ("all",):
            names = list(self.target.ids)
        else:
            resolve = self._resolver()
            names = [resolve(r, eligible) for r in step.targets]
        acting = [n for n in names if eligible(n)]
        skipped = [n for n in names if n not in acting]
        if a == "kill":
            self.target.kill(acting) if acting else None
        elif a == "stop":
            self.target.stop(acting) if acting else None
        elif a == "pause":
            self.target.pause(acting) if acting else None
        elif a == "resume":
            self.target.resume(acting) if acting else None
        elif a == "start":
            self.target.start(acting) if acting else None
        elif a == "restart":
            running = [n for n in acting if self.target.state(n) != DOWN]
            if running:
                self.target.kill(running)
            self.target.start(acting)
        parts = []
        if step.targets != ("all",) and list(step.targets) != names:
            parts.append("(" + ", ".join(names) + ")")
        if skipped:
            why = {"kill": "already down", "stop": "already down", "pause": "not running",
                   "resume": "not paused", "start": "already running"}[a]
            parts.append(f"[{', '.join(skipped)}: {why}]")
        return " ".join(parts)

    # -- expectations -------------------------------------------------------------------------------

    def _expect_leader(self, step: Step) -> tuple[bool, str]:
        began = time.monotonic()
        leader, st = self.current_leader(step.within)
        if leader is None:
            return False, f"no leader followed by a majority within {step.within:g}s ({self._describe(st)})"
        return True, f"{leader} (term {st[leader].get('term')}) after {time.monotonic() - began:.2f}s"

    def _expect_converged(self, step: Step) -> tuple[bool, str]:
        began = time.monotonic()
        held = self.load.hold() if self.load.count else True
        try:
            end = time.monotonic() + step.within
            while True:
                up = [n for n in self.target.ids if self.target.state(n) == UP]
                st = self._poll(up, 0.2) if up else {}
                ok, why = self._converged(st)
                if ok:
                    note = "" if self.load.count == 0 else " (writers held meanwhile)"
                    return True, f"{why} after {time.monotonic() - began:.2f}s{note}"
                if time.monotonic() >= end:
                    extra = "" if held else "; the writers did not go idle"
                    return False, f"not within {step.within:g}s: {why}{extra} ({self._describe(st)})"
                time.sleep(self.poll_interval)
        finally:
            self.load.release()

    def _converged(self, st: dict) -> tuple[bool, str]:
        if not st:
            return False, "no node is up"
        silent = [n for n, s in st.items() if not isinstance(s, dict)]
        if silent:
            return False, f"no status from {', '.join(silent)}"
        applied = {n: s.get("last_applied") for n, s in st.items()}
        if len(set(applied.values())) != 1:
            return False, "last_applied differs: " + ", ".join(f"{n}={v}" for n, v in applied.items())
        value = next(iter(applied.values()))
        if not isinstance(value, int) or any(not isinstance(s.get("commit_index"), int)
                                             or s["commit_index"] > value for s in st.values()):
            return False, "some commit_index is ahead of last_applied"
        leaders = [n for n, s in st.items() if s.get("role") == "leader"]
        if len(leaders) != 1:
            return False, f"{len(leaders)} nodes claim leadership" + (f" ({', '.join(leaders)})" if leaders else "")
        views = {(s.get("term"), s.get("leader")) for s in st.values()}
        if len(views) != 1:
            return False, "nodes disagree on term/leader: " + ", ".join(
                f"{n}={s.get('term')}/{s.get('leader')}" for n, s in st.items())
        return True, f"{len(st)} up nodes at last_applied {value}, leader {leaders[0]}"

    def _expect_progress(self, step: Step) -> tuple[bool, str]:
        if self.load.count == 0:
            return False, "no write-load is running"
        since = self.elapsed()
        end = time.monotonic() + step.within
        while True:
            acked = [o for o in self.history.ops if o.is_write and o.outcome == OK and o.invoked >= since]
            if acked:
                first = min(acked, key=lambda o: o.completed)
                return True, f"a write begun at t={first.invoked:.2f}s acknowledged at t={first.completed:.2f}s"
            if time.monotonic() >= end:
                tried = sum(1 for o in self.history.ops if o.is_write and o.invoked >= since)
                return False, f"no write begun since t={since:.2f}s was acknowledged within {step.within:g}s ({tried} tried)"
            time.sleep(self.poll_interval)

    def _expect_writes_ok(self, step: Step) -> tuple[bool, str]:
        if self.load.started_total == 0:
            return False, "no write-load ran before this step"
        problems = self.load.stop_all()
        if problems:
            return False, "; ".join(problems)
        acked = sum(1 for o in self.history.acked_writes())
        keys = self.history.keys()
        if acked == 0:
            return False, f"no write was acknowledged at all ({self.history.summary()})"
        client = self.target.client(history=self.history, deadline=step.within)
        for key in keys:  # a final linearizable read of every key, recorded in the history
            r = client.get(key, deadline=step.within)
            if not r.ok:
                return False, (f"key {key!r} could not be read back within {step.within:g}s (not checking "
                               f"the other {len(keys) - 1}): {r}")
        violations = check_registers(self.history)
        if violations:
            shown = [line if len(line) <= 400 else line[:400] + " ..."
                     for v in violations[:3] for line in v.splitlines()]
            return False, "\n".join([f"{len(violations)} read(s) returned a value that no correct store could "
                                      f"return ({self.history.summary()}):"] + [" " * 12 + x.strip() for x in shown])
        mismatches = self.load.reply_mismatches()
        if mismatches:
            c, a, b = mismatches[0]
            return False, (f"{len(mismatches)} retried request(s) got a different answer the second time "
                           f"(exactly-once), e.g. client {c}: {a} then {b}")
        reads = sum(1 for o in self.history.ops if o.op == "get" and o.outcome == OK)
        return True, f"{acked} acknowledged writes on {len(keys)} keys read back; {reads} reads checked"

    def _expect_one_leader_per_term(self, step: Step) -> tuple[bool, str]:
        seen = list(self.target.observed()) + self.own_observations
        by_term = leaders_by_term(seen)
        bad = {t: sorted(v) for t, v in by_term.items() if len(v) > 1}
        if bad:
            return False, "two leaders in one term: " + ", ".join(f"term {t}: {'/'.join(v)}" for t, v in sorted(bad.items()))
        terms = sorted(by_term)
        span = f"terms {terms[0]}..{terms[-1]}" if terms else "no leader seen"
        return True, f"{len(terms)} term(s) with a leader ({span}), one leader each, in {len(seen)} statuses"


def run(scenario: Scenario, target, *, rng: Optional[random.Random] = None,
        out: Optional[Callable[[str], None]] = None) -> Outcome:
    """Run `scenario` against `target` (a Target); the Outcome has the timeline."""
    return Runner(scenario, target, rng=rng, out=out).run()
