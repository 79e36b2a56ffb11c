"""One webhook attempt against real local servers that misbehave: a redirect is not followed,
an endless answer is read only so far, a silent server is given up on, and a name that
resolves to a loopback address is refused before any byte is sent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from activities.webhook_sender import Sender, VettedBackend
from api.webhook_service import new_secret
from bench.receiver import running_receiver
from domain import webhooks as rules

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> AsyncIterator[str]:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, OSError):
            pass  # the client hung up, as it should
        finally:
            writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hook"


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    running = Sender(allow_private=True)
    yield running
    await running.aclose()


async def test_a_redirect_is_not_followed(sender: Sender) -> None:
    with running_receiver() as target:

        async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(
                f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {target.url}\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
            await writer.drain()

        async for url in serve(redirect):
            attempt = await sender.post(url, [new_secret()], "evt_x", "{}")
        assert attempt.status_code == 307 and not attempt.succeeded
        assert target.received == []


async def test_an_endless_answer_is_read_only_so_far(sender: Sender) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not reader.at_eof():
            writer.write(b"400\r\n" + b"x" * 1024 + b"\r\n")
            await writer.drain()

    async for url in serve(endless):
        started = time.monotonic()
        attempt = await sender.post(url, [new_secret()], "evt_x", "{}")
        elapsed = time.monotonic() - started
    assert attempt.status_code == 500 and elapsed < 5
    assert attempt.error is not None and len(attempt.error) <= rules.ERROR_TEXT_LIMIT


async def test_a_silent_server_is_given_up_on(
    sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "ATTEMPT_TIMEOUT_SECONDS", 1.0)  # 15 s in the product

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # says nothing until the client gives up and hangs up

    async for url in serve(silent):
        started = time.monotonic()
        attempt = await sender.post(url, [new_secret()], "evt_x", "{}")
        elapsed = time.monotonic() - started
    assert attempt.status_code is None and attempt.error == "no answer within 1 s"
    assert 0.9 < elapsed < 5


async def test_a_name_resolving_to_loopback_is_refused_before_connecting() -> None:
    guarded = Sender(allow_private=False)
    try:
        with running_receiver() as receiver:
            url = f"http://localhost:{receiver.port}/hook"
            attempt = await guarded.post(url, [new_secret()], "evt_x", "{}")
            assert attempt.status_code is None and "loopback" in (attempt.error or "")
            assert receiver.received == []
    finally:
        await guarded.aclose()
    with pytest.raises(Exception, match="unix sockets"):
        await VettedBackend(allow_private=False).connect_unix_socket("/tmp/x")
