"""Scale-out rehearsal: two `truce serve` and two `truce worker` processes on one PostgreSQL.

Both sandbox CRMs run in this process in live mode (new leads, decisions and touches every
second) while two API processes answer reads and two workers sync every 5 s, scan SLA clocks
and deliver the outbox to a small receiver here. After a bounded run everything is stopped
(SIGTERM, SIGKILL only after a grace period) and the database is held to three promises:

(a) no source was synced by two workers at once (the runs that did work never overlap; the
    skipped ones show the lock turning the other worker away);
(b) no breach was announced twice: outbox keys are unique and the receiver saw every event
    id once;
(c) no record was lost: after the producer stops and one last `truce sync`, the database
    holds every live person, Salesforce lead and HubSpot contact of the sandbox world.

``TRUCE_REHEARSAL_SECONDS`` sets the length of the run (default 45).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from connectors.sandbox.generator import REFERENCE_DEFINITION, generate_world
from connectors.sandbox.run import Sandboxes, start_sandboxes
from connectors.sandbox.world import World
from service.db import unit_of_work
from service.definitions.models import LeadDefinition
from service.demo import seed_agreement
from service.handoffs.models import OutboxEvent
from service.people.repository import live_person_count
from service.settings import Settings
from service.sync.models import CrmRow, Quarantined, SyncRun
from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.slow

RUN_SECONDS = float(os.environ.get("TRUCE_REHEARSAL_SECONDS", "45"))
GRACE_SECONDS = 30.0
PEOPLE = 400
WORKED = ("succeeded", "partial", "failed")
REPO = Path(__file__).resolve().parents[2]


class Receiver:
    """The breach webhook's far end: records the X-Truce-Event-Id of every POST."""

    def __init__(self) -> None:
        self.event_ids: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.event_ids.append(self.headers.get("X-Truce-Event-Id") or "")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/truce-events"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.proc.returncode}) ---\n" + "\n".join(text[-lines:])


@dataclass
class Fleet:
    """The child processes, each logging to its own file."""

    env: dict[str, str]
    workdir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Child:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args], env=self.env,
                                    cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    def stop(self) -> None:
        """SIGTERM to all at once; SIGKILL to whoever is still running after the grace."""
        for child in self.children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in self.children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.killed = True
                child.proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(c.tail() for c in self.children)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, child: Child, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            pytest.fail(f"{child.name} exited during start-up\n{child.tail()}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{child.name} did not become healthy in {timeout:.0f}s\n{child.tail()}")


@pytest.fixture()
def boxes(database_url: str) -> Iterator[Sandboxes]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the scale-out rehearsal runs on PostgreSQL only (advisory locks, "
                    "SKIP LOCKED): set TRUCE_TEST_DATABASE_URL")
    sandboxes = start_sandboxes(world=generate_world(seed=21, people=PEOPLE))
    yield sandboxes
    sandboxes.stop()


def _seed(engine: Engine, settings: Settings, boxes: Sandboxes) -> None:
    """The agreement, as if it had held all year: clocks that fell due in the history
    are announced too, so both workers race to announce and deliver from the first scan."""
    seed_agreement(engine, settings, REFERENCE_DEFINITION)
    with unit_of_work(engine) as session:
        definition = session.exec(select(LeadDefinition)).one()
        definition.activated_at = boxes.world.truth["anchor"] - timedelta(days=400)
        session.add(definition)


def _stop_producer(boxes: Sandboxes) -> None:
    boxes._stop.set()  # the live thread's stop flag; the CRM servers keep answering
    if boxes._live is not None:
        boxes._live.join(timeout=30)
        assert not boxes._live.is_alive(), "the live producer did not stop"


def _explain(session: Session, world: World, keys: list[str]) -> str:
    """What the database and the world hold for CRM rows that should have arrived."""
    lines = [f"{len(keys)}+ live CRM rows are not in the database:"]
    for key in keys:
        source, obj, rid = key.split(":", 2)
        row = session.exec(select(CrmRow).where(CrmRow.key == key)).first()
        quarantined = session.exec(select(Quarantined).where(Quarantined.key == key)).first()
        rec = (world.salesforce if source == "salesforce" else world.hubspot).table(obj)[rid]
        stamps = {k: v for k, v in rec.items() if k in (
            "CreatedDate", "SystemModstamp", "createdAt", "updatedAt", "archived")}
        lines.append(f"  {key}: row={row and (row.deleted, row.merged_into, row.modstamp)} "
                     f"quarantined={quarantined and quarantined.reason} world={stamps} "
                     f"props={rec.get('properties')}")
    return "\n".join(lines)


def test_two_apis_and_two_workers_on_one_database(
    engine: Engine, settings: Settings, database_url: str, boxes: Sandboxes, tmp_path: Path
) -> None:
    started = time.monotonic()
    _seed(engine, settings, boxes)
    world = boxes.world

    with Receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUCE_")}
        env.update(boxes.settings_env())
        env.update({
            "TRUCE_DATABASE_URL": database_url,
            "TRUCE_ADMIN_API_KEY": ADMIN_KEY,
            "TRUCE_SYNC_INTERVAL_SECONDS": "5",
            "TRUCE_SLA_SCAN_INTERVAL_SECONDS": "5",
            "TRUCE_BREACH_WEBHOOK_URL": receiver.url,
            "TRUCE_BREACH_WEBHOOK_SECRET": "rehearsal-webhook-secret",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        })
        fleet = Fleet(env, tmp_path)
        try:
            apis = []
            for n in (1, 2):
                port = _free_port()
                apis.append((f"http://127.0.0.1:{port}",
                             fleet.start(f"serve-{n}", "serve", "--port", str(port))))
            boxes.start_live(every_seconds=1)
            workers = [fleet.start(f"worker-{n}", "worker") for n in (1, 2)]
            for base, child in apis:
                _wait_healthy(base, child)

            answers: Counter[tuple[str, int]] = Counter()
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            deadline = time.monotonic() + RUN_SECONDS
            while time.monotonic() < deadline:
                assert not fleet.dead(), f"a process died during the run\n{fleet.logs()}"
                for base, child in apis:
                    for path in ("/api/v1/handoffs?limit=100", "/api/v1/syncs?limit=100"):
                        answer = requests.get(base + path, headers=headers, timeout=10)
                        answers[(child.name, answer.status_code)] += 1
                        assert answer.status_code == 200, (path, answer.text[:300])
                time.sleep(0.5)
        finally:
            fleet.stop()
        ran_for = time.monotonic() - started
        received = list(receiver.event_ids)  # the workers are gone: nothing more will come
        killed = [c.name for c in fleet.children if c.killed]
        assert not killed, f"did not stop within {GRACE_SECONDS:.0f}s of SIGTERM: {killed}\n" \
                           f"{fleet.logs()}"
        for child in workers:
            assert child.proc.returncode == 0, fleet.logs()

        _stop_producer(boxes)
        final = subprocess.run([sys.executable, "-m", "service.cli", "sync"], env=env,
                               cwd=tmp_path, capture_output=True, timeout=180)
        assert final.returncode == 0, final.stderr.decode(errors="replace")[-3000:]

    with unit_of_work(engine) as session:
        runs = list(session.exec(select(SyncRun).order_by(col(SyncRun.started_at))))
        # (a) one sync per source at a time
        by_source: dict[str, list[SyncRun]] = defaultdict(list)
        for run in runs:
            assert run.status not in ("queued", "running"), f"run {run.id} left {run.status}"
            if run.status in WORKED:
                assert run.started_at is not None and run.finished_at is not None
                by_source[run.source].append(run)
        for source, worked in by_source.items():
            for before, after in zip(worked, worked[1:], strict=False):
                assert after.started_at >= before.finished_at, (  # type: ignore[operator]
                    f"{source}: run {after.id} started at {after.started_at} while run "
                    f"{before.id} ran until {before.finished_at}")
        statuses = Counter((r.source, r.status) for r in runs)
        for source in ("salesforce", "hubspot"):
            assert statuses[(source, "succeeded")] >= 3, statuses
        assert sum(n for (_, status), n in statuses.items() if status == "skipped") >= 1, (
            f"no run was ever turned away by the lock: {statuses}")
        assert not statuses[("salesforce", "failed")] + statuses[("hubspot", "failed")], (
            [r.error for r in runs if r.status == "failed"])

        # (b) each announcement once, delivered once
        keys = session.exec(select(OutboxEvent.dedupe_key, func.count())
                            .group_by(OutboxEvent.dedupe_key)
                            .having(func.count() > 1)).all()
        assert not keys, f"announced twice: {keys}"
        events = list(session.exec(select(OutboxEvent)))
        delivered = {str(e.id) for e in events if e.delivered_at is not None}
        assert events, "nothing was announced: the rehearsal proves nothing about (b)"
        twice = {i: n for i, n in Counter(received).items() if n > 1}
        assert not twice, f"the receiver got these event ids more than once: {twice}"
        assert delivered <= set(received), sorted(delivered - set(received))[:20]

        # (c) nothing lost
        with world.lock:
            truth_persons = world.truth["persons"]
            malformed = {(src, obj, rid) for src, obj, rid, _ in world.truth["malformed"]}
            leads = {r["Id"] for r in world.salesforce.table("Lead").values()
                     if not r["IsDeleted"] and ("salesforce", "Lead", r["Id"]) not in malformed}
            contacts = {r["id"] for r in world.hubspot.table("contacts").values()
                        if not r["archived"]
                        and ("hubspot", "contacts", r["id"]) not in malformed}
        stored = set(session.exec(select(CrmRow.key).where(col(CrmRow.deleted).is_(False))))
        missing = ({f"salesforce:Lead:{i}" for i in leads}
                   | {f"hubspot:contacts:{i}" for i in contacts}) - stored
        assert not missing, _explain(session, world, sorted(missing)[:10])
        assert live_person_count(session) == truth_persons

    print(f"\nrehearsal: {ran_for:.0f}s with the fleet; runs {dict(statuses)}; "
          f"{len(events)} announcements, {len(received)} deliveries; API answers "
          f"{sum(answers.values())}; {truth_persons} persons")
