"""Attach mode: run scenarios against a cluster someone else started behind the proxy.

The cluster is described by a config directory written by
harness/proxied_configs.py (server-N.json with private `listen` addresses and
peers at the proxy's public addresses, client-N.json, proxy.json) and started
with `./proxy --config DIR/proxy.json` and `./launcher --config-dir DIR`.

What the runner can do to nodes it did not start:

* find them: a process of the current user whose command line has an
  argument that resolves (against the process's working directory) to one of
  DIR/server-N.json, *and* that holds a UDP socket bound to that config's
  `listen` address (so an editor or `tail` on the config is never taken for
  the node; a wrapper script is not either, its node child is);
* signal them by PID only (never a process group): SIGKILL, SIGTERM,
  SIGSTOP, SIGCONT. Before every signal it checks that the PID still has the
  start time it had when it was found, so a recycled PID is never hit;
* restart them itself: the node's own command line in its own working
  directory (read from /proc at attach time), output appended to
  LOG_DIR/<id>.log. A node restarted so is the runner's child: the launcher
  no longer prints its output, and the runner stops it when it ends (unless
  --leave-running).

At the start it checks that the proxy answers, and resets the network; at the
end it resets the network again, resumes every node it paused and stops the
nodes it started.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from typing import Optional

from .client import Client, StatusProbe
from .cluster import Timing
from .proxy import ProxyControl, ProxyError
from .scenario import DOWN, PAUSED, UP

_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:  # in the child, between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class AttachError(RuntimeError):
    pass


def _addr(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad address {text!r}")
    return ("127.0.0.1" if host == "localhost" else host, int(port))


def _proc_stat(pid: int) -> Optional[tuple[str, int]]:
    """(state letter, start time in clock ticks) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[19])  # state is field 3, starttime field 22


def _udp_inodes(address: tuple[str, int]) -> set:
    """Inodes of the UDP sockets bound to address (from /proc/net/udp)."""
    host, port = address
    want = "%08X:%04X" % (int.from_bytes(bytes(int(x) for x in host.split(".")), "little"), port)
    out = set()
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                cols = line.split()
                if len(cols) > 9 and cols[1] == want:
                    out.add(cols[9])
    except (OSError, StopIteration):
        pass
    return out


def _holds_socket(pid: int, inodes: set) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", link)
            if m and m.group(1) in inodes:
                return True
    except OSError:
        pass
    return False


def find_node_processes(configs: dict, listens: dict) -> dict:
    """{id: [(pid, starttime, state, argv, cwd, config_arg_index)]} for processes of this user
    whose command line names the node's config and which hold its listen socket."""
    by_path = {os.path.realpath(p): n for n, p in configs.items()}
    inodes = {n: _udp_inodes(listens[n]) for n in configs}
    uid, me = os.getuid(), os.getpid()
    found: dict = {n: [] for n in configs}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0")]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        while argv and argv[-1] == "":
            argv.pop()
        st = _proc_stat(pid)
        if st is None or st[0] in "ZX":
            continue
        for i, arg in enumerate(argv[1:], 1):
            if not arg.endswith(".json"):
                continue
            n = by_path.get(os.path.realpath(os.path.join(cwd, arg)))
            if n is not None and _holds_socket(pid, inodes[n]):
                found[n].append((pid, st[1], st[0], argv, cwd, i))
    return found


class _Node:
    """One node of the attached cluster: a process found in /proc, or one we started."""

    def __init__(self, nid: str, config: str, log_path: str):
        self.id = nid
        self.config = config
        self.log_path = log_path
        self.pid: Optional[int] = None
        self.starttime: Optional[int] = None
        self.popen: Optional[subprocess.Popen] = None
        self.paused = False
        self.argv: list = []
        self.cwd = ""
        self.paused_by_us = False

    @property
    def own(self) -> bool:
        return self.popen is not None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        if self.pid is None:
            return False
        st = _proc_stat(self.pid)
        return st is not None and st[1] == self.starttime and st[0] not in "ZX"

    def signal(self, sig: int) -> bool:
        if not self.alive():
            return False
        try:
            if self.popen is not None:
                self.popen.send_signal(sig)
            else:
                os.kill(self.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def wait_dead(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def forget(self) -> None:
        """The process is gone: keep the recipe, drop the identity."""
        if self.popen is not None:
            try:
                self.popen.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                return
        self.popen = None
        self.pid = None
        self.starttime = None
        self.paused = False
        self.paused_by_us = False

    def describe(self) -> str:
        if not self.alive():
            return "down"
        who = "started by the runner" if self.own else "found in /proc"
        return f"{'paused' if self.paused else 'running'}, pid {self.pid} ({who})"


class AttachedCluster:
    """A Target (see scenario.py) for a cluster started from a proxied config dir."""

    def __init__(self, config_dir: str, *, node_bin: Optional[str] = None, log_dir: Optional[str] = None,
                 leave_running: bool = False, rng: Optional[random.Random] = None,
                 say=print):
        self.dir = os.path.abspath(config_dir)
        self.say = say
        self.rng = rng or random.Random()
        self.leave_running = leave_running
        self.log_dir = os.path.abspath(log_dir or os.path.join(self.dir, "logs"))
        self.t0 = time.monotonic()
        self.timeline: list = []
        self.observations: list = []
        self._obs_lock = threading.Lock()
        self._clients: list = []
        self._closed = False
        self._monitor: Optional[threading.Thread] = None
        self._monitor_stop = threading.Event()
        self._read_configs()
        self.nodes = {n: _Node(n, self.configs[n], os.path.join(self.log_dir, f"{n}.log")) for n in self.ids}
        self.control = ProxyControl(self.control_addr)
        self._probe = StatusProbe(self.private)
        try:
            self._check_proxy()
            self._discover(node_bin)
        except BaseException:
            self.control.close()
            self._probe.close()
            raise

    # -- configs and discovery ---------------------------------------------------------------------

    def _read_configs(self) -> None:
        paths = glob.glob(os.path.join(self.dir, "server-*.json"))
        numbered = sorted((int(m.group(1)), p) for p in paths
                          if (m := re.fullmatch(r"server-(\d+)\.json", os.path.basename(p))))
        if not numbered:
            raise AttachError(f"{self.dir}: no server-N.json configs")
        proxy_path = os.path.join(self.dir, "proxy.json")
        if not os.path.exists(proxy_path):
            raise AttachError(f"{self.dir} has no proxy.json: not a proxied config dir (write one with "
                              f"python3 harness/proxied_configs.py configs {os.path.relpath(self.dir)}-proxied)")
        try:
            with open(proxy_path) as f:
                pconf = json.load(f)
            self.control_addr = _addr(pconf["control"])
            pnodes = {e["id"]: (_addr(e["public"]), _addr(e["private"])) for e in pconf["nodes"]}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise AttachError(f"{proxy_path}: {e} (write the dir with harness/proxied_configs.py)") from None
        self.configs, self.private, self.public = {}, {}, {}
        self.ids = []
        timing = None
        for _, p in numbered:
            try:
                with open(p) as f:
                    conf = json.load(f)
                nid, listen = conf["id"], _addr(conf["listen"])
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise AttachError(f"{p}: {e}") from None
            if nid not in pnodes:
                raise AttachError(f"{p}: node {nid} is not in {proxy_path}")
            public, private = pnodes[nid]
            if listen != private:
                raise AttachError(f"{p}: listens on {listen[0]}:{listen[1]}, but {proxy_path} gives "
                                  f"{nid} the private address {private[0]}:{private[1]}: not a proxied "
                                  f"config dir (write one with harness/proxied_configs.py)")
            self.ids.append(nid)
            self.configs[nid] = os.path.abspath(p)
            self.private[nid] = private
            self.public[nid] = public
            if timing is None:
                params = conf.get("params") or {}
                try:
                    timing = Timing(heartbeat_ms=int(params.get("heartbeat_interval_ms", 50)),
                                    election_ms=tuple(params.get("election_timeout_ms", [150, 300])))
                except (TypeError, ValueError):
                    timing = Timing()
        missing = sorted(set(pnodes) - set(self.ids))
        if missing:
            raise AttachError(f"{proxy_path} lists {', '.join(missing)}, which have no server config")
        self.timing = timing or Timing()
        self.size = len(self.ids)
        self.majority = self.size // 2 + 1
        self.resolve_timeout = self.timing.leader_bound

    def _check_proxy(self) -> None:
        c = self.control_addr
        try:
            reply = self.control.call("ping", timeout=0.3, attempts=3)
        except ProxyError:
            raise AttachError(f"no proxy answers at {c[0]}:{c[1]}: start it with "
                              f"./proxy --config {os.path.relpath(os.path.join(self.dir, 'proxy.json'))}") from None
        if sorted(reply.get("nodes", [])) != sorted(self.ids):
            raise AttachError(f"the proxy at {c[0]}:{c[1]} serves nodes {reply.get('nodes')}, "
                              f"the configs in {self.dir} are for {self.ids}")
        self.control.call("reset")
        self.note("attach: network reset")

    def _discover(self, node_bin: Optional[str]) -> None:
        found = find_node_processes(self.configs, self.private)
        template = None
        for n in self.ids:
            procs = found[n]
            if len(procs) > 1:
                raise AttachError(f"{n}: several processes run {self.configs[n]}: pids "
                                  f"{', '.join(str(p[0]) for p in procs)}")
            if procs:
                pid, start, state, argv, cwd, idx = procs[0]
                node = self.nodes[n]
                node.pid, node.starttime, node.argv, node.cwd = pid, start, argv, cwd
                node.paused = state in "Tt"
                template = template or (argv, cwd, idx)
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for n in self.ids:
            node = self.nodes[n]
            if node.argv:
                continue
            if template is not None and node_bin is None:
                argv, cwd, idx = template
                node.argv = list(argv)
                node.argv[idx] = os.path.relpath(self.configs[n], cwd)
                node.cwd = cwd
            else:
                node.argv = [os.path.abspath(node_bin or os.path.join(repo, "node")), self.configs[n]]
                node.cwd = os.path.dirname(self.dir)

    def describe_nodes(self) -> list:
        out = []
        for n in self.ids:
            node = self.nodes[n]
            how = node.describe()
            out.append(f"{n}: {how}; restart: (cd {node.cwd} && {' '.join(node.argv)})")
        return out

    # -- Target: processes ---------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        self.timeline.append((self.elapsed(), text))

    def state(self, n: str) -> str:
        node = self.nodes[n]
        if not node.alive():
            return DOWN
        return PAUSED if node.paused else UP

    def describe(self, n: str) -> str:
        return self.nodes[n].describe()

    def kill(self, nodes) -> None:
        nodes = list(nodes)
        self.note(f"kill {', '.join(nodes)} (SIGKILL)")
        for n in nodes:
            self.nodes[n].signal(signal.SIGKILL)
        for n in nodes:
            if self.nodes[n].wait_dead(5.0):
                self.nodes[n].forget()

    def stop(self, nodes) -> None:
        for n in nodes:
            node = self.nodes[n]
            self.note(f"stop {n} (SIGTERM)")
            if node.paused:
                node.signal(signal.SIGCONT)
            node.signal(signal.SIGTERM)
            if not node.wait_dead(3.0):
                node.signal(signal.SIGKILL)
                node.wait_dead(5.0)
            if not node.alive():
                node.forget()

    def pause(self, nodes) -> None:
        for n in nodes:
            self.note(f"pause {n} (SIGSTOP)")
            if self.nodes[n].signal(signal.SIGSTOP):
                self.nodes[n].paused = True
                self.nodes[n].paused_by_us = True

    def resume(self, nodes) -> None:
        for n in nodes:
            self.note(f"resume {n} (SIGCONT)")
            self.nodes[n].signal(signal.SIGCONT)
            self.nodes[n].paused = False
            self.nodes[n].paused_by_us = False

    def start(self, nodes) -> None:
        os.makedirs(self.log_dir, exist_ok=True)
        for n in nodes:
            node = self.nodes[n]
            if node.alive():
                continue
            self.note(f"start {n}")
            with open(node.log_path, "ab") as log:
                log.write(f"--- run_scenario: start {n} at {time.strftime('%H:%M:%S')} in {node.cwd}: "
                          f"{' '.join(node.argv)}\n".encode())
                log.flush()
                try:
                    node.popen = subprocess.Popen(
                        node.argv, cwd=node.cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True, close_fds=True,
                        preexec_fn=None if self.leave_running else _die_with_parent)
                except OSError as e:
                    raise AttachError(f"cannot start {n}: {' '.join(node.argv)}: {e}") from None
            node.pid = node.popen.pid
            node.starttime = None
            node.paused = False

    # -- Target: observation, network, clients -------------------------------------------------------------

    def statuses(self, nodes, timeout: float = 0.2) -> dict:
        out = self._probe.poll(list(nodes), timeout)
        self._observe(out)
        return out

    def _observe(self, statuses: dict) -> None:
        t = self.elapsed()
        with self._obs_lock:
            self.observations.extend((t, n, s) for n, s in statuses.items() if isinstance(s, dict))

    def observed(self) -> list:
        with self._obs_lock:
            return list(self.observations)

    def start_monitor(self) -> None:
        """Poll every node's status ten times a second (for `expect one-leader-per-term`)."""
        def loop():
            probe = StatusProbe(self.private)
            try:
                while not self._monitor_stop.is_set():
                    began = time.monotonic()
                    try:
                        self._observe(probe.poll(timeout=0.08))
                    except Exception:
                        pass
                    self._monitor_stop.wait(max(0.0, 0.1 - (time.monotonic() - began)))
            finally:
                probe.close()
        self._monitor = threading.Thread(target=loop, name="attach-monitor", daemon=True)
        self._monitor.start()

    def proxy(self, description: str, cmd: str, **fields) -> dict:
        self.note(description)
        return self.control.call(cmd, **fields)

    def client(self, history=None, deadline: Optional[float] = None, **kw) -> Client:
        c = Client(self.public, request_timeout=kw.pop("request_timeout", self.timing.request_timeout),
                   deadline=deadline if deadline is not None else self.timing.deadline,
                   rng=random.Random(self.rng.random()), history=history, **kw)
        self._clients.append(c)
        return c

    # -- the end -----------------------------------------------------------------------------------------

    def close(self) -> list:
        """Reset the network, resume what we paused, stop what we started (unless leave_running).
        Returns lines describing what was left behind. Never raises, except a ^C (after finishing)."""
        if self._closed:
            return []
        self._closed = True
        notes: list = []
        interrupted = None

        def attempt(fn):
            nonlocal interrupted
            try:
                fn()
            except KeyboardInterrupt as e:
                interrupted = e
            except Exception as e:
                notes.append(f"cleanup: {e}")

        self._monitor_stop.set()
        if self._monitor is not None:
            attempt(lambda: self._monitor.join(2.0))
        attempt(lambda: self.control.call("reset"))
        for n in self.ids:
            node = self.nodes[n]
            if node.paused_by_us and node.alive():
                attempt(lambda node=node: (node.signal(signal.SIGCONT), setattr(node, "paused", False)))
                notes.append(f"{n}: resumed (SIGCONT)")
        for n in self.ids:
            node = self.nodes[n]
            if node.own and node.alive():
                if self.leave_running:
                    notes.append(f"{n}: left running, pid {node.pid} (started by the runner; log {node.log_path})")
                    continue
                attempt(lambda n=n: self.stop([n]))
                notes.append(f"{n}: stopped (it had been restarted by the runner)")
            elif node.own:
                attempt(node.forget)
        for c in self._clients:
            attempt(c.close)
        attempt(self._probe.close)
        attempt(self.control.close)
        if interrupted is not None:
            raise interrupted
        return notes
