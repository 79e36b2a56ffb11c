"""Operations tests reuse the API's fixtures: the real app on PostgreSQL, a real Temporal dev
server and an in-process worker (tests/api/conftest.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import api, api_worker, emulator

__all__ = ["REPO", "api", "api_worker", "emulator", "restore_logging"]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """For tests that run `configure_logging`: the logging set-up is put back afterwards."""
    names = ["", "temporalio", "uvicorn.access"]
    saved = [
        (
            logging.getLogger(n),
            logging.getLogger(n).level,
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).filters[:],
        )
        for n in names
    ]
    yield
    for logger, level, handlers, filters in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.filters[:] = filters
