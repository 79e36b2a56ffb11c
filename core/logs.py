"""Logging set-up for every entry point (never `print`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from core.json_logs import JsonFormatter, redact


def configure_logging(
    level: str = "INFO", log_format: str = "text", secrets: Iterable[str] = ()
) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # --- JSON logs and redaction (docs/operations.md) ---
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter(secrets))
    # uvicorn's access log keeps its own handler; an OAuth callback's code must not reach it.
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactArgs) for f in access.filters):
        access.addFilter(_RedactArgs())
    # Temporal's core logs every poll at INFO; keep it readable.
    logging.getLogger("temporalio").setLevel(
        max(logging.WARNING, logging.getLevelName(level.upper()))
    )


class _RedactArgs(logging.Filter):
    """Blanks secrets (an OAuth `code=`, a bearer token) in a record's arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True
