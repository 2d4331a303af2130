"""Drive a real headless Chromium over the DevTools protocol, with the standard library only.

Chromium's ``--remote-debugging-pipe`` reads commands on fd 3 and writes
replies and events on fd 4, each a JSON message ended by a NUL byte: no
websocket, no client package. One page target, attached with ``flatten``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
         "--disable-component-update", "--no-first-run", "--remote-debugging-pipe")


class Browser:
    """One Chromium process and one page in it."""

    def __init__(self, profile: Path, timeout_s: float = 30.0, window: tuple[int, int] = (1280, 900)) -> None:
        assert CHROMIUM is not None
        self.timeout_s = timeout_s
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # in the child: its fd 3 reads our commands, its fd 4 carries its replies
            commands, replies = os.dup(to_chrome_r), os.dup(from_chrome_w)  # off 3 and 4 first
            os.dup2(commands, 3)  # dup2 makes them inheritable
            os.dup2(replies, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--window-size={window[0]},{window[1]}",
                                      f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id, self._buffer, self.events = 0, b"", []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Network.enable", session=True)

    # --- protocol ---------------------------------------------------------------------------------------------
    def send(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    # --- what tests do ----------------------------------------------------------------------------------------
    def headers(self, **headers: str) -> None:
        """Send these HTTP headers with every request of the page (the Basic auth)."""
        self.send("Network.setExtraHTTPHeaders", session=True, headers=headers)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> int:
        """Load ``url`` and wait for it; returns the HTTP status of the document."""
        self.events.clear()
        self.send("Page.navigate", session=True, url=url)
        return self.wait_for_load()

    def click(self, selector: str) -> int:
        """Click the element (a submit button: the form posts, the server redirects) and wait for the new page."""
        self.events.clear()
        self.js(f"document.querySelector({json.dumps(selector)}).click()")
        return self.wait_for_load()

    def wait_for_load(self) -> int:
        """Wait for the next page load (a navigation already started); returns its document's HTTP status."""
        status, deadline = 0, time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == "Network.responseReceived" and event["params"].get("type") == "Document":
                    status = event["params"]["response"]["status"]
                if event.get("method") == "Page.loadEventFired":
                    return status
            self.events.append(self._read())
        raise TimeoutError("page did not load")

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        """A PNG of the page: all of it, or only the window."""
        data = self.send("Page.captureScreenshot", session=True, format="png",
                         captureBeyondViewport=full_page)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)
