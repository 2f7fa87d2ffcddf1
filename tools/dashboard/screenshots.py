#!/usr/bin/python3
"""Take the README's screenshots of the dashboard with headless chromium.

    /usr/bin/python3 tools/dashboard/screenshots.py [OUT_DIR]     (default docs/)

Starts a dashboard with its own cluster on free ports, runs a little load,
writes OUT_DIR/dashboard.png (healthy cluster), then splits the cluster
n1,n2 | n3,n4,n5 and writes OUT_DIR/dashboard-partition.png, and stops
everything it started. Needs chromium, chromium-driver, python3-selenium.
"""

import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "dashboard"))

from browser import Dashboard, make_driver, missing_browser, quit_driver  # noqa: E402
from conftest import api, wait_until  # noqa: E402


def shoot(driver, path: str) -> None:
    if not driver.save_screenshot(path):
        raise RuntimeError(f"chromium could not write {path}")


def main() -> int:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "docs"))
    why = missing_browser()
    if why:
        print(f"screenshots: {why}", file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    d = Dashboard().start()
    driver = None
    try:
        driver = make_driver(1400, 1060)
        driver.get(d.url)
        wait_until(lambda: api(d, "/api/state")[1]["leader"], 10.0, "a leader")
        api(d, "/api/op", {"op": "set", "key": "x", "value": "1", "node": "n1"})
        api(d, "/api/load", {"action": "start", "clients": 4})
        time.sleep(4.0)
        shoot(driver, os.path.join(out, "dashboard.png"))
        api(d, "/api/net", {"action": "split", "side": ["n1", "n2"]})
        time.sleep(3.0)
        shoot(driver, os.path.join(out, "dashboard-partition.png"))
        api(d, "/api/load", {"action": "stop"})
    finally:
        if driver is not None:
            quit_driver(driver)
        d.stop()
    print(f"wrote {out}/dashboard.png and {out}/dashboard-partition.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
