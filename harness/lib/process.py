"""Processes the harness starts: nodes and the fault proxy.

Each process is started in a new session, so it leads a process group whose
id is its own PID. Signals go to that group: a node started through a
wrapper (`--node-cmd "sh run.sh"`, `python3 node.py`) is stopped, paused or
killed together with everything it spawned, and nothing else is touched.

The harness never reaps a process before it has finished signalling its
group: an unreaped child (even a zombie) keeps its PID, so the group id that
the harness signals can never belong to a stranger. On Linux every child
also gets PR_SET_PDEATHSIG=SIGKILL, so it dies if the harness itself is
killed with SIGKILL and cannot clean up.

stdout and stderr of every start go to one log file (appended across
restarts, each start preceded by a marker line), read back for failure
reports.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from typing import Callable, Optional, Sequence

_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ManagedProcess:
    """One program the harness runs, with its log file and signal controls.

    `clock` returns seconds since the cluster started; it stamps the marker
    lines so a log can be read side by side with the fault timeline.
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: str,
                 clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.clock = clock
        self.proc: Optional[subprocess.Popen] = None
        self.paused = False
        self.starts = 0
        self.last_exit: Optional[str] = None  # how the last run ended, if it did

    # -- state --------------------------------------------------------------

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def _peek_exit(self) -> Optional[str]:
        """How the running process ended, or None while it runs. Never reaps."""
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return _describe_returncode(self.proc.returncode)
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return "gone"
        if info is None or info.si_pid == 0:
            return None
        if info.si_code == os.CLD_EXITED:
            return f"exited with code {info.si_status}"
        return f"killed by {_signal_name(info.si_status)}"

    def is_running(self) -> bool:
        return self.proc is not None and self._peek_exit() is None

    def describe(self) -> str:
        """A short state for reports: 'running pid 123', 'exited with code 2', ..."""
        if self.proc is None:
            return f"not running ({self.last_exit})" if self.last_exit else "never started"
        ended = self._peek_exit()
        if ended:
            return ended
        return f"{'paused' if self.paused else 'running'}, pid {self.proc.pid}"

    # -- control ------------------------------------------------------------

    def start(self) -> None:
        if self.proc is not None:
            if self.is_running():
                raise RuntimeError(f"{self.name} is already running (pid {self.proc.pid})")
            self._reap()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- harness: start #{self.starts} of {self.name} at t={self.clock():.3f}s: "
                      f"{' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent, close_fds=True)
            except OSError as e:
                self.last_exit = f"could not start: {e}"
                raise RuntimeError(f"cannot start {self.name}: {' '.join(self.argv)}: {e}") from e
        self.paused = False
        self.last_exit = None

    def signal(self, sig: int) -> None:
        """Send `sig` to the process group this process leads (if not yet reaped)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def pause(self) -> None:
        """SIGSTOP: the process freezes but keeps its state and its socket."""
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT: the process carries on where it froze."""
        self.signal(signal.SIGCONT)
        self.paused = False

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL: a crash. Nothing is flushed, nothing gets a say."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self._wait(timeout)
        self._reap()

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` s: a clean stop if the node manages one."""
        if self.proc is None:
            return
        if self.paused:
            self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        if not self._wait(timeout):
            with open(self.log_path, "ab") as log:
                log.write(f"--- harness: {self.name} ignored SIGTERM for {timeout}s; SIGKILL\n".encode())
        # Whatever is left of the group (children of a wrapper) goes too.
        self.signal(signal.SIGKILL)
        self._wait(timeout)
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- internals ----------------------------------------------------------

    def _wait(self, timeout: float) -> bool:
        """Wait (without reaping) until the process ended; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._peek_exit() is not None:
                return True
            time.sleep(0.005)
        return self._peek_exit() is not None

    def _reap(self) -> None:
        if self.proc is None:
            return
        ended = self._peek_exit()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return  # still alive (cannot happen after SIGKILL); keep the handle
        self.last_exit = ended or _describe_returncode(self.proc.returncode)
        with open(self.log_path, "ab") as log:
            log.write(f"--- harness: {self.name} {self.last_exit} at t={self.clock():.3f}s\n".encode())
        self.proc = None
        self.paused = False

    def log_text(self) -> str:
        """The whole log (all starts)."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 200 * lines))
                data = f.read().decode("utf-8", errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        tail = data.splitlines()[-lines:]
        return "\n".join(tail) if tail else "(empty log)"


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _describe_returncode(code: int) -> str:
    if code < 0:
        return f"killed by {_signal_name(-code)}"
    return f"exited with code {code}"
