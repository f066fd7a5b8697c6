"""`truce demo` on a fresh directory: sandbox CRMs, a first sync, then the API serves live."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_syncs_the_sandboxes_and_serves_the_api(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUCE_")}
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--port",
                                 str(port), "--people", "300"], cwd=tmp_path, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
            assert proc.poll() is None, log.read_text()
        text = log.read_text()
        key = re.search(r"Admin API key: (\S+)", text).group(1)  # type: ignore[union-attr]
        assert "salesforce: run 1 succeeded" in text and "hubspot: run 2 succeeded" in text
        assert (tmp_path / ".truce" / "truce.db").exists()
        assert httpx.get(f"{base}/docs").status_code == 200
        assert "truce_http_requests_total" in httpx.get(f"{base}/metrics").text
        assert httpx.get(f"{base}/readyz").json()["status"] == "ok"
        auth = {"Authorization": f"Bearer {key}"}
        handoffs = httpx.get(f"{base}/api/v1/handoffs", headers=auth).json()["items"]
        assert handoffs and {"accept", "first_touch"} <= set(handoffs[0]["clocks"])
        placement = httpx.get(f"{base}/api/v1/alignment", headers=auth).json()
        assert placement["survey"]["sales"]["responses"] == 5
        assert "<title>" in httpx.get(f"{base}/").text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
