"""Gmail `users.watch` / `users.stop` and the notifications a watch publishes.

- `POST /gmail/v1/users/{userId}/watch` `{"topicName", "labelIds"?, "labelFilterBehavior"?
  ("INCLUDE"|"EXCLUDE"; the deprecated `labelFilterAction` "include"|"exclude" is read when
  it is absent)}` -> 200 `{"historyId": str, "expiration": str (epoch ms, 7 days out)}`.
  Calling it again replaces the watch (and renews it). The topic must be named
  `projects/{project}/topics/{topic}` (else 400 "Invalid topicName does not match
  projects/*/topics/*", reason invalidArgument; Google names the OAuth client's project
  where the emulator, which has no projects, says `*`) and must exist in the emulator's
  Pub/Sub (else 404 "Error sending test message to Cloud PubSub ... : Resource not found
  (resource=t).", reason notFound). Publish rights are not checked.
- `POST /gmail/v1/users/{userId}/stop` -> 204, no body; the watch ends.

Both need the same Bearer token as every Gmail call (revoked: 401).

When mail arrives that the watch's label filter lets through (with `["INBOX"]` and
INCLUDE: new inbox mail), Gmail publishes `{"emailAddress", "historyId"}` (compact JSON;
`historyId` a JSON number as real pushes carry it, although Google's guide prints a
string) to the topic. At most one notification per second per mailbox: changes within a
second of the last notification are dropped, not delayed, as Gmail documents; the next
change after that second is notified with the history id of that moment. A watch past
its expiration publishes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.gmail_context import GmailContext, GmailError, invalid_argument
from emulator.pubsub import TOPIC_NAME
from emulator.state import Mailbox, StoredMessage

if TYPE_CHECKING:
    from emulator.push import PushHub

WATCH_LIFETIME_SECONDS = 7 * 24 * 3600
#: Gmail's documented ceiling: one notification per second per watched mailbox.
NOTIFICATION_INTERVAL_SECONDS = 1.0
FILTER_BEHAVIORS = ("INCLUDE", "EXCLUDE")


@dataclass
class Watch:
    topic: str
    label_ids: tuple[str, ...]
    include: bool
    expires_at: float
    #: When the mailbox last published a notification (for the one-per-second limit).
    last_notified: float | None = None

    def wants(self, labels: tuple[str, ...]) -> bool:
        if not self.label_ids:
            return True
        hit = bool(set(labels) & set(self.label_ids))
        return hit if self.include else not hit


def _body(ctx: GmailContext) -> dict[str, Any]:
    if not ctx.body.strip():
        return {}
    try:
        body = json.loads(ctx.body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid_argument(f"Invalid JSON payload received. {error}") from error
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    return body


def _filter(body: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    label_ids = body.get("labelIds") or []
    if not isinstance(label_ids, list) or not all(isinstance(x, str) for x in label_ids):
        raise invalid_argument("Invalid value at 'labelIds'")
    behavior = body.get("labelFilterBehavior") or body.get("labelFilterAction") or "INCLUDE"
    if not isinstance(behavior, str) or behavior.upper() not in FILTER_BEHAVIORS:
        raise invalid_argument(f"Invalid value at 'labelFilterBehavior' ({behavior})")
    return tuple(label_ids), behavior.upper() == "INCLUDE"


def start_watch(ctx: GmailContext) -> dict[str, Any]:
    hub = ctx.state.push
    body = _body(ctx)
    topic = body.get("topicName")
    if not topic:
        raise invalid_argument("topicName required")
    named = TOPIC_NAME.match(str(topic))
    if named is None:
        raise invalid_argument("Invalid topicName does not match projects/*/topics/*")
    if topic not in hub.pubsub.topics:
        raise GmailError(
            404,
            f"Error sending test message to Cloud PubSub {topic} : Resource not found "
            f"(resource={named['topic']}).",
            "notFound",
        )
    label_ids, include = _filter(body)
    now = ctx.state.clock()
    previous = hub.watches.get(ctx.mailbox.address)
    watch = Watch(str(topic), label_ids, include, now + WATCH_LIFETIME_SECONDS)
    if previous is not None:
        # Renewing does not reset Gmail's per-mailbox rate limit.
        watch.last_notified = previous.last_notified
    hub.watches[ctx.mailbox.address] = watch
    return {
        "historyId": str(ctx.mailbox.history_id),
        "expiration": str(int(watch.expires_at * 1000)),
    }


def stop_watch(ctx: GmailContext) -> None:
    ctx.state.push.watches.pop(ctx.mailbox.address, None)


def live_watch(hub: PushHub, address: str) -> Watch | None:
    """The mailbox's watch, unless it has expired (then it is forgotten)."""
    watch = hub.watches.get(address)
    if watch is not None and hub.clock() >= watch.expires_at:
        del hub.watches[address]
        return None
    return watch


def notify_watch(hub: PushHub, mailbox: Mailbox, message: StoredMessage) -> None:
    """Publish the change to the watch's topic, as Gmail does, within its limits."""
    watch = live_watch(hub, mailbox.address)
    if watch is None or not watch.wants(message.label_ids):
        return
    now = hub.clock()
    if (
        watch.last_notified is not None
        and now - watch.last_notified < NOTIFICATION_INTERVAL_SECONDS
    ):
        hub.log.count_push("gmail", "notification", "rate_limited")
        return
    watch.last_notified = now
    if watch.topic not in hub.pubsub.topics:
        return  # the topic was deleted under the watch: Gmail cannot publish
    data = json.dumps(
        {"emailAddress": mailbox.address, "historyId": mailbox.history_id}, separators=(",", ":")
    )
    hub.publish(watch.topic, data.encode(), {}, provider="gmail", mailbox=mailbox.address)
