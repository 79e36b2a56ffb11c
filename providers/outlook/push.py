"""Graph change-notification subscriptions on the inbox (research/push.md): created with the
mailbox's delegated `Mail.Read`, renewed with PATCH, ended with DELETE.

Graph validates both URLs before it answers a create (or a PATCH of the URL): it calls them
with a `validationToken` that our API must echo, so creating one needs the API reachable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from providers.base import PushLease, PushRefused, PushTarget, Transient
from providers.outlook.errors import classify_response, error_message, response_body
from providers.outlook.graph import GraphClient

INBOX_MESSAGES = "me/mailFolders('inbox')/messages"
# Graph's limit for messages without resource data is 10,080 minutes; ask for a little
# less, so a clock a minute ahead of Microsoft's is not refused.
LIFETIME = timedelta(minutes=10_080 - 60)


def subscribe(graph: GraphClient, target: PushTarget, now: datetime) -> PushLease:
    if not (target.notification_url and target.client_state):
        raise PushRefused("Outlook push is not configured (no push URL)")
    body = {
        "changeType": "created",
        "notificationUrl": target.notification_url,
        "lifecycleNotificationUrl": target.lifecycle_url or target.notification_url,
        "resource": INBOX_MESSAGES,
        "expirationDateTime": _graph_time(now + LIFETIME),
        "clientState": target.client_state,
    }
    answer = graph.send("POST", f"{graph.api_url}/subscriptions", "subscribing", json=body)
    if answer.status_code == 400:
        # Our URL failed Graph's validation, or the request is malformed: settings, not luck.
        details = error_message(response_body(answer)) or "no details"
        raise PushRefused(f"subscribing: Microsoft Graph refused ({details})")
    return _lease(graph.expect_ok(answer, "subscribing"))


def renew(graph: GraphClient, lease: PushLease, now: datetime) -> PushLease | None:
    """The renewed lease, or None when Graph no longer knows the subscription."""
    url = f"{graph.api_url}/subscriptions/{lease.id}"
    body = {"expirationDateTime": _graph_time(now + LIFETIME)}
    answer = graph.send("PATCH", url, "renewing the subscription", json=body)
    if answer.status_code == 404:
        return None
    return _lease(graph.expect_ok(answer, "renewing the subscription"))


def unsubscribe(graph: GraphClient, lease: PushLease) -> None:
    url = f"{graph.api_url}/subscriptions/{lease.id}"
    answer = graph.send("DELETE", url, "ending the subscription")
    if answer.status_code not in (204, 404):  # 404: already gone, which is what we wanted
        raise classify_response(answer, "ending the subscription")


def _lease(body: Any) -> PushLease:
    try:
        subscription_id = str(body["id"])
        expires = datetime.fromisoformat(str(body["expirationDateTime"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError) as error:
        raise Transient(
            "subscribing: Microsoft Graph sent a subscription without its id"
        ) from error
    return PushLease(id=subscription_id, expires_at=expires.astimezone(UTC))


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
