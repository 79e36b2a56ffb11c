"""Webhook rules: which URLs and addresses may be called, when a failed delivery is tried
again, and what an answer means for the delivery and its endpoint. Pure; the activity acts.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DisabledReason(StrEnum):
    GONE = "gone"  # the receiver answered 410
    FAILING = "failing"  # no successful delivery for a day
    MANUAL = "manual"  # PATCH enabled=false


# The waits before each retry: the first within 10 s, each longer than the last, and from the
# first attempt to the last 25 h 42 min (≥ 24 h, so a receiver down for a day still gets it).
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# An endpoint with no successful delivery for this long while deliveries fail is disabled.
FAILING_LIMIT = timedelta(days=1)
# One attempt may take this long, connection to last byte read; then it counts as failed.
ATTEMPT_TIMEOUT_SECONDS = 15.0
# How much of a receiver's answer is read (and kept, shorter, as the error): no more.
RESPONSE_READ_LIMIT = 4096
ERROR_TEXT_LIMIT = 500

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500

_LOCAL_NAMES = ("localhost", "localhost.localdomain")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""


ALLOWED = Verdict(True)


def url_verdict(url: str, *, allow_private: bool) -> Verdict:
    """Whether an endpoint URL may be saved: https (http too when private targets are
    allowed, for a receiver on this machine), a host, no credentials in it, and not a
    loopback, private or link-local address written out. Names are resolved at delivery."""
    if len(url) > MAX_URL_LENGTH:
        return Verdict(False, f"is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Verdict(False, "is not a URL")
    del port  # read only to check it is a number in range
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        return Verdict(False, "must start with https://")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return Verdict(False, "must name a host")
    if parts.username is not None or parts.password is not None:
        return Verdict(False, "must not carry a user name or password")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return Verdict(False, "must not contain spaces or control characters")
    if allow_private:
        return ALLOWED
    if host.lower() in _LOCAL_NAMES or host.lower().endswith(_LOCAL_SUFFIXES):
        return Verdict(False, f"points at {host}, a name for this machine or its network")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ALLOWED  # a name: checked against what it resolves to at each delivery
    return address_verdict(str(address), allow_private=False)


def address_verdict(address: str, *, allow_private: bool) -> Verdict:
    """Whether a delivery may connect to this IP address: only public ones, unless allowed."""
    if allow_private:
        return ALLOWED
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return Verdict(False, f"{address} is not an IP address")
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host: judge that one.
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            return address_verdict(str(inner), allow_private=False)
    if ip.is_loopback:
        return Verdict(False, f"{address} is a loopback address")
    if ip.is_link_local:
        return Verdict(False, f"{address} is a link-local address")
    if ip.is_private or ip.is_unspecified or ip.is_reserved or ip.is_multicast:
        return Verdict(False, f"{address} is a private or reserved address")
    if not ip.is_global:
        return Verdict(False, f"{address} is not a public address")
    return ALLOWED


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None: the delivery has failed.
    A retry asked for by hand after the last one is one more attempt, not a new schedule."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + RETRY_DELAYS[attempts - 1]


def succeeded(status_code: int) -> bool:
    return 200 <= status_code < 300


def disables_endpoint(status_code: int) -> bool:
    """410 Gone: the receiver says the endpoint is no more; sending on would be noise."""
    return status_code == 410


def failing_too_long(failing_since: datetime | None, now: datetime) -> bool:
    return failing_since is not None and now - failing_since >= FAILING_LIMIT
