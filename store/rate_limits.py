"""Rate-limit counters in PostgreSQL, so that every API process counts against one limit.

A sliding-window counter: hits are counted per fixed window (one row per scope, key and
window), and a hit is allowed while this window's count, plus the previous window's weighted
by the share of it still inside the sliding window, stays within the limit. Deciding and
counting is one statement, atomic under concurrent hits from any number of processes
(`INSERT ... ON CONFLICT DO UPDATE ... WHERE` re-checks against the row as last committed):
two processes never both take the last place. A refused hit is not counted, as with the
in-memory limiter. Rows older than the previous window are useless and deleted in bulk.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text

#: Longer keys (a public key is whatever the URL says) are stored as their SHA-256.
MAX_KEY_LENGTH = 128

_HIT = text(
    """
    WITH previous AS (
        SELECT COALESCE(
            (SELECT hits FROM rate_limits
             WHERE scope = :scope AND key = :key AND window_start = :previous_start),
            0
        ) * CAST(:weight AS DOUBLE PRECISION) AS carried
    )
    INSERT INTO rate_limits AS counted (scope, key, window_start, hits)
    SELECT :scope, :key, :window_start, 1 FROM previous WHERE previous.carried + 1 <= :limit
    ON CONFLICT (scope, key, window_start) DO UPDATE SET hits = counted.hits + 1
        WHERE counted.hits + 1 + (SELECT carried FROM previous) <= :limit
    RETURNING hits
    """
)

_COUNTS = text(
    "SELECT window_start, hits FROM rate_limits "
    "WHERE scope = :scope AND key = :key AND window_start IN (:previous_start, :window_start)"
)

_FORGET = text("DELETE FROM rate_limits WHERE scope = :scope AND window_start < :cutoff")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    #: Seconds until one more hit would be allowed (0 when this one was).
    retry_after: float = 0.0


def stored_key(key: str) -> str:
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def window_start(now: float, window_seconds: int) -> int:
    """The start, in Unix seconds, of the fixed window that `now` falls in."""
    return math.floor(now / window_seconds) * window_seconds


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def hit(
    engine: Engine, scope: str, key: str, limit: int, window_seconds: int, now: float
) -> Verdict:
    """Count one hit for `key` if it is within `limit` per `window_seconds`, in one statement."""
    start = window_start(now, window_seconds)
    elapsed = now - start
    params = {
        "scope": scope,
        "key": stored_key(key),
        "window_start": _at(start),
        "previous_start": _at(start - window_seconds),
        "weight": 1 - elapsed / window_seconds,
        "limit": limit,
    }
    with engine.begin() as connection:
        if connection.execute(_HIT, params).first() is not None:
            return Verdict(True)
        # Refused: read the two counts only to say when to come back.
        counts = {row[0]: row[1] for row in connection.execute(_COUNTS, params)}
    previous = counts.get(params["previous_start"], 0)
    current = counts.get(params["window_start"], 0)
    return Verdict(False, retry_after(previous, current, elapsed, window_seconds, limit))


def retry_after(previous: int, current: int, elapsed: float, window: float, limit: int) -> float:
    """Seconds from now (`elapsed` into the current window) until one more hit fits, if no
    other hit is counted meanwhile."""
    room = limit - 1 - current  # what the previous window may still carry for one more hit
    if room >= 0 and previous > 0:
        # The previous window's weight falls linearly to 0 across the current window.
        fits_at = window * (1 - room / previous)
        if fits_at < window:
            return max(0.0, fits_at - elapsed)
    # Not before the next window, in which the current one is carried over in its turn.
    later = window * (1 - (limit - 1) / current) if current > limit - 1 else 0.0
    return window - elapsed + later


def forget_old(engine: Engine, scope: str, window_seconds: int, now: float) -> int:
    """Delete the windows of `scope` before the previous one; how many rows went."""
    cutoff = _at(window_start(now, window_seconds) - window_seconds)
    with engine.begin() as connection:
        return connection.execute(_FORGET, {"scope": scope, "cutoff": cutoff}).rowcount
