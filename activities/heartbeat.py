"""Heartbeats for a synchronous activity blocked in a library call."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity

log = logging.getLogger("deskclone.activities")


def heartbeat() -> None:
    """`activity.heartbeat`, or nothing in a local activity (which cannot heartbeat: the SDK
    keeps its workflow task alive instead)."""
    if not activity.info().is_local:
        activity.heartbeat()


@contextmanager
def keep_alive(every_seconds: float = 5.0) -> Iterator[None]:
    """Heartbeat from a helper thread while the body runs.

    A provider call can take longer than a heartbeat timeout but cannot heartbeat itself; with
    this, a live worker keeps its activity and a killed one is noticed within the heartbeat
    timeout. A hung call is still bounded by the activity's start-to-close timeout.
    """
    if activity.info().is_local:
        # A local activity cannot heartbeat: the workflow task it runs in is kept alive by
        # the SDK instead, and a killed worker is noticed when that task times out.
        yield
        return
    context = contextvars.copy_context()  # the activity's context, for the helper thread
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_seconds):
            try:
                context.run(activity.heartbeat)
            except Exception:  # the worker's event loop did not take it in time: next beat
                log.debug("an activity heartbeat was not sent", exc_info=True)

    thread = threading.Thread(target=beat, name="activity-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
