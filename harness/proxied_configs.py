#!/usr/bin/env python3
"""Write a config dir that runs the `make cluster` nodes behind the fault proxy.

    python3 harness/proxied_configs.py configs configs-proxied [--force]
            [--private-offset 10000] [--control 127.0.0.1:7100]

For every SRC/server-N.json it writes DST/server-N.json with the same
content, except:

  listen      a private address: the same host, port + --private-offset
              (127.0.0.1:7001 -> 127.0.0.1:17001);
  peers       each peer's address is its *public* address, which is the
              peer's original `listen`: the proxy binds it and relays.

SRC/client-M.json are copied unchanged: the servers' public addresses are
their original addresses, so `./client` with the usual configs goes through
the proxy. DST/proxy.json names, for each node, public = its original listen
and private = its new listen, and the control address (default: port of the
first node + 99, 7100 for the default configs). data_dir is unchanged, so the
proxied cluster has the same state as the plain one (run one at a time: they
bind the same ports).

Then (docs/faults.md):

    ./proxy --config DST/proxy.json &
    ./launcher --config-dir DST
    python3 harness/run_scenario.py --attach DST faults/leader_crash.scenario

Exit codes: 0 written, 1 bad input configs or port clash, 2 usage, 3 DST
holds configs already (use --force).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys


class Bad(Exception):
    pass


def _addr(text, where: str) -> tuple[str, int]:
    if not isinstance(text, str):
        raise Bad(f"{where}: expected an address 'host:port', got {text!r}")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Bad(f"{where}: expected an address 'host:port', got {text!r}")
    return host, int(port)


def _fmt(a: tuple[str, int]) -> str:
    return f"{a[0]}:{a[1]}"


def _numbered(directory: str, prefix: str) -> list[tuple[int, str]]:
    out = []
    for p in glob.glob(os.path.join(directory, f"{prefix}-*.json")):
        m = re.fullmatch(rf"{prefix}-(\d+)\.json", os.path.basename(p))
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise Bad(f"{path}: cannot read: {e.strerror}") from None
    except ValueError as e:
        raise Bad(f"{path}: not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise Bad(f"{path}: expected a JSON object")
    return doc


def build(src: str, private_offset: int, control: str | None) -> tuple[dict, dict, dict, list]:
    """({file name: server config}, {file name: client config}, proxy config, warnings)."""
    servers = _numbered(src, "server")
    if not servers:
        raise Bad(f"{src}: no server-N.json configs (write them with ./setup)")
    warnings = []
    docs = {}
    public = {}
    for _, path in servers:
        doc = _load(path)
        nid = doc.get("id")
        if not isinstance(nid, str) or not nid:
            raise Bad(f"{path}: field 'id': missing")
        if nid in public:
            raise Bad(f"{path}: id {nid} is used by two server configs")
        public[nid] = _addr(doc.get("listen"), f"{path}: field 'listen'")
        if not isinstance(doc.get("peers"), list):
            raise Bad(f"{path}: field 'peers': expected a list")
        docs[os.path.basename(path)] = doc
    private = {}
    for nid, (host, port) in public.items():
        if port + private_offset >= 65536 or port + private_offset <= 0:
            raise Bad(f"node {nid}: port {port} + --private-offset {private_offset} is not a valid port")
        private[nid] = (host, port + private_offset)
    taken = set(public.values()) | set(private.values())
    if len(taken) != 2 * len(public):
        raise Bad(f"public and private addresses clash (private offset {private_offset}): choose another "
                  f"--private-offset")
    if control is None:
        first = public[_load(servers[0][1])["id"]]
        ctl = (first[0], first[1] + 99)
        while ctl in taken and ctl[1] < 65535:
            ctl = (ctl[0], ctl[1] + 1)
    else:
        ctl = _addr(control, "--control")
    if ctl in taken:
        raise Bad(f"control address {_fmt(ctl)} is also a node address: choose another --control")

    out_servers = {}
    for name, doc in docs.items():
        nid = doc["id"]
        new = dict(doc)
        new["listen"] = _fmt(private[nid])
        peers = []
        for i, peer in enumerate(doc["peers"]):
            if not isinstance(peer, dict) or peer.get("id") not in public:
                raise Bad(f"{os.path.join(src, name)}: field 'peers[{i}]': not a server of {src} "
                          f"({peer!r})")
            pid = peer["id"]
            if peer.get("address") != _fmt(public[pid]):
                warnings.append(f"{name}: peer {pid} was at {peer.get('address')}, now at its public "
                                f"address {_fmt(public[pid])} (its listen in {src})")
            peers.append(dict(peer, address=_fmt(public[pid])))
        new["peers"] = peers
        # Peer datagrams now arrive from the proxy's relay sockets, not from
        # the peers' own addresses: the reference node must not insist on them
        # (its MAC still authenticates every message).
        new["peers_behind_proxy"] = True
        out_servers[name] = new

    out_clients = {}
    for _, path in _numbered(src, "client"):
        doc = _load(path)
        for i, s in enumerate(doc.get("servers") or []):
            if isinstance(s, dict) and s.get("id") in public and s.get("address") != _fmt(public[s["id"]]):
                warnings.append(f"{os.path.basename(path)}: server {s['id']} is at {s.get('address')}, not at "
                                f"its public address {_fmt(public[s['id']])}: that client bypasses the proxy")
        out_clients[os.path.basename(path)] = doc

    proxy = {"control": _fmt(ctl),
             "nodes": [{"id": nid, "public": _fmt(public[nid]), "private": _fmt(private[nid])}
                       for nid in (docs[n]["id"] for n in sorted(docs, key=lambda n: int(n[7:-5])))]}
    return out_servers, out_clients, proxy, warnings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="proxied_configs.py",
        description="Write a config dir that runs the nodes of SRC behind the fault proxy (see docs/faults.md).")
    p.add_argument("src", metavar="SRC", help="config dir written by ./setup (server-N.json, client-M.json)")
    p.add_argument("dst", metavar="DST", help="dir to write (e.g. configs-proxied)")
    p.add_argument("--private-offset", type=int, default=10000, metavar="N",
                   help="each node listens on its original port + N (default 10000)")
    p.add_argument("--control", metavar="HOST:PORT", help="the proxy's control address (default: first port + 99)")
    p.add_argument("--force", action="store_true", help="overwrite DST's configs and delete stale ones")
    args = p.parse_args(argv)
    src, dst = args.src.rstrip("/") or "/", args.dst.rstrip("/") or "/"
    if os.path.realpath(src) == os.path.realpath(dst):
        print("proxied_configs: SRC and DST must be different directories", file=sys.stderr)
        return 2
    try:
        servers, clients, proxy, warnings = build(src, args.private_offset, args.control)
    except Bad as e:
        print(f"proxied_configs: {e}", file=sys.stderr)
        return 1
    existing = [p for p in glob.glob(os.path.join(dst, "*.json"))
                if re.fullmatch(r"(server|client)-\d+\.json|proxy\.json", os.path.basename(p))]
    if existing and not args.force:
        print(f"proxied_configs: {dst} already holds configs ({', '.join(sorted(map(os.path.basename, existing)))}); "
              f"use --force to overwrite", file=sys.stderr)
        return 3
    os.makedirs(dst, exist_ok=True)
    wanted = set(servers) | set(clients) | {"proxy.json"}
    for path in existing:
        if os.path.basename(path) not in wanted:
            os.remove(path)  # stale (e.g. server-6.json from a bigger cluster): the launcher would start it
    for name, doc in list(servers.items()) + list(clients.items()) + [("proxy.json", proxy)]:
        tmp = os.path.join(dst, f".{name}.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(dst, name))
    for w in warnings:
        print(f"proxied_configs: warning: {w}", file=sys.stderr)
    nodes = proxy["nodes"]
    print(f"wrote {dst}/: {len(servers)} server configs (nodes listen on "
          f"{nodes[0]['private']} ... {nodes[-1]['private']}; peers and clients use the proxy at "
          f"{nodes[0]['public']} ... {nodes[-1]['public']}), {len(clients)} client configs, "
          f"proxy.json (control {proxy['control']})")
    print("next:")
    print(f"  ./proxy --config {dst}/proxy.json &")
    print(f"  ./launcher --config-dir {dst}")
    print(f"  python3 harness/run_scenario.py --attach {dst} faults/leader_crash.scenario")
    return 0


if __name__ == "__main__":
    sys.exit(main())
