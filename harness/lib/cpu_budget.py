"""Confine a whole test run (pytest, every node, the proxy) to a fraction of one CPU.

Gradescope's default autograder machine has half a virtual CPU; a laptop has
eight cores. `./grade --cpu-budget 0.5` runs the suite in a fresh cgroup with
a CFS quota of 0.5 x the period, so every process the run starts (children
inherit the cgroup) shares half of one core.

Two kernels' interfaces, tried in this order (as root; both need write
access to the cgroup file system):
  cgroup v2  /sys/fs/cgroup/raftkv-grade-PID/cpu.max = "50000 100000"
             (when the unified hierarchy offers the cpu controller)
  cgroup v1  /sys/fs/cgroup/cpu/raftkv-grade-PID/cpu.cfs_quota_us = 50000,
             cpu.cfs_period_us = 100000
Without either, CpuBudget raises CpuBudgetError saying why; nothing is
emulated (a competing load on a pinned core is not an exact budget).
"""

from __future__ import annotations

import os
import time
from typing import Optional

PERIOD_US = 100_000
V2_ROOT = "/sys/fs/cgroup"
V1_ROOT = "/sys/fs/cgroup/cpu"
REMOVE_ATTEMPTS = 50  # x 0.1 s: a cgroup can be removed only once its last process has exited


class CpuBudgetError(RuntimeError):
    pass


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


class CpuBudget:
    """with CpuBudget(0.5) as budget: subprocess.Popen(..., preexec_fn=budget.join)"""

    def __init__(self, cpus: float):
        if not (0.01 <= cpus <= (os.cpu_count() or 1)):
            raise CpuBudgetError(f"--cpu-budget must be between 0.01 and {os.cpu_count()} CPUs, got {cpus}")
        self.cpus = cpus
        self.quota_us = int(round(cpus * PERIOD_US))
        self.path: Optional[str] = None
        self.kind = ""

    def __enter__(self) -> "CpuBudget":
        name = f"raftkv-grade-{os.getpid()}"
        errors = []
        try:
            with open(os.path.join(V2_ROOT, "cgroup.controllers"), encoding="ascii") as f:
                v2_cpu = "cpu" in f.read().split()
        except OSError:
            v2_cpu = False
        if v2_cpu:
            path = os.path.join(V2_ROOT, name)
            try:
                os.mkdir(path)
                _write(os.path.join(path, "cpu.max"), f"{self.quota_us} {PERIOD_US}")
                self.path, self.kind = path, "cgroup v2 cpu.max"
                return self
            except OSError as e:
                errors.append(f"cgroup v2 at {path}: {e}")
                self._remove(path)
        else:
            errors.append(f"cgroup v2: no cpu controller in {V2_ROOT}/cgroup.controllers")
        if os.path.isdir(V1_ROOT):
            path = os.path.join(V1_ROOT, name)
            try:
                os.mkdir(path)
                _write(os.path.join(path, "cpu.cfs_period_us"), str(PERIOD_US))
                _write(os.path.join(path, "cpu.cfs_quota_us"), str(self.quota_us))
                self.path, self.kind = path, "cgroup v1 cpu.cfs_quota_us"
                return self
            except OSError as e:
                errors.append(f"cgroup v1 at {path}: {e}")
                self._remove(path)
        else:
            errors.append(f"cgroup v1: no {V1_ROOT}")
        raise CpuBudgetError("cannot confine the run to a CPU budget (run as root on a machine with cgroups): "
                             + "; ".join(errors))

    def join(self) -> None:
        """In a child before exec (preexec_fn): move this process into the cgroup."""
        _write(os.path.join(self.path, "cgroup.procs"), str(os.getpid()))

    def describe(self) -> str:
        return f"{self.cpus:g} CPU ({self.kind}, quota {self.quota_us} us per {PERIOD_US} us)"

    def throttling(self) -> dict:
        """The kernel's cpu.stat of the cgroup: how often the budget held the run back."""
        out = {}
        try:
            with open(os.path.join(self.path, "cpu.stat"), encoding="ascii") as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if v.strip().isdigit():
                        out[k] = int(v)
        except OSError:
            pass
        return out

    @staticmethod
    def _remove(path: str) -> bool:
        for _ in range(REMOVE_ATTEMPTS):
            try:
                os.rmdir(path)
                return True
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def __exit__(self, *exc) -> None:
        if self.path and not self._remove(self.path):
            print(f"grade: could not remove {self.path} (a process of the run is still in it)")
