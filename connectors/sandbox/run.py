"""Start both sandbox CRMs on a generated company, optionally producing new activity live."""

from __future__ import annotations

import gc
import random
import threading
from dataclasses import dataclass, field

from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate_world
from connectors.sandbox.server import RunningServer
from connectors.sandbox.world import World

WEBHOOK_SECRET = "sandbox-webhook-secret"


@dataclass
class Sandboxes:
    world: World
    faults: Faults
    salesforce: RunningServer
    hubspot: RunningServer
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _live: threading.Thread | None = field(default=None, repr=False)

    def settings_env(self) -> dict[str, str]:
        """The settings that point Truce at these sandboxes, as environment variables."""
        return {
            "TRUCE_SALESFORCE_INSTANCE_URL": self.salesforce.url,
            "TRUCE_SALESFORCE_ACCESS_TOKEN": self.salesforce.access_token,
            "TRUCE_SALESFORCE_CA_BUNDLE": self.salesforce.ca_path or "",
            "TRUCE_HUBSPOT_BASE_URL": self.hubspot.url,
            "TRUCE_HUBSPOT_ACCESS_TOKEN": self.hubspot.access_token,
            "TRUCE_HUBSPOT_CLIENT_SECRET": WEBHOOK_SECRET,
        }

    def start_live(self, *, every_seconds: float = 10.0, seed: int = 1) -> None:
        """New leads, decisions and touches on a clock, so a running demo keeps moving."""
        from connectors.sandbox.live import live_step

        rng = random.Random(seed)

        def loop() -> None:
            while not self._stop.wait(every_seconds):
                live_step(self.world, rng, at=self.world.clock())

        self._live = threading.Thread(target=loop, name="sandbox-live", daemon=True)
        self._live.start()

    def stop(self) -> None:
        self._stop.set()
        self.salesforce.stop()
        self.hubspot.stop()


def start_sandboxes(*, seed: int = 7, people: int = 3000, salesforce_port: int = 0,
                    hubspot_port: int = 0, faults: Faults | None = None,
                    world: World | None = None) -> Sandboxes:
    from connectors.sandbox.hubspot_app import start_hubspot
    from connectors.sandbox.salesforce_app import start_salesforce

    world = world or generate_world(seed=seed, people=people)
    if world.salesforce.store.path != ":memory:":
        # A large world keeps millions of long-lived objects (accounts, associations); each
        # page served unpickles thousands of new ones, and the collector would walk the old
        # ones again and again (a 6x slower page). Set them aside once, in the serving process.
        gc.collect()
        gc.freeze()
    faults = faults or Faults()
    sf = start_salesforce(world, faults, port=salesforce_port)
    hs = start_hubspot(world, faults, port=hubspot_port)
    return Sandboxes(world=world, faults=faults, salesforce=sf, hubspot=hs)

