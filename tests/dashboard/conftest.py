"""Fixtures of the dashboard's browser tests: one dashboard (own 5-node
cluster) and one headless chromium for the whole session.

These tests are the dashboard's, not the grading harness's: `make test` runs
them with a pytest invocation of their own, so they never count in a
student's score. Without chromium / chromedriver / selenium they are skipped
with the reason for a user who is not root; as root (CI, where `make deps`
installs them) a missing package is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from browser import Dashboard, make_driver, missing_browser, quit_driver


def _require_browser() -> None:
    why = missing_browser()
    if why is None:
        return
    if os.geteuid() == 0:
        pytest.fail(f"{why}: as root these tests must run (make deps installs the packages)")
    pytest.skip(f"{why}; not root, so not installed here")


@pytest.fixture(scope="session")
def dashboard():
    _require_browser()
    d = Dashboard().start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def driver(dashboard):
    drv = make_driver()
    try:
        drv.get(dashboard.url)
        yield drv
    finally:
        quit_driver(drv)


def api(d: Dashboard, path: str, body=None, raw: bytes | None = None, timeout: float = 30.0) -> tuple[int, dict]:
    """(HTTP status, JSON body) of one request to the dashboard."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(d.url.rstrip("/") + path, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_until(fn, timeout_s: float, what: str, interval_s: float = 0.05):
    """fn()'s first truthy value within timeout_s, else fail saying what was awaited."""
    end = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = fn()
        except Exception as e:  # a DOM node replaced between find and read: try again
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= end:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval_s)


@pytest.fixture
def healthy(dashboard, driver):
    """Every node up and a leader, the network perfect, before each test."""
    api(dashboard, "/api/load", {"action": "stop"})
    api(dashboard, "/api/net", {"action": "reset"})
    _, st = api(dashboard, "/api/state")
    for n in st["nodes"]:
        if n["process"] == "paused":
            api(dashboard, "/api/node", {"node": n["id"], "action": "resume"})
        elif n["process"] == "down":
            api(dashboard, "/api/node", {"node": n["id"], "action": "restart"})

    def ready():
        _, s = api(dashboard, "/api/state")
        up = all(n["process"] == "up" and n["status"] for n in s["nodes"])
        return s if up and s["leader"] else None
    return wait_until(ready, 10.0, "all 5 nodes up with a leader")
