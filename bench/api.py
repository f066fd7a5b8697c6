"""API throughput: `truce serve` beside a bare FastAPI app answering the same JSON.

Both run under uvicorn with one worker on 127.0.0.1 and take the same load: ``wrk`` when it
is installed (one thread, so the server keeps the other core), else a Python load generator.
Each load is bounded in time and in requests. The bare app returns, as a dict for FastAPI to
encode, the body Truce answered for the same URL, so the ratio is what Truce's middleware,
authentication, session and query cost on top of the framework.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import Row, Size, Versus, ratio
from bench.fixtures import analyze, fix_sequences, persons

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bench.runner import Context

MAX_REQUESTS = 200_000  # per target and run, on top of the time bound
PATHS = ("/api/v1/persons?limit=50", "/healthz")
WRK_SCRIPT = """
local count = 0
local limit = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "200000")
function response(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
"""


def bare_app() -> FastAPI:
    """A FastAPI app answering each benchmarked path with a fixed JSON body (from a file)."""
    from fastapi import FastAPI

    bodies: dict[str, Any] = json.loads(Path(os.environ["BENCH_BARE_BODIES"]).read_text())
    app = FastAPI()
    persons_body, health_body = bodies["persons"], bodies["healthz"]

    @app.get("/api/v1/persons")
    def list_persons(limit: int = 50) -> dict[str, Any]:
        return persons_body

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return health_body

    return app


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    errors: int
    p99_ms: float
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def start_server(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def load(url: str, headers: dict[str, str], *, seconds: float, connections: int,
         max_requests: int = MAX_REQUESTS) -> Load:
    """Drive ``url`` with wrk when installed, else with the Python generator."""
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds=seconds, connections=connections,
                    max_requests=max_requests)
    return asyncio.run(_python_load(url, headers, seconds=seconds, connections=connections,
                                    max_requests=max_requests))


def _wrk(url: str, headers: dict[str, str], *, seconds: float, connections: int,
         max_requests: int) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "-s", script.name]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    try:
        out = subprocess.run([*argv, url], capture_output=True, text=True, check=True,
                             timeout=seconds + 60,
                             env={**os.environ, "BENCH_MAX_REQUESTS": str(max_requests)}).stdout
    finally:
        os.unlink(script.name)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if not total or not p99:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    unit_s = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    return Load(requests=int(total.group(1)),
                seconds=float(total.group(2)) * unit_s[total.group(3)],
                errors=(int(errors.group(1)) if errors else 0)
                + (sum(int(x) for x in sock.groups()) if sock else 0),
                p99_ms=float(p99.group(1)) * unit_s[p99.group(2)] * 1000, tool="wrk")


async def _python_load(url: str, headers: dict[str, str], *, seconds: float, connections: int,
                       max_requests: int) -> Load:
    """``connections`` workers on one httpx client until the time or request budget ends."""
    import httpx

    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, issued
        while time.perf_counter() < deadline and issued < max_requests:
            issued += 1
            start = time.perf_counter()
            try:
                answer = await client.get(url, headers=headers)
                if answer.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return Load(requests=len(latencies), seconds=elapsed, errors=errors, p99_ms=p99 * 1000,
                tool="python")


def run(size: Size, ctx: Context) -> list[Row]:
    import httpx

    from service.auth.models import Role, Team
    from service.auth.service import create_key
    from service.db import create_db_engine, unit_of_work

    rows: list[Row] = []
    with ctx.database() as url:
        engine = create_db_engine(url)
        with engine.begin() as conn:
            persons(conn, 10_000, accounts=1_000)
            fix_sequences(conn, "person", "account", "crm_record")
            analyze(conn)
        with unit_of_work(engine) as session:
            _, key = create_key(session, name="bench", team=Team("ops"), role=Role("viewer"))
        engine.dispose()
        headers = {"Authorization": f"Bearer {key}"}
        truce_port, bare_port = free_port(), free_port()
        env = {"TRUCE_DATABASE_URL": url}
        serve = [sys.executable, "-c", "from service.cli import main; main()", "serve",
                 "--host", "127.0.0.1", "--port", str(truce_port), "--workers", "1"]
        truce = start_server(serve, env, truce_port)
        try:
            bodies = {"persons": httpx.get(f"http://127.0.0.1:{truce_port}{PATHS[0]}",
                                           headers=headers, timeout=10).json(),
                      "healthz": httpx.get(f"http://127.0.0.1:{truce_port}{PATHS[1]}",
                                           timeout=10).json()}
            truce_loads = [load(f"http://127.0.0.1:{truce_port}{path}", headers,
                                seconds=size.api_seconds, connections=size.api_connections)
                           for path in PATHS]
        finally:
            stop_server(truce)
    body_file = ctx.tmp / "bare-bodies.json"
    body_file.write_text(json.dumps(bodies))
    bare_cmd = [sys.executable, "-m", "uvicorn", "bench.api:bare_app", "--factory",
                "--host", "127.0.0.1", "--port", str(bare_port), "--workers", "1",
                "--log-level", "warning"]
    bare = start_server(bare_cmd, {"BENCH_BARE_BODIES": str(body_file)}, bare_port)
    try:
        bare_loads = [load(f"http://127.0.0.1:{bare_port}{path}", headers,
                           seconds=size.api_seconds, connections=size.api_connections)
                      for path in PATHS]
    finally:
        stop_server(bare)
    for path, mine, base in zip(PATHS, truce_loads, bare_loads, strict=True):
        label = "persons" if "persons" in path else "healthz"
        note = (f"GET {path}, {size.api_connections} connections, {mine.seconds:.0f} s, "
                f"{mine.tool}; errors {mine.errors} (bare {base.errors})")
        rows.append(Row(f"api.{label}.rps", mine.rps, "req/s",
                        Versus("bare FastAPI", base.rps, ratio(mine.rps, base.rps)), note=note))
        rows.append(Row(f"api.{label}.p99", mine.p99_ms, "ms",
                        Versus("bare FastAPI", base.p99_ms, ratio(mine.p99_ms, base.p99_ms)),
                        note=f"{mine.requests:,} requests (bare {base.requests:,})"))
    return rows
