"""A dashboard process on free ports and a headless chromium driving it.

Shared by the browser tests (test_dashboard.py) and the screenshot tool
(tools/dashboard/screenshots.py). Everything started here is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from harness.lib import ports  # noqa: E402

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 8.0
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} missing (Debian package {pkg}; make deps installs it)"
    try:
        import selenium  # noqa: F401
        import aiohttp  # noqa: F401
    except ImportError as e:
        return f"{e.name} missing (Debian package python3-{e.name}; make deps installs it)"
    return None


class Dashboard:
    """./dashboard with its own cluster, on a block of free ports (harness/lib/ports.py)."""

    def __init__(self):
        # 5 public + 5 private node ports, the proxy's control port and the HTTP port.
        self.block = ports.allocate(12)
        b = self.block.base
        self.http_port = b + 11
        self.url = f"http://127.0.0.1:{self.http_port}/"
        self.dir = tempfile.mkdtemp(prefix="raftkv-dashboard-test-")
        self.log_path = os.path.join(self.dir, "dashboard.log")
        self.proc: subprocess.Popen | None = None
        self.final_log = ""
        self.argv = [os.path.join(REPO, "dashboard"), "--port", str(self.http_port), "--base-port", str(b),
                     "--private-offset", "5", "--control", f"127.0.0.1:{b + 10}",
                     "--dir", os.path.join(self.dir, "cluster")]

    def start(self) -> "Dashboard":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        end = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dashboard exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "api/state", timeout=1.0) as r:
                    if r.status == 200 and len(r.read()) > 2:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"dashboard did not serve {self.url} within {START_TIMEOUT_S:g} s:\n{self.log()}")

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGINT (Ctrl-C) to the dashboard by PID; it stops its cluster. Returns its exit status."""
        status = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                status = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2.0)
        elif self.proc is not None:
            status = self.proc.returncode
        self.block.release()
        self.final_log = self.log()
        shutil.rmtree(self.dir, ignore_errors=True)
        return status


def make_driver(width: int = 1500, height: int = 1200):
    """Headless chromium with a temporary profile of its own (removed by quit_driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="raftkv-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={profile}", f"--window-size={width},{height}", "--no-first-run",
              "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    driver._raftkv_profile = profile
    return driver


def quit_driver(driver) -> None:
    try:
        driver.quit()  # stops chromedriver and its chromium (selenium tracks their PIDs)
    finally:
        shutil.rmtree(getattr(driver, "_raftkv_profile", ""), ignore_errors=True)
