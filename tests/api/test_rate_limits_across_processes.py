"""Two `deskclone api` processes on one PostgreSQL database share every rate limit: a client
cannot double its allowance by landing on the other replica."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from tests.api.served import api_env, running_api


def lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def status_of(
    method: str, url: str, client: str, body: bytes | None = None
) -> tuple[int, dict[str, str], str]:
    # Both replicas behind one proxy, as in production: the client's address is in
    # X-Forwarded-For (trusted from 127.0.0.1), one of its own so no other test shares it.
    headers = {"Content-Type": "application/json", "X-Forwarded-For": client}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, lower(response.headers.items()), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, lower(error.headers.items()), error.read().decode()


def six_hits(
    a: str, b: str, method: str, path: str, client: str
) -> list[tuple[int, dict[str, str], str]]:
    """Three hits on A, three on B, alternating, from the same client address."""
    body = b"{}" if method == "POST" else None
    return [status_of(method, f"{url}{path}", client, body) for url in (a, b, a, b, a, b)]


def check(hits: list[tuple[int, dict[str, str], str]], allowed: int) -> None:
    assert [status for status, _, _ in hits[:5]] == [allowed] * 5, hits
    status, headers, text = hits[5]
    assert status == 429, hits
    assert json.loads(text)["error"]["code"] == "rate_limited"
    assert 1 <= int(headers["retry-after"]) <= 120


def address() -> str:
    return "2001:db8::" + ":".join(secrets.token_hex(2) for _ in range(3))


def two_replicas_share_limits(env: dict[str, str], logs: Path) -> None:
    with (
        running_api(env, logs / "api-a.log") as a,
        running_api(env, logs / "api-b.log") as b,
    ):
        public = f"/api/v1/public/no-such-key-{uuid.uuid4().hex}"
        # The form limit is per address (counted before the key is looked up: 404s).
        check(six_hits(a, b, "POST", f"{public}-1/form", address()), 404)
        # The escalation limit, per address too.
        check(six_hits(a, b, "POST", f"{public}-2/escalations", address()), 404)
        # The per-key limit: a new address for each hit, so only the key counts.
        hits = [
            status_of("GET", f"{url}{public}-3/form/{'0' * 32}", address())
            for url in (a, b, a, b, a, b)
        ]
        check(hits, 404)


async def test_two_api_processes_share_the_rate_limits(
    dev_server_env: WorkflowEnvironment,
    postgres_database: str,
    postgres_engine: Engine,  # migrated
    tmp_path: Path,
) -> None:
    env = api_env(
        dev_server_env,
        tmp_path,
        DESKCLONE_DATABASE_URL=postgres_database,
        DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE="5",
        DESKCLONE_ESCALATION_RATE_LIMIT_PER_MINUTE="5",
        DESKCLONE_PUBLIC_KEY_RATE_LIMIT_PER_MINUTE="5",
    )
    await asyncio.to_thread(two_replicas_share_limits, env, tmp_path)
