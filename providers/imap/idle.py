"""One IMAP IDLE connection (RFC 2177), on asyncio: log in, EXAMINE the folder, then IDLE
and report each `EXISTS` (new mail) until the connection drops or the caller stops it.

aioimaplib, not imapclient, because a watcher spends its life waiting: a thousand of them are
a thousand sockets and small coroutines in one event loop, where imapclient would need a
thread each (docs/scaling.md, IMAP IDLE). It only ever waits for news: the fetching is the
provider's, over its own connection, through the durable cursor.

Failures are the providers' classes: `AuthExpired` for a refused login (stop, no retry),
`Throttled` for `[UNAVAILABLE]` or too many connections, `Transient` for the rest.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aioimaplib
from imapclient import imap_utf7  # type: ignore[import-untyped]

from core.settings import Settings
from providers.base import AuthExpired, Credentials, Throttled, Transient
from providers.imap.server import ImapServer

# Waits for one command's answer (login, EXAMINE, the answer to DONE).
COMMAND_TIMEOUT = 30.0
# Words servers use when they refuse the account's own connections for a while.
_THROTTLE_WORDS = ("[UNAVAILABLE]", "TOO MANY", "[LIMIT]", "MAXIMUM NUMBER OF CONNECTIONS")


@dataclass(frozen=True)
class IdleAccount:
    host: str
    port: int
    security: str  # "tls", "starttls" or "none"
    username: str
    password: str
    folder: str = "INBOX"
    ca_file: str | None = None  # a self-hosted server's CA, beside the system's


class NoIdle(Exception):
    """The server does not announce IDLE: the mailbox is polled at its interval."""


async def watch(
    account: IdleAccount,
    on_new_mail: Callable[[], Awaitable[None]],
    on_live: Callable[[], Awaitable[None]],
    renew_seconds: float,
    on_renewed: Callable[[], None] | None = None,
) -> None:
    """Hold IDLE on the folder until the connection ends (then `Transient`) or the task is
    cancelled. `on_live` runs once IDLE is accepted; `on_new_mail` on each EXISTS. IDLE is
    ended and issued again every `renew_seconds` (servers drop an IDLE after 30 minutes);
    `on_renewed` after each IDLE the server closed with OK."""
    lost = asyncio.Event()
    client = await _open(account, lost)
    try:
        await _log_in(client, account)
        if not client.has_capability("IDLE"):
            raise NoIdle(f"{account.host} does not support IDLE")
        answer = await client.examine(_quoted(account.folder))
        if answer.result != "OK":
            raise Transient(f"EXAMINE {account.folder}: {_words(answer)}")
        # EXAMINE opens the folder read-only; aioimaplib tracks only SELECT's state change.
        client.protocol.state = aioimaplib.SELECTED
        first: Callable[[], Awaitable[None]] | None = on_live
        while True:  # ends by an exception (the connection) or cancellation (the caller)
            await _idle_round(client, lost, on_new_mail, renew_seconds, first)
            first = None
            if on_renewed is not None:
                on_renewed()
    finally:
        await _close(client)


async def _idle_round(
    client: aioimaplib.IMAP4,
    lost: asyncio.Event,
    on_new_mail: Callable[[], Awaitable[None]],
    renew_seconds: float,
    on_live: Callable[[], Awaitable[None]] | None,
) -> None:
    """One IDLE command: news until `renew_seconds`, then DONE and its answer."""
    try:
        idle = await client.idle_start(timeout=renew_seconds)
    except (OSError, aioimaplib.AioImapException) as error:
        raise Transient(f"IDLE refused: {error}") from error
    if lost.is_set():
        raise Transient("connection lost")
    if on_live is not None:
        await on_live()
    while client.has_pending_idle():
        lines = await _next_push(client, lost, renew_seconds)
        if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
            client.idle_done()
            break
        if any(line.startswith(b"BYE") for line in lines):
            raise Transient("the server closed the connection")
        if any(line.endswith(b"EXISTS") for line in lines):
            await on_new_mail()
    answer = await _within(idle, lost)
    if answer.result != "OK":
        raise Transient(f"IDLE: {_words(answer)}")


async def _next_push(client: aioimaplib.IMAP4, lost: asyncio.Event, renew: float) -> list[bytes]:
    push = asyncio.ensure_future(client.wait_server_push(timeout=renew + COMMAND_TIMEOUT))
    gone = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({push, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        push.cancel()
        gone.cancel()
    if push in done and not push.cancelled() and push.exception() is None:
        lines: list[bytes] = push.result()
        return lines
    if push in done and isinstance(push.exception(), TimeoutError):
        raise Transient("the server stopped answering during IDLE")
    raise Transient("connection lost during IDLE")


async def _within(
    command: Awaitable[aioimaplib.Response], lost: asyncio.Event
) -> aioimaplib.Response:
    """A command's answer, or `Transient` when the connection drops or the server is silent."""
    answer = asyncio.ensure_future(command)
    gone = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait(
            {answer, gone}, timeout=COMMAND_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    if answer not in done:
        answer.cancel()
        raise Transient("connection lost" if lost.is_set() else "the server did not answer")
    try:
        return answer.result()
    except (aioimaplib.AioImapException, OSError) as error:
        raise Transient(f"IMAP: {error}") from error


async def _open(account: IdleAccount, lost: asyncio.Event) -> aioimaplib.IMAP4:
    context = _tls_context(account) if account.security == "tls" else None
    try:
        client = aioimaplib.IMAP4(
            host=account.host,
            port=account.port,
            timeout=COMMAND_TIMEOUT,
            conn_lost_cb=lambda _exc: lost.set(),
            ssl_context=context,
        )
        await client.wait_hello_from_server()
        if account.security == "starttls":
            await _start_tls(client, account)
    except (OSError, TimeoutError, aioimaplib.AioImapException) as error:
        raise Transient(f"cannot reach {account.host}:{account.port}: {error}") from error
    return client


async def _start_tls(client: aioimaplib.IMAP4, account: IdleAccount) -> None:
    """STARTTLS (RFC 3501 §6.2.1), which aioimaplib names but does not carry out: ask, then
    upgrade the same transport, then read the capabilities again (they change after TLS)."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise Transient(f"{account.host} does not offer STARTTLS")
    answer = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag()))
    if answer.result != "OK":
        raise Transient(f"STARTTLS: {_words(answer)}")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(
        protocol.transport, protocol, _tls_context(account), server_hostname=account.host
    )
    await protocol.capability()


async def _log_in(client: aioimaplib.IMAP4, account: IdleAccount) -> None:
    try:
        answer = await client.login(account.username, account.password)
    except (OSError, TimeoutError, aioimaplib.AioImapException) as error:
        raise Transient(f"login: {error}") from error
    if answer.result == "OK":
        # What the server offers may change at login (RFC 3501 §7.2.1): ask again, rather
        # than trust aioimaplib's union of the greeting's and the login's.
        try:
            await asyncio.wait_for(client.protocol.capability(), COMMAND_TIMEOUT)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as error:
            raise Transient(f"CAPABILITY: {error}") from error
        return
    words = _words(answer)
    upper = words.upper()
    if "[AUTHENTICATIONFAILED]" in upper or "[AUTHORIZATIONFAILED]" in upper:
        raise AuthExpired(f"login refused: {words}")
    if any(sign in upper for sign in _THROTTLE_WORDS):
        raise Throttled(f"login deferred: {words}")
    if answer.result == "NO" and "[" not in words:
        # A plain NO with no response code: most servers' way to refuse the password.
        raise AuthExpired(f"login refused: {words}")
    raise Transient(f"login: {words}")


def _tls_context(account: IdleAccount) -> ssl.SSLContext:
    """As the fetch's (`server.tls_context`): certificates verified, host names checked."""
    context = ssl.create_default_context()
    if account.ca_file is not None:
        context.load_verify_locations(cafile=account.ca_file)
    return context


def account(settings: Settings, credentials: Credentials) -> IdleAccount:
    """The watcher's view of a mailbox's credentials: the server the fetch opens, and its
    password. A plaintext server is watched only where plaintext is allowed, as it is read."""
    if credentials.server is None or credentials.password is None:
        raise ValueError("not an IMAP mailbox's credentials")
    server = ImapServer.from_dict(credentials.server)
    if server.security == "none" and not settings.imap_allow_plaintext:
        raise ValueError("plaintext IMAP is not allowed (DESKCLONE_IMAP_ALLOW_PLAINTEXT)")
    return IdleAccount(
        host=server.host,
        port=server.port,
        security=server.security,
        username=server.username,
        password=credentials.password,
        folder=server.folder,
        ca_file=str(settings.imap_ca_file) if settings.imap_ca_file else None,
    )


async def _close(client: aioimaplib.IMAP4) -> None:
    """LOGOUT politely where the connection still stands, then close it."""
    transport = client.protocol.transport
    try:
        if transport is not None and not transport.is_closing():
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(client.logout(), 2.0)
    except Exception:  # closing, whatever happened to the connection
        pass
    finally:
        if transport is not None:
            transport.close()


def _quoted(folder: str) -> str:
    """The folder as a quoted IMAP string, in modified UTF-7 (RFC 3501 §5.1.3) as imapclient
    sends it for the fetch, so both open the same folder."""
    name: str = imap_utf7.encode(folder).decode("ascii")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _words(answer: aioimaplib.Response) -> str:
    return b" ".join(answer.lines).decode(errors="replace").strip() or answer.result
