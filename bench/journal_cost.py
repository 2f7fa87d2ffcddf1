#!/usr/bin/python3
"""What the proxy's message journal (docs/proxy.md, "Message journal") costs.

Starts the proxy (one node, on 127.0.0.1, free ports picked by the kernel)
without and then with --journal, pushes the same N datagrams (a 200-byte
append_entries heartbeat each) from a fake peer through it to a fake node,
and reports the proxy's CPU time per datagram (user+sys from
/proc/PID/stat) and the wall time. Each proxy is stopped by its PID; the
temporary directory is removed. Standard library only.

    bench/journal_cost.py --proxy-bin build/proxy --datagrams 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HEARTBEAT = json.dumps({"type": "append_entries", "src": "n2", "dest": "n1", "term": 7, "prev_log_index": 1234,
                        "prev_log_term": 7, "entries": [], "leader_commit": 1234, "read_round": 99,
                        "cluster": "k3f9a2c41d0e6b7a8", "mac": "9c1e" * 16}).encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(proxy_bin: str, workdir: str, datagrams: int, journal: bool) -> dict:
    node = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    node.bind(("127.0.0.1", 0))
    node.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    public1, public2, control = free_port(), free_port(), free_port()
    config = {"control": f"127.0.0.1:{control}",
              "nodes": [{"id": "n1", "public": f"127.0.0.1:{public1}", "private": f"127.0.0.1:{node.getsockname()[1]}"},
                        {"id": "n2", "public": f"127.0.0.1:{public2}", "private": f"127.0.0.1:{peer.getsockname()[1]}"}]}
    config_path = os.path.join(workdir, "proxy.json")
    with open(config_path, "w") as f:
        json.dump(config, f)
    argv = [proxy_bin, "--config", config_path, "--seed", "1", "--log-level", "warn"]
    if journal:
        argv += ["--journal", os.path.join(workdir, "journal.jsonl")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.stdout.readline()  # "proxy ready: ..."
        node.settimeout(2.0)
        received = 0
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        burst = 50  # bounded bursts, so no socket buffer overflows
        for start in range(0, datagrams, burst):
            for _ in range(min(burst, datagrams - start)):
                peer.sendto(HEARTBEAT, ("127.0.0.1", public1))
            while received < min(start + burst, datagrams):
                try:
                    node.recv(65535)
                except socket.timeout:
                    break
                received += 1
        wall = time.monotonic() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        return {"journal": journal, "datagrams": datagrams, "received": received, "proxy_cpu_s": cpu,
                "cpu_us_per_datagram": 1e6 * cpu / max(1, received), "wall_s": wall}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        node.close()
        peer.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy-bin", default="build/proxy")
    ap.add_argument("--datagrams", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not 1 <= args.datagrams <= 10_000_000 or not 1 <= args.rounds <= 20:
        ap.error("--datagrams must be in 1..10^7 and --rounds in 1..20")
    workdir = tempfile.mkdtemp(prefix="raftkv-journal-bench-")
    try:
        for r in range(args.rounds):
            for journal in (False, True):
                res = run_once(args.proxy_bin, workdir, args.datagrams, journal)
                print(f"round {r + 1} journal={'on ' if journal else 'off'}: {res['received']}/{res['datagrams']} "
                      f"delivered, proxy CPU {res['proxy_cpu_s']:.2f} s = {res['cpu_us_per_datagram']:.2f} us/datagram, "
                      f"wall {res['wall_s']:.2f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
