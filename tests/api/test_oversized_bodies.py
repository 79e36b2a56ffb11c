"""A body over the cap gets its 413 over a real socket, every time, whatever the client.

The API is `deskclone api` (uvicorn) as run in production. Before the body was drained,
closing the connection with the body unread made the kernel reset it, and urllib, which
sends the whole body before reading, saw "connection reset" or "broken pipe" about once in
30 to 100 tries instead of the 413.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine
from starlette.types import Message, Receive, Scope, Send
from temporalio.testing import WorkflowEnvironment

from api.limits import DRAIN_BYTES, BodySizeLimit
from tests.api.served import api_env, running_api
from tests.conftest import make_agent

TWO_MIB_FORM = urllib.parse.urlencode(
    {"name": "Sam", "email": "sam@example.com", "message": "x" * (2 * 1024 * 1024)}
).encode()


def post_with_urllib(url: str) -> str:
    request = urllib.request.Request(url, data=TWO_MIB_FORM, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        with error:
            code = json.loads(error.read())["error"]["code"]
            return f"{error.code} {code}"
    except OSError as error:  # what a reset looks like: URLError, ConnectionResetError
        return f"{type(error).__name__}: {error}"


def post_chunked(url: str, client: str) -> str:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)

    def chunks() -> Iterator[bytes]:
        for _ in range(32):  # 2 MiB with no Content-Length: the cap is found while reading
            yield b"x" * 65536

    try:
        connection.request(
            "POST",
            parts.path,
            body=chunks(),
            # Behind a proxy (trusted from 127.0.0.1): the form's rate limit counts this
            # address, one of this test's own.
            headers={"Content-Type": "application/json", "X-Forwarded-For": client},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return f"{response.status} {json.loads(response.read())['error']['code']}"
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def send_oversized(env: dict[str, str], log: Path, public_key: str) -> list[Counter[str]]:
    with running_api(env, log) as url:
        form = Counter(post_with_urllib(f"{url}/forms/{public_key}") for _ in range(50))
        public = f"{url}/api/v1/public/{public_key}/form"
        chunked = Counter(post_chunked(public, f"2001:db8::{i}") for i in range(10))
        # An answer given before the body is read at all (no such form) is drained too.
        unknown = Counter(
            post_chunked(f"{url}/api/v1/public/no-such-key/form", f"2001:db8::{i}")
            for i in range(10, 20)
        )
    return [form, chunked, unknown]


async def test_fifty_oversized_forms_all_get_the_413(
    dev_server_env: WorkflowEnvironment,
    postgres_database: str,
    postgres_engine: Engine,  # migrated
    tmp_path: Path,
) -> None:
    env = api_env(dev_server_env, tmp_path, DESKCLONE_DATABASE_URL=postgres_database)
    agent, _ = make_agent(postgres_engine)
    form, chunked, unknown = await asyncio.to_thread(
        send_oversized, env, tmp_path / "api.log", agent.public_key
    )
    assert form == Counter({"413 payload_too_large": 50})
    assert chunked == Counter({"413 payload_too_large": 10})
    assert unknown == Counter({"404 unknown_public_key": 10})


async def run_limited(headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, int]:
    """The 413 of a body cap of 1 KiB in front of an app that never reads, for a client
    that would send `chunks` of 64 KiB: (status, bytes the middleware read)."""
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 65536
        return {"type": "http.request", "body": b"x" * 65536, "more_body": read < chunks * 65536}

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise AssertionError("the app is never called for a body declared too large")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await BodySizeLimit(app, max_bytes=1024)(scope, receive, send)
    return sent[0]["status"], read


async def test_draining_stops_at_its_bound_and_skips_a_body_never_sent() -> None:
    declared = [(b"content-length", str(1 << 30).encode())]
    assert await run_limited(declared, chunks=4) == (413, 4 * 65536)  # read to the end
    # A client sending without end is read only up to the bound, then answered.
    assert await run_limited(declared, chunks=10_000) == (413, DRAIN_BYTES)
    # Told nothing yet, an `Expect: 100-continue` client has sent no body: nothing is read.
    waiting = [*declared, (b"expect", b"100-continue")]
    assert await run_limited(waiting, chunks=4) == (413, 0)
