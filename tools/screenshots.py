"""Write one PNG per dashboard page into a folder, from demo data in a scratch Redis.

    python3 tools/screenshots.py docs/screenshots

Starts its own ``redis-server`` on a free port (nothing else is touched),
seeds it with ``tools/dashboard_demo.py``, serves the dashboard in this
process and has headless Chromium (``tools/cdp.py``) load each page.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tools.cdp import Browser  # noqa: E402
from tools.dashboard_demo import seed  # noqa: E402

from pyq.config import Config  # noqa: E402 - after the path setup above
from pyq.web import make_server, wsgi_app  # noqa: E402

PASSWORD = "screenshots"
#: (file name, path, or None for a page reached by clicking the first link matching the selector on ``path``)
PAGES = [("overview", "/", None), ("queues", "/queues", None), ("queue", "/queues/mail", None),
         ("busy", "/busy", None), ("retries", "/retries", None), ("scheduled", "/scheduled", None),
         ("dead", "/dead", None), ("job", "/retries", "#retry-table a[href*='/job?']"), ("cron", "/cron", None),
         ("processes", "/processes", None), ("batches", "/batches", None),
         ("batch", "/batches", "#batches-table a"), ("limits", "/limits", None),
         ("progress", "/progress", None)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args().folder
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
                                    "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                r.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        seed(r)
        http = make_server(wsgi_app(Config(redis_url=f"redis://127.0.0.1:{port}"), password=PASSWORD), "127.0.0.1", 0)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{http.server_address[1]}"
        with tempfile.TemporaryDirectory() as profile:
            browser = Browser(Path(profile), window=(1100, 720))
            try:
                browser.headers(Authorization="Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode())
                for name, path, follow in PAGES:
                    browser.goto(base + path)
                    if follow:
                        browser.click(follow)
                    browser.screenshot(folder / f"{name}.png", full_page=False)
                    print(folder / f"{name}.png")
            finally:
                browser.close()
        http.shutdown()
    finally:
        server_proc.kill()
        server_proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
