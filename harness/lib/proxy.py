"""The UDP fault proxy: its process and a client for its control port.

Topology: each node binds its *private* address; the proxy binds one *public*
address per node. Node configs list peers at their public addresses and
clients send to public addresses, so every datagram crosses the proxy, which
can drop, delay, duplicate, block or partition it. The proxy names a link
"a>b" where a and b are node ids or "client".

Control: one JSON datagram to the control port, one JSON reply
{"ok": true, ...} or {"ok": false, "error": ...}. Every command is idempotent,
so the control client simply retries on a lost reply.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Optional

from .process import ManagedProcess


class ProxyError(RuntimeError):
    pass


class ProxyControl:
    """Sends control commands to a running proxy."""

    def __init__(self, address: tuple[str, int], timeout: float = 0.5, attempts: int = 6):
        self.address = address
        self.timeout = timeout
        self.attempts = attempts
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def close(self) -> None:
        self.sock.close()

    def _drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(65535)
        except (BlockingIOError, OSError):
            pass
        finally:
            self.sock.setblocking(True)

    def call(self, cmd: str, *, timeout: Optional[float] = None, attempts: Optional[int] = None,
             **fields: Any) -> dict:
        """Run one command; returns the reply, raises ProxyError if refused or unanswered."""
        request = dict(cmd=cmd, **fields)
        data = json.dumps(request).encode() + b"\n"
        for _ in range(attempts or self.attempts):
            self._drain()  # a late reply to an earlier attempt must not be taken for this one
            self.sock.sendto(data, self.address)
            deadline = time.monotonic() + (timeout or self.timeout)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.sock.settimeout(left)
                try:
                    raw = self.sock.recv(65535)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
                    break
                try:
                    reply = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(reply, dict):
                    continue
                if reply.get("ok") is True:
                    return reply
                raise ProxyError(f"proxy refused {request}: {reply.get('error', reply)}")
        raise ProxyError(f"proxy at {self.address[0]}:{self.address[1]} did not answer {request}")


class Proxy:
    """The proxy process plus its control client."""

    def __init__(self, binary: str, config_path: str, control: tuple[str, int], seed: int,
                 log_path: str, clock, journal_path: Optional[str] = None, journal_records: int = 50000):
        argv = [binary, "--config", config_path, "--seed", str(seed)]
        if journal_path:
            # The message journal (docs/proxy.md): drawn as a diagram when a test fails.
            argv += ["--journal", journal_path, "--journal-records", str(journal_records)]
        self.journal_path = journal_path
        self.process = ManagedProcess("proxy", argv, log_path, clock)
        self.control = ProxyControl(control)

    def start(self, timeout: float = 5.0) -> None:
        """Start the proxy and wait until it answers `ping`."""
        self.process.start()
        deadline = time.monotonic() + timeout
        last_error: Optional[Exception] = None
        while time.monotonic() < deadline:
            if not self.process.is_running():
                raise ProxyError(f"proxy {self.process.describe()} right after start; its log:\n"
                                 + self.process.log_tail(15))
            try:
                self.control.call("ping", timeout=0.05, attempts=1)
                return
            except ProxyError as e:
                last_error = e
                time.sleep(0.05)
        raise ProxyError(f"proxy did not answer ping within {timeout} s ({last_error}); its log:\n"
                         + self.process.log_tail(15))

    def call(self, cmd: str, **fields: Any) -> dict:
        return self.control.call(cmd, **fields)

    def write_journal(self) -> Optional[str]:
        """Has a running proxy write its journal now; returns its path (None without a journal).
        A proxy that no longer runs left the file it last wrote (at exit, or at start)."""
        if not self.journal_path:
            return None
        if self.process.is_running():
            self.control.call("journal", timeout=2.0, attempts=2)
        return self.journal_path

    def kill(self) -> None:
        self.process.kill()

    def close(self) -> None:
        self.process.kill()
        self.control.close()
