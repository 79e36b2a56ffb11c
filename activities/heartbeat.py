"""Heartbeats for a synchronous activity blocked in a library call."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity


@contextmanager
def keep_alive(every_seconds: float = 5.0) -> Iterator[None]:
    """Heartbeat from a helper thread while the body runs.

    A provider call can take longer than a heartbeat timeout but cannot heartbeat itself; with
    this, a live worker keeps its activity and a killed one is noticed within the heartbeat
    timeout. A hung call is still bounded by the activity's start-to-close timeout.
    """
    context = contextvars.copy_context()  # the activity's context, for the helper thread
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_seconds):
            context.run(activity.heartbeat)

    thread = threading.Thread(target=beat, name="activity-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
