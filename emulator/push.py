"""The emulator's push side in one place: watches, Pub/Sub, Graph subscriptions, sending.

`EmulatorState.deliver` calls `mail_arrived` for every new message; it decides, at once
and on the caller's thread, which notifications the providers would send (Gmail's label
filter and one-per-second limit, live Graph subscriptions, expiry, push faults), and
hands them to the `Pusher`, which sends them in the background. Routes: Gmail watch in
`emulator.gmail_watch`, Pub/Sub in `emulator.pubsub`, Graph subscriptions in
`emulator.graph_subscription_routes`, control in `emulator.push_control`, certs in
`emulator.push_signing`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from emulator.gmail_watch import Watch, notify_watch
from emulator.graph_subscriptions import GraphSubscription, notify_subscriptions
from emulator.pubsub import Published, PubSub, Subscription
from emulator.push_delivery import Push, Pusher
from emulator.push_faults import PushFaultBook
from emulator.push_signing import SigningKey, service_account_subject
from emulator.request_log import RequestLog
from emulator.state import Mailbox, StoredMessage

#: What Pub/Sub's push requests carry besides the token.
JSON_HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
}


class PushHub:
    def __init__(self, clock: Callable[[], float], log: RequestLog) -> None:
        self.clock = clock
        self.log = log
        # Made once: kept across resets so a verifier's cached certs stay good.
        self.signing = SigningKey(clock)
        self.pusher = Pusher(log)
        self.pubsub = PubSub()
        self.faults = PushFaultBook()
        #: Gmail watches by mailbox address.
        self.watches: dict[str, Watch] = {}
        #: Graph subscriptions by id.
        self.subscriptions: dict[str, GraphSubscription] = {}

    def reset(self) -> None:
        self.pubsub.reset()
        self.faults.clear()
        self.watches.clear()
        self.subscriptions.clear()
        self.pusher.cancel_pending()

    def mail_arrived(self, mailbox: Mailbox, message: StoredMessage) -> None:
        if mailbox.provider == "gmail":
            notify_watch(self, mailbox, message)
        else:
            notify_subscriptions(self, mailbox, message)

    # -- Pub/Sub -------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        data: bytes,
        attributes: dict[str, str],
        *,
        provider: str | None,
        mailbox: str | None,
    ) -> str:
        """Publish to `topic` and push to each of its push subscriptions; the message id.

        `provider` "gmail" for Gmail's own notifications (push faults apply), None for a
        message published through the Pub/Sub API (sent as is).
        """
        published, subscriptions = self.pubsub.publish(topic, data, attributes, self.clock())
        for subscription in subscriptions:
            push = self._pubsub_push(subscription, published, provider or "pubsub", mailbox)
            if provider is None:
                self.pusher.send(push)
            else:
                self.notify(push)
        return published.message_id

    def _pubsub_push(
        self, subscription: Subscription, published: Published, provider: str, mailbox: str | None
    ) -> Push:
        target = subscription.push
        assert target is not None
        envelope = published.envelope(subscription.name)
        oidc = target.oidc

        def headers() -> dict[str, str]:
            found = dict(JSON_HEADERS)
            if oidc is not None:
                email, audience = oidc
                token = self.signing.id_token(
                    audience=audience, email=email, subject=service_account_subject(email)
                )
                found["Authorization"] = f"Bearer {token}"
            return found

        return Push(
            provider=provider,
            kind="notification",
            mailbox=mailbox,
            url=target.endpoint,
            body=json.dumps(envelope).encode(),
            headers=headers,
            timeout=float(subscription.ack_deadline),
        )

    # -- faults --------------------------------------------------------------------------

    def notify(self, push: Push) -> None:
        """Send a change notification, unless a push fault drops, doubles or delays it."""
        fault = self.faults.draw(push.provider)
        if fault is None:
            self.pusher.send(push)
        elif fault.mode == "drop":
            self.log.count_push(push.provider, push.kind, "dropped")
        elif fault.mode == "duplicate":
            self.pusher.send(push)
            self.pusher.send(push)
        else:
            self.pusher.send(push, delay=fault.delay)
