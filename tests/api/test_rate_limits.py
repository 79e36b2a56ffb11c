"""The rate limiters: counted in PostgreSQL (one atomic statement per hit, shared by every
process), in memory on SQLite; the same 429 either way."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from api.errors import ApiError
from api.limits import RateLimiter, SharedRateLimiter, limiter_for
from store import rate_limits

WINDOW_START = 1_800_000_000  # a whole minute, in Unix seconds


class Clock:
    def __init__(self, at: float) -> None:
        self.now = at

    def __call__(self) -> float:
        return self.now


def shared(engine: Engine, limit: int, clock: Clock, scope: str | None = None) -> SharedRateLimiter:
    return SharedRateLimiter(engine, scope or f"t-{uuid.uuid4().hex[:8]}", limit, clock=clock)


async def refused(limiter: SharedRateLimiter | RateLimiter, key: str) -> ApiError:
    with pytest.raises(ApiError) as raised:
        await limiter.hit(key)
    return raised.value


async def test_the_limit_is_shared_by_two_limiters_as_by_two_processes(
    postgres_engine: Engine,
) -> None:
    clock = Clock(WINDOW_START + 10)
    a = shared(postgres_engine, 5, clock, scope="form-shared")
    b = shared(postgres_engine, 5, clock, scope="form-shared")
    for limiter in (a, b, a, b, a):
        await limiter.hit("198.51.100.1")
    error = await refused(b, "198.51.100.1")
    assert (error.status, error.code) == (429, "rate_limited")
    # Five hits at 10 s into the window: the sliding window lets one more in once the
    # carried-over share of them is down to four, 12 s into the next window.
    assert error.headers == {"Retry-After": "62"}
    assert error.message == "Too many submissions from this address; try again in 62 seconds."
    await a.hit("198.51.100.2")  # another address has its own count


async def test_refused_hits_are_not_counted_and_the_window_slides(postgres_engine: Engine) -> None:
    clock = Clock(WINDOW_START + 30)
    limiter = shared(postgres_engine, 2, clock)
    await limiter.hit("k")
    await limiter.hit("k")
    for _ in range(5):
        assert (await refused(limiter, "k")).headers["Retry-After"] == "60"
    clock.now = WINDOW_START + 60 + 29  # the two hits still weigh more than one
    assert (await refused(limiter, "k")).headers["Retry-After"] == "1"
    clock.now = WINDOW_START + 60 + 30  # half of two: room for exactly one more
    await limiter.hit("k")
    assert (await refused(limiter, "k")).headers["Retry-After"] == "30"
    clock.now = WINDOW_START + 120 + 30  # only the one hit of the last window, halved
    await limiter.hit("k")


async def test_concurrent_hits_never_pass_the_limit(postgres_engine: Engine) -> None:
    scope = f"t-{uuid.uuid4().hex[:8]}"
    clock = Clock(WINDOW_START + 5)

    def one_process_hit(_: int) -> bool:
        # Each call as its own process would: its own limiter, straight to the database.
        limiter = shared(postgres_engine, 7, clock, scope=scope)
        return limiter._hit("203.0.113.50", clock.now).allowed

    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(one_process_hit, range(40)))
    assert sum(allowed) == 7


async def test_long_keys_are_stored_hashed_and_old_windows_forgotten(
    postgres_engine: Engine,
) -> None:
    scope = f"t-{uuid.uuid4().hex[:8]}"
    clock = Clock(WINDOW_START + 1)
    limiter = shared(postgres_engine, 1, clock, scope=scope)
    long_key = "key:" + "x" * 5000  # a public key is whatever the URL says
    await limiter.hit(long_key)
    await refused(limiter, long_key)
    await limiter.hit("short")

    def rows() -> list[tuple[str, datetime]]:
        with postgres_engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT key, window_start FROM rate_limits WHERE scope = :s ORDER BY key"),
                {"s": scope},
            )
            return [(row[0], row[1]) for row in found]

    first = datetime.fromtimestamp(WINDOW_START, UTC)
    assert rows() == [(rate_limits.stored_key(long_key), first), ("short", first)]
    assert rate_limits.stored_key(long_key).startswith("sha256:")
    clock.now = WINDOW_START + 61  # the first window is now the previous one: kept
    await limiter.hit("later")
    assert len(rows()) == 3
    clock.now = WINDOW_START + 121  # the first window is two back: deleted on the next hit
    await limiter.hit("latest")
    assert [key for key, _ in rows()] == ["later", "latest"]


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (0, 3, 10.0, 70.0),  # all in this window: wait for the next, then a third of it
        (3, 0, 0.0, 20.0),  # all in the last window: its weight must fall to two thirds
        (6, 0, 30.0, 10.0),  # 6 x (1 - t/60) <= 2 from t = 40 s
        (2, 2, 15.0, 45.0),  # no room before the next window; then 2 x 1 <= 2 at once
        (1, 3, 59.0, 21.0),  # full: 1 s to the next window, then 3 x (1 - s/60) <= 2
    ],
)
def test_retry_after(previous: int, current: int, elapsed: float, expected: float) -> None:
    assert rate_limits.retry_after(previous, current, elapsed, 60, 3) == pytest.approx(expected)


def test_sqlite_counts_in_memory_and_postgresql_in_the_database(
    sqlite_engine: Engine, postgres_engine: Engine
) -> None:
    assert isinstance(limiter_for(sqlite_engine, "form", 3), RateLimiter)
    assert isinstance(limiter_for(postgres_engine, "form", 3), SharedRateLimiter)


async def test_the_memory_limiter_answers_the_same_429() -> None:
    clock = Clock(100.0)
    limiter = RateLimiter(1, clock=clock)
    await limiter.hit("k")
    error = await refused(limiter, "k")
    assert (error.status, error.code, error.headers) == (429, "rate_limited", {"Retry-After": "60"})
