"""Free UDP ports on 127.0.0.1 for one cluster.

A cluster needs a handful of ports (each node's private address, the proxy's
public address for each node, the proxy's control port). Two harness runs on
the same machine (two students, or one student running two terminals) must
never pick the same ones, so a block of ports is claimed in two steps:

1. an exclusive `flock` on a lock file named after the block (in
   /tmp/raftkv-harness-ports/), held for as long as the cluster lives: other
   harness runs skip a locked block even before anything is bound to it;
2. a bind test of every port in the block: a block where any port is in use
   by some other program is skipped.

Blocks are 16-port aligned and lie below the kernel's ephemeral range, so the
ports that clients and the kernel hand out (bind to port 0) never collide
with them either.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import tempfile

HOST = "127.0.0.1"
BLOCK_ALIGN = 16
LOCK_DIR = os.path.join(tempfile.gettempdir(), "raftkv-harness-ports")
LOWEST_PORT = 20000


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _usable_bases(span: int) -> list[int]:
    """Aligned block starts that keep the whole block out of the ephemeral range."""
    eph_lo, eph_hi = _ephemeral_range()
    bases = []
    for lo, hi in ((LOWEST_PORT, eph_lo), (eph_hi + 1, 65536)):
        start = (max(lo, LOWEST_PORT) + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN
        bases.extend(range(start, hi - span + 1, BLOCK_ALIGN))
    return bases


def _port_is_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _lock_dir() -> str:
    """The lock directory, shared by every user of the machine like /tmp itself
    (a private one if another user created it without write access for us)."""
    try:
        os.mkdir(LOCK_DIR)
        os.chmod(LOCK_DIR, 0o1777)
    except FileExistsError:
        pass
    if os.access(LOCK_DIR, os.W_OK | os.X_OK):
        return LOCK_DIR
    private = f"{LOCK_DIR}-{os.getuid()}"
    os.makedirs(private, exist_ok=True)
    return private


class PortBlock:
    """`count` consecutive free UDP ports, reserved until `release()`."""

    def __init__(self, base: int, count: int, lock_fds: list[int]):
        self.base = base
        self.count = count
        self._lock_fds = lock_fds
        self._next = 0

    @property
    def ports(self) -> list[int]:
        return list(range(self.base, self.base + self.count))

    def take(self) -> int:
        """The next unused port of the block."""
        if self._next >= self.count:
            raise RuntimeError(f"port block {self.base}+{self.count} exhausted")
        port = self.base + self._next
        self._next += 1
        return port

    def release(self) -> None:
        for fd in self._lock_fds:
            try:
                os.close(fd)  # closing drops the flock
            except OSError:
                pass
        self._lock_fds = []


def allocate(count: int, attempts: int = 500) -> PortBlock:
    """Reserve `count` consecutive free UDP ports on 127.0.0.1.

    The choice is random (from the OS, not from the test seed) so that two
    runs with the same --seed still pick different ports.
    """
    span = (count + BLOCK_ALIGN - 1) // BLOCK_ALIGN * BLOCK_ALIGN
    lock_dir = _lock_dir()
    chooser = random.SystemRandom()
    bases = _usable_bases(span)
    for _ in range(attempts):
        base = chooser.choice(bases)
        fds: list[int] = []
        try:
            for sub in range(base, base + span, BLOCK_ALIGN):
                path = os.path.join(lock_dir, f"block-{sub}.lock")
                # Read-only is enough for flock, and works on another user's lock file.
                fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            for fd in fds:
                os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                continue  # another harness run holds this block
            raise
        if all(_port_is_free(p) for p in range(base, base + count)):
            return PortBlock(base, count, fds)
        for fd in fds:
            os.close(fd)
    raise RuntimeError(f"could not find {count} free consecutive UDP ports on {HOST}")
