"""Attach mode's tools (docs/faults.md): proxied_configs.py and finding node processes in /proc.

No binary needed: the "nodes" here are small Python processes that bind a UDP
socket, which is all the discovery looks at besides the command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from . import proxied_configs
from .lib import ports
from .lib.attach import find_node_processes

# Tests of the harness's own code: they run in `make test` but never count toward a node's score.
pytestmark = pytest.mark.harness_self_test


def write_setup_configs(d, n=3, base=7001, clients=2):
    d.mkdir(parents=True, exist_ok=True)
    addr = {f"n{i}": f"127.0.0.1:{base + i - 1}" for i in range(1, n + 1)}
    for i in range(1, n + 1):
        me = f"n{i}"
        (d / f"server-{i}.json").write_text(json.dumps({
            "id": me, "listen": addr[me], "data_dir": f"data/{me}",
            "peers": [{"id": p, "address": a} for p, a in addr.items() if p != me],
            "params": {"heartbeat_interval_ms": 50, "election_timeout_ms": [150, 300]}}))
    for c in range(1, clients + 1):
        (d / f"client-{c}.json").write_text(json.dumps({
            "id": f"c{c}", "servers": [{"id": p, "address": a} for p, a in addr.items()],
            "params": {"request_timeout_ms": 500, "deadline_ms": 10000}}))
    return addr


def test_proxied_configs_moves_nodes_to_private_ports_and_keeps_public_addresses(tmp_path, capsys):
    src, dst = tmp_path / "configs", tmp_path / "configs-proxied"
    addr = write_setup_configs(src)
    assert proxied_configs.main([str(src), str(dst)]) == 0
    proxy = json.loads((dst / "proxy.json").read_text())
    assert proxy == {"control": "127.0.0.1:7100", "nodes": [
        {"id": "n1", "public": "127.0.0.1:7001", "private": "127.0.0.1:17001"},
        {"id": "n2", "public": "127.0.0.1:7002", "private": "127.0.0.1:17002"},
        {"id": "n3", "public": "127.0.0.1:7003", "private": "127.0.0.1:17003"}]}
    s2 = json.loads((dst / "server-2.json").read_text())
    orig = json.loads((src / "server-2.json").read_text())
    assert s2["listen"] == "127.0.0.1:17002"
    assert s2["peers"] == orig["peers"]                      # peers at their public (= original) addresses
    assert s2["data_dir"] == "data/n2" and s2["params"] == orig["params"]
    assert (dst / "client-1.json").read_text() == json.dumps(json.loads((src / "client-1.json").read_text()),
                                                            indent=2) + "\n"
    assert f"./proxy --config {dst}/proxy.json" in capsys.readouterr().out
    assert addr["n1"] == "127.0.0.1:7001"

    # No overwriting without --force; --force removes stale server configs.
    assert proxied_configs.main([str(src), str(dst)]) == 3
    (dst / "server-9.json").write_text("{}")
    assert proxied_configs.main([str(src), str(dst), "--force", "--private-offset", "100",
                                 "--control", "127.0.0.1:7999"]) == 0
    assert not (dst / "server-9.json").exists()
    assert json.loads((dst / "server-1.json").read_text())["listen"] == "127.0.0.1:7101"
    assert json.loads((dst / "proxy.json").read_text())["control"] == "127.0.0.1:7999"


def test_proxied_configs_refuses_bad_input(tmp_path, capsys):
    assert proxied_configs.main([str(tmp_path / "none"), str(tmp_path / "out")]) == 1
    assert "no server-N.json configs" in capsys.readouterr().err
    src = tmp_path / "configs"
    write_setup_configs(src)
    assert proxied_configs.main([str(src), str(src)]) == 2
    # an offset that maps n1's private port onto n2's public one
    assert proxied_configs.main([str(src), str(tmp_path / "o"), "--private-offset", "1"]) == 1
    assert "clash" in capsys.readouterr().err
    assert proxied_configs.main([str(src), str(tmp_path / "o"), "--control", "127.0.0.1:7002"]) == 1


SERVE = "import socket, sys, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); " \
        "s.bind(('127.0.0.1', int(sys.argv[1]))); time.sleep(60)"
DECOY = "import time; time.sleep(60)"


def test_discovery_needs_the_config_on_the_command_line_and_the_listen_socket(tmp_path):
    block = ports.allocate(2)
    procs = []
    try:
        p1, p2 = block.take(), block.take()
        cfg = tmp_path / "cfg"
        cfg.mkdir()
        (cfg / "server-1.json").write_text("{}")
        (cfg / "server-2.json").write_text("{}")
        configs = {"n1": str(cfg / "server-1.json"), "n2": str(cfg / "server-2.json")}
        listens = {"n1": ("127.0.0.1", p1), "n2": ("127.0.0.1", p2)}
        # n1: a "node" started with a relative config path from its own working directory.
        node = subprocess.Popen([sys.executable, "-c", SERVE, str(p1), "cfg/server-1.json"], cwd=tmp_path)
        # n2: only a process that names the config (like an editor) and binds nothing.
        decoy = subprocess.Popen([sys.executable, "-c", DECOY, str(cfg / "server-2.json")], cwd=tmp_path)
        procs += [node, decoy]
        deadline = time.monotonic() + 10
        while True:
            found = find_node_processes(configs, listens)
            if found["n1"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [f[0] for f in found["n1"]] == [node.pid]
        pid, starttime, state, argv, cwd, index = found["n1"][0]
        assert cwd == str(tmp_path) and argv[index] == "cfg/server-1.json" and state in "RS"
        assert found["n2"] == []
    finally:
        for p in procs:
            p.kill()
            p.wait(5)
        block.release()


@pytest.mark.parametrize("argv", [["--attach", "x", "--proxy-bin", "p", "f.scenario"],
                                  ["--log-dir", "d", "f.scenario"],
                                  ["--node-bin", "a", "--node-cmd", "b", "f.scenario"]])
def test_run_scenario_usage_errors_exit_2(argv):
    from pathlib import Path
    script = Path(__file__).resolve().parent / "run_scenario.py"
    r = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
