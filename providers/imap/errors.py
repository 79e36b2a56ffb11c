"""What an IMAP failure means, for the fetch (`ProviderError`) and for the connect test
(`LoginRefused` codes, CONTRACT.md §7). IMAP has no status codes: the server's bracketed
response codes (RFC 5530) and the library's exception types are what there is to read."""

from __future__ import annotations

import socket
import ssl

from imapclient.exceptions import (  # type: ignore[import-untyped]
    IMAPClientAbortError,
    LoginError,
)

from providers.base import AuthExpired, LoginRefused, ProviderError, Throttled, Transient
from providers.imap.server import ImapServer, StepFailed

# The server asks us to slow down (RFC 5530 UNAVAILABLE, LIMIT) or has too many of our
# connections (Dovecot: "Maximum number of connections from user+IP exceeded"; others say
# "too many connections" / "simultaneous connections").
_THROTTLE_WORDS = ("[unavailable]", "[limit]", "too many", "maximum number of connections")
_TRANSIENT_CODES = ("[serverbug]", "[inuse]", "[expungeissued]", "[contactadmin]")
# imaplib's words for a connection that dropped mid-command (its `abort`), which imapclient's
# `login` re-raises as a LoginError like a real refusal.
_DROPPED_WORDS = ("socket error", "eof", "connection reset", "broken pipe", "timed out")
# IMAP says nothing of when to come back; a throttled mailbox waits this long.
THROTTLE_PAUSE_SECONDS = 30.0


def classify(error: BaseException) -> ProviderError:
    """A fetch's failure as the provider error the worker maps: a refused login is the only
    `AuthExpired`; an unreachable or dropped server is `Transient`, never an auth failure."""
    step, cause = (error.step, error.cause) if isinstance(error, StepFailed) else (None, error)
    text = str(cause).lower()
    if any(word in text for word in _THROTTLE_WORDS):
        return Throttled(f"the IMAP server is busy: {cause}", THROTTLE_PAUSE_SECONDS)
    if step == "login" and _refused_login(cause):
        return AuthExpired(f"the IMAP server refused the login: {cause}")
    where = f" ({step})" if step else ""
    return Transient(f"IMAP{where}: {type(cause).__name__}: {cause}")


def _refused_login(cause: BaseException) -> bool:
    """A LOGIN answered NO: wrong or changed password, disabled account. A dropped
    connection, or a code saying the server is at fault, is not a refusal."""
    if not isinstance(cause, LoginError) or isinstance(cause, IMAPClientAbortError):
        return False
    text = str(cause).lower()
    return not any(code in text for code in (*_TRANSIENT_CODES, *_DROPPED_WORDS))


def refused(server: ImapServer, error: StepFailed, timeout: float) -> LoginRefused:
    """The connect test's failure, in words a person can act on."""
    cause, where = error.cause, f"{server.host}:{server.port}"
    classified = classify(error)
    if isinstance(classified, AuthExpired):
        return LoginRefused(
            "imap_auth_failed",
            f"{where} refused the user name {server.username!r} with this password. Check both; "
            "many providers (iCloud, Fastmail, Gmail, Yahoo, Outlook.com) want an app password "
            "made in the account's security settings, not the account password.",
            field="password",
        )
    if error.step == "tls" or isinstance(cause, ssl.SSLError):
        return _tls_refused(server, cause)
    if error.step == "folder" and not _is_network(cause) and not isinstance(classified, Throttled):
        return LoginRefused(
            "imap_folder_missing",
            f"The server has no folder named {server.folder!r} for {server.username!r} (or it "
            "cannot be opened). Check the name: INBOX is the inbox; other folders are named as "
            "your mail program shows them, case included.",
            field="folder",
        )
    return LoginRefused("imap_unreachable", _unreachable_words(where, cause, timeout), field="host")


def _tls_refused(server: ImapServer, cause: BaseException) -> LoginRefused:
    where = f"{server.host}:{server.port}"
    if isinstance(cause, ssl.SSLCertVerificationError):
        words = (
            f"{where} showed a certificate that is not trusted ({cause.verify_message}). If it "
            "is your own server, give its CA certificate file as DESKCLONE_IMAP_CA_FILE; check "
            "that the host name is the one on the certificate."
        )
    elif "starttls" in str(cause).lower():
        words = f"{where} does not offer STARTTLS. Choose implicit TLS (usually port 993) instead."
    else:
        words = (
            f"A secure connection to {where} failed ({cause}). Check the port and the security: "
            "implicit TLS is usually port 993, STARTTLS port 143."
        )
    return LoginRefused("imap_tls_failed", words, field="security")


def _is_network(cause: BaseException) -> bool:
    return isinstance(cause, OSError | IMAPClientAbortError | TimeoutError)


def _unreachable_words(where: str, cause: BaseException, timeout: float) -> str:
    if isinstance(cause, socket.gaierror):
        return f"No server is known by the name in {where}: check the host name."
    if isinstance(cause, ConnectionRefusedError):
        return f"Nothing answered at {where}: check the host and port."
    if isinstance(cause, TimeoutError | socket.timeout):
        return (
            f"{where} did not answer within {timeout:g} seconds: check the host and port, and "
            "that this server may reach it (firewall)."
        )
    text = str(cause).lower()
    if any(word in text for word in _THROTTLE_WORDS):
        return f"{where} is busy or has too many connections for this user: try again shortly."
    return f"The connection to {where} failed ({type(cause).__name__}: {cause}): try again."
