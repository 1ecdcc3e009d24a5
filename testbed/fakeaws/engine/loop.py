"""The event loop the engine and its data-plane workers run on (setting `loop`)."""

from __future__ import annotations

import asyncio
import logging

from testbed.fakeaws.settings import FakeAwsSettings

log = logging.getLogger(__name__)


def install_loop(settings: FakeAwsSettings) -> None:
    if settings.loop in ("auto", "uvloop"):
        try:
            import uvloop  # ~10% less CPU per proxied request in an A/B run (make bench)
        except ImportError:
            if settings.loop == "uvloop":
                raise
        else:
            uvloop.install()
    log.info("event loop policy=%s", type(asyncio.get_event_loop_policy()).__module__)
