"""Graph change-notification subscriptions on mail: what they hold and what they send.

A subscription belongs to the mailbox (and app) whose delegated token created it and
watches `me/mailFolders('inbox')/messages` (also spelled `me/mailFolders/inbox/messages`)
or `me/messages` (every folder). On new mail it POSTs to `notificationUrl`

    {"value": [{"subscriptionId", "subscriptionExpirationDateTime", "changeType": "created",
                "resource": "Users/{oid}/Messages/{id}", "resourceData": {"@odata.type":
                "#Microsoft.Graph.Message", "@odata.id", "@odata.etag", "id"},
                "clientState", "tenantId"}]}

and lifecycle events to `lifecycleNotificationUrl` as `{"value": [{"lifecycleEvent",
"subscriptionId", "subscriptionExpirationDateTime", "clientState", "tenantId"}]}`.
A notification not answered 2xx within 3 s is retried (`emulator.push_delivery`).
A subscription past its `expirationDateTime` sends nothing and is deleted, as Graph
deletes expired subscriptions (the next GET or PATCH of it answers 404).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.graph_render import change_key, message_id
from emulator.microsoft_accounts import account_ids
from emulator.push_delivery import Push
from emulator.state import Mailbox, StoredMessage

if TYPE_CHECKING:
    from emulator.push import PushHub

#: Longest lifetime Graph allows for a subscription on Outlook messages (just under 7 days).
MAX_LIFETIME_MINUTES = 10080
#: Graph wants a notification answered within 3 seconds; later counts as a failure.
NOTIFICATION_TIMEOUT_SECONDS = 3.0
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
#: Resources the emulator accepts, lower-cased without a leading slash -> folders watched
#: (None: every folder).
RESOURCES: dict[str, frozenset[str] | None] = {
    "me/mailfolders('inbox')/messages": frozenset({"inbox"}),
    "me/mailfolders/inbox/messages": frozenset({"inbox"}),
    "me/messages": None,
}
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def graph_time(when: float, *, zulu: bool = True) -> str:
    """Graph's timestamps: seven fractional digits, `Z` on resources, `+00:00` in
    notifications (both appear in Graph's own answers; clients must read either)."""
    moment = dt.datetime.fromtimestamp(when, dt.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0"
    return text + ("Z" if zulu else "+00:00")


@dataclass
class GraphSubscription:
    id: str
    address: str
    application_id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires_at: float
    creator_id: str
    #: Set by a `reauthorizationRequired` lifecycle event, cleared by `/reauthorize`.
    needs_reauthorization: bool = False
    created_at: float = 0.0

    @property
    def folders(self) -> frozenset[str] | None:
        return RESOURCES[normalize_resource(self.resource)]

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time(self.expires_at),
            "creatorId": self.creator_id,
            "includeResourceData": None,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


def normalize_resource(resource: str) -> str:
    return resource.strip().lstrip("/").lower()


def new_subscription_id() -> str:
    return str(uuid.uuid4())


def live_subscriptions(hub: PushHub, address: str | None = None) -> list[GraphSubscription]:
    """Subscriptions not yet expired (of one mailbox, if given), oldest first.

    Expired ones are deleted on the way, as Graph deletes them.
    """
    now = hub.clock()
    for sub_id in [s.id for s in hub.subscriptions.values() if s.expires_at <= now]:
        del hub.subscriptions[sub_id]
    found = [s for s in hub.subscriptions.values() if address in (None, s.address)]
    return sorted(found, key=lambda s: s.created_at)


def notify_subscriptions(hub: PushHub, mailbox: Mailbox, message: StoredMessage) -> None:
    """A `created` notification to every live subscription watching the message's folder."""
    oid, tid = account_ids(mailbox)
    graph_id = message_id(message)
    resource = f"Users/{oid}/Messages/{graph_id}"
    for subscription in live_subscriptions(hub, mailbox.address):
        folders = subscription.folders
        if folders is not None and message.folder not in folders:
            continue
        if "created" not in subscription.change_type.split(","):
            continue
        item = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_time(subscription.expires_at, zulu=False),
            "changeType": "created",
            "resource": resource,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Message",
                "@odata.id": resource,
                "@odata.etag": f'W/"{change_key(message)}"',
                "id": graph_id,
            },
            "clientState": subscription.client_state,
            "tenantId": tid,
        }
        hub.notify(_push(subscription, "notification", subscription.notification_url, item))


def send_lifecycle(
    hub: PushHub, mailbox: Mailbox, subscription: GraphSubscription, event: str
) -> None:
    """Send lifecycle `event` to the subscription's lifecycle URL, if it has one."""
    if subscription.lifecycle_url is None:
        return
    _, tid = account_ids(mailbox)
    item = {
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_time(subscription.expires_at, zulu=False),
        "tenantId": tid,
        "clientState": subscription.client_state,
        "lifecycleEvent": event,
    }
    hub.pusher.send(_push(subscription, "lifecycle", subscription.lifecycle_url, item))


def _push(subscription: GraphSubscription, kind: str, url: str, item: dict[str, Any]) -> Push:
    body = json.dumps({"value": [item]}).encode()
    return Push(
        provider="outlook",
        kind=kind,
        mailbox=subscription.address,
        url=url,
        body=body,
        headers=lambda: dict(JSON_HEADERS),
        timeout=NOTIFICATION_TIMEOUT_SECONDS,
    )
