"""The IDLE supervisor's pure rules: how long a watcher waits before reconnecting, and which
advisory lock is a mailbox's."""

from __future__ import annotations

import random

from api.idle_supervisor import backoff_seconds, lock_key


def test_backoff_doubles_from_one_second_up_to_the_ceiling() -> None:
    top = [backoff_seconds(n, 300.0, lambda: 1.0) for n in range(1, 12)]
    assert top == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_backoff_is_jittered_between_half_and_all_of_the_step() -> None:
    draws = random.Random(7)
    waits = [backoff_seconds(5, 300.0, draws.random) for _ in range(200)]
    assert all(8.0 <= wait <= 16.0 for wait in waits)
    # Watchers cut off together come back spread out, not at one instant.
    assert max(waits) - min(waits) > 4.0
    assert backoff_seconds(5, 300.0, lambda: 0.0) == 8.0


def test_lock_keys_are_stable_signed_64_bit_and_distinct() -> None:
    keys = {lock_key(f"mailbox-{n}") for n in range(10_000)}
    assert len(keys) == 10_000
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert lock_key("a") == lock_key("a") != lock_key("b")
