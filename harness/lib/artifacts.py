"""What a failing test leaves behind for its report, and the memory its nodes used.

save_failure_artifacts(cluster, directory)
    writes the cluster's fault timeline (with the leaders per term, each node's
    state and log tail), each node's log (its last LOG_TAIL_LINES lines) and,
    when a history was checked, lincheck's HTML timeline into `directory`,
    before the cluster's own temporary directory is removed; returns
    [(kind, absolute path)] to attach as `artifact:KIND` (docs/harness.md).

node_peak_rss_kb(cluster)
    the largest peak resident set (VmHWM) of any node process group of the
    cluster that is still alive, in KiB: a node run through a wrapper is
    counted with everything in its process group. Processes already gone
    (killed by the test and not restarted) cannot be measured.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from typing import Optional

LOG_TAIL_LINES = 400
MAX_PROC_ENTRIES = 100_000  # bound on the /proc scan


def slug(text: str, limit: int = 120) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:limit] or "test"


def save_failure_artifacts(cluster, directory: str) -> list[tuple[str, str]]:
    os.makedirs(directory, exist_ok=True)
    out: list[tuple[str, str]] = []
    prefix = slug(cluster.name)
    timeline = os.path.join(directory, f"{prefix}-timeline.txt")
    with open(timeline, "w", encoding="utf-8") as f:
        f.write(cluster.report(log_lines=30) + "\n")
    out.append(("timeline", os.path.abspath(timeline)))
    for node_id in cluster.ids:
        path = os.path.join(directory, f"{prefix}-{node_id}.log")
        with open(path, "w", encoding="utf-8") as f:
            f.write(cluster.nodes[node_id].log_tail(LOG_TAIL_LINES) + "\n")
        out.append(("node_log", os.path.abspath(path)))
    for html in sorted(glob.glob(os.path.join(cluster.dir, "*.html")))[:4]:
        dest = os.path.join(directory, f"{prefix}-lincheck-{os.path.basename(html)}")
        shutil.copyfile(html, dest)
        out.append(("lincheck_html", os.path.abspath(dest)))
    return out


def _pgrp_members(pgid: int) -> list[int]:
    members = []
    for i, entry in enumerate(os.scandir("/proc")):
        if i >= MAX_PROC_ENTRIES:
            break
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 2 and rest[2] == str(pgid):
            members.append(int(entry.name))
    return members


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def node_peak_rss_kb(cluster) -> Optional[int]:
    peaks = []
    for node_id in cluster.ids:
        proc = cluster.nodes[node_id]
        if proc.pid is None or not proc.is_running():
            continue
        peaks.append(sum(_vm_hwm_kb(pid) for pid in _pgrp_members(proc.pid)))
    return max(peaks) if peaks else None
