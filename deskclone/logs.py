"""Logging set-up for every entry point (never `print`)."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Temporal's core logs every poll at INFO; keep it readable.
    logging.getLogger("temporalio").setLevel(
        max(logging.WARNING, logging.getLevelName(level.upper()))
    )
