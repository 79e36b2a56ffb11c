"""Templates for the pages: our own Jinja2 environment (autoescaping on) with a few filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from api import schemas

TEMPLATES = Path(__file__).parent.parent / "templates"


def as_utc(value: datetime) -> datetime:
    """For display: every datetime from the store and the workflows is timezone-aware."""
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str:
    return "" if value is None else schemas.iso(value)


def when(value: datetime | None) -> str:
    """`25 Nov 2026, 10:00 UTC`: unambiguous without JavaScript (which shows local time)."""
    if value is None:
        return ""
    return as_utc(value).strftime("%-d %b %Y, %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - as_utc(value)).total_seconds())
    if seconds < 45:
        return "just now"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = round(minutes / 60)
    if hours < 24:
        return f"{hours} h ago"
    days = round(hours / 24)
    return f"{days} day{'s' if days != 1 else ''} ago"


def size(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return "size unknown"
    if value < 1024:
        return f"{value} bytes"
    amount, unit = value / 1024, "KB"
    for bigger in ("MB", "GB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{amount:.1f} {unit}" if amount < 10 else f"{amount:.0f} {unit}"


def duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(iso=iso, when=when, ago=ago, size=size, duration=duration)


def render_html(template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("section", "")
    html = _ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code)
