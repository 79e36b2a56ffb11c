"""Where an IMAP mailbox lives and how one connection to it is opened: connect (implicit TLS,
STARTTLS or, where allowed, plain), log in, open the folder with `EXAMINE`. Every step that
fails says which it was (`StepFailed`), for the connect test's words and the fetch's errors."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from imapclient import IMAPClient  # type: ignore[import-untyped]

from core.settings import Settings

Security = Literal["tls", "starttls", "none"]
SECURITIES: tuple[Security, ...] = ("tls", "starttls", "none")
Step = Literal["connect", "tls", "login", "folder"]


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    security: Security
    username: str
    folder: str = "INBOX"

    def as_dict(self) -> dict[str, str | int]:
        return dict(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImapServer:
        security = next((s for s in SECURITIES if s == data["security"]), None)
        if security is None:
            raise ValueError(f"unknown IMAP security {data['security']!r}")
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            security=security,
            username=str(data["username"]),
            folder=str(data.get("folder") or "INBOX"),
        )


class StepFailed(Exception):
    """Opening the connection failed at `step`; `cause` is what the library raised."""

    def __init__(self, step: Step, cause: BaseException) -> None:
        super().__init__(f"{step}: {type(cause).__name__}: {cause}")
        self.step = step
        self.cause = cause


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificates verified, host names checked: the system's trust store, and the CA file
    of a self-hosted server when one is configured."""
    context = ssl.create_default_context()
    if settings.imap_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.imap_ca_file))
    return context


@contextmanager
def opened(
    settings: Settings, server: ImapServer, password: str
) -> Iterator[tuple[Any, dict[bytes, Any]]]:
    """A logged-in client with the folder open read-only (`EXAMINE`), and what opening it
    answered (`UIDVALIDITY`, `UIDNEXT`, ...); logged out, or at least closed, on the way out."""
    client = _connect(settings, server)
    client.normalise_times = False  # INTERNALDATE as the server gave it, time zone included
    try:
        _secure(settings, server, client)
        _step("login", lambda: client.login(server.username, password))
        status = _step("folder", lambda: client.select_folder(server.folder, readonly=True))
        yield client, status
    finally:
        close(client)


def close(client: Any) -> None:
    try:
        client.logout()
    except Exception:
        try:
            client.shutdown()
        except Exception:
            pass


def _connect(settings: Settings, server: ImapServer) -> Any:
    timeout = settings.imap_timeout_seconds
    try:
        return IMAPClient(
            server.host,
            port=server.port,
            ssl=server.security == "tls",
            ssl_context=tls_context(settings) if server.security == "tls" else None,
            timeout=timeout,
        )
    except ssl.SSLError as error:
        raise StepFailed("tls", error) from error
    except Exception as error:
        raise StepFailed("connect", error) from error


def _secure(settings: Settings, server: ImapServer, client: Any) -> None:
    if server.security == "starttls":
        _step("tls", lambda: client.starttls(tls_context(settings)))


def _step(step: Step, call: Any) -> Any:
    try:
        return call()
    except StepFailed:
        raise
    except ssl.SSLError as error:
        raise StepFailed("tls", error) from error
    except Exception as error:
        raise StepFailed(step, error) from error
