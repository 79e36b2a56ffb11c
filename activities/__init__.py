"""Thin I/O shells called by the workflows. `build_activities` is the worker's only list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from activities.intake import IntakeActivities


def build_activities(engine: Engine) -> list[Callable[..., Any]]:
    intake = IntakeActivities(engine)
    return [intake.create_ticket]
