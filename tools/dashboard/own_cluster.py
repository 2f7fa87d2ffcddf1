"""The cluster `./dashboard` starts itself: 5 nodes behind the fault proxy.

It does what `make cluster PROXY=1` does, in a directory of its own:
`./setup` writes DIR/configs, harness/proxied_configs.py writes
DIR/configs-proxied (peers and clients through the proxy), then it starts
`./proxy` and one `./node` per server config (cwd DIR, so data_dir is
DIR/data/nK; output in DIR/logs/nK.log). The dashboard then attaches to it
exactly as to a cluster someone else started (harness/lib/attach.py).

Every process is started here, remembered by its Popen object, and stopped
by PID in stop(): SIGTERM, then SIGKILL after a grace period. Children also
get PR_SET_PDEATHSIG, so a dashboard killed with SIGKILL takes them along.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Optional

from harness.lib.attach import _die_with_parent, _udp_inodes

STARTUP_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0


class StartError(RuntimeError):
    pass


class OwnCluster:
    def __init__(self, repo: str, *, nodes: int = 5, base_port: int = 7001, private_offset: int = 10000,
                 control: Optional[str] = None, work_dir: Optional[str] = None, keep: bool = False,
                 say=print):
        self.repo = repo
        self.nodes = nodes
        self.base_port = base_port
        self.private_offset = private_offset
        self.control = control
        self.say = say
        self.made_dir = work_dir is None
        self.dir = os.path.abspath(work_dir or tempfile.mkdtemp(prefix="raftkv-dashboard-"))
        self.keep = keep
        self.proxied = os.path.join(self.dir, "configs-proxied")
        self.log_dir = os.path.join(self.dir, "logs")
        self.procs: dict[str, subprocess.Popen] = {}

    def _run(self, argv: list) -> None:
        proc = subprocess.run(argv, cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=30)
        if proc.returncode != 0:
            raise StartError(f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stdout.strip()}")

    def start(self) -> None:
        for prog in ("setup", "node", "proxy"):
            path = os.path.join(self.repo, prog)
            if not os.access(path, os.X_OK):
                raise StartError(f"{path} is missing: build it first (make)")
        os.makedirs(self.log_dir, exist_ok=True)
        configs = os.path.join(self.dir, "configs")
        self._run([os.path.join(self.repo, "setup"), str(self.nodes), "3", "--dir", configs,
                   "--base-port", str(self.base_port), "--force"])
        argv = [sys.executable, os.path.join(self.repo, "harness", "proxied_configs.py"), "--force",
                "--private-offset", str(self.private_offset)]
        if self.control:
            argv += ["--control", self.control]
        self._run(argv + [configs, self.proxied])
        self._spawn("proxy", [os.path.join(self.repo, "proxy"), "--config",
                              os.path.join(self.proxied, "proxy.json")])
        listens = {}
        for i in range(1, self.nodes + 1):
            nid = f"n{i}"
            config = os.path.join("configs-proxied", f"server-{i}.json")
            self._spawn(nid, [os.path.join(self.repo, "node"), config])
            listens[nid] = ("127.0.0.1", self.base_port + i - 1 + self.private_offset)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for nid, addr in listens.items():  # attach.py finds a node by the socket it holds
            while not _udp_inodes(addr):
                if self.procs[nid].poll() is not None:
                    raise StartError(f"{nid} exited at start (status {self.procs[nid].returncode}); "
                                     f"see {self.log_dir}/{nid}.log")
                if time.monotonic() > deadline:
                    raise StartError(f"{nid} did not bind {addr[0]}:{addr[1]} within {STARTUP_TIMEOUT_S:g} s")
                time.sleep(0.05)

    def _spawn(self, name: str, argv: list) -> None:
        with open(os.path.join(self.log_dir, f"{name}.log"), "ab") as log:
            self.procs[name] = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True,
                                                preexec_fn=_die_with_parent)

    def reap(self) -> None:
        """Collect the exit status of nodes killed from the page (no zombies left)."""
        for p in self.procs.values():
            p.poll()

    def stop(self) -> list:
        """Stop every process started here, by PID; returns what was done, one line each."""
        notes = []
        gone = {name for name, p in self.procs.items() if p.poll() is not None}
        for name, p in self.procs.items():
            if name not in gone:
                try:
                    os.kill(p.pid, signal.SIGCONT)  # a paused node cannot act on SIGTERM
                    p.terminate()
                except ProcessLookupError:
                    pass
        end = time.monotonic() + STOP_GRACE_S
        for name, p in self.procs.items():
            if name in gone:
                notes.append(f"{name} (pid {p.pid}) had exited already (status {p.returncode})")
                continue
            try:
                p.wait(max(0.0, end - time.monotonic()))
                notes.append(f"{name} (pid {p.pid}) stopped")
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(2.0)
                notes.append(f"{name} (pid {p.pid}) killed after {STOP_GRACE_S:g} s")
        if self.made_dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return notes
