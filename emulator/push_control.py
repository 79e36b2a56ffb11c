"""Control routes for push, next to `emulator.control` under `/_emulator` (CONTRACT.md §4).

- `POST /_emulator/push/faults` `{"provider": "gmail"|"outlook"|"any", "mode":
  "drop"|"duplicate"|"delay", "count"?, "delay"?}` -> 201 fault (`emulator.push_faults`);
  `GET /_emulator/push/faults` -> `{"items"}`; `DELETE /_emulator/push/faults` -> 204
- `POST /_emulator/mailboxes/{address}/lifecycle` `{"event": "reauthorizationRequired"|
  "subscriptionRemoved"|"missed"}` -> 202 `{"event", "subscriptions": [ids]}`: Graph sends
  the event to each live subscription of the mailbox (to its lifecycleNotificationUrl, if
  it has one); `subscriptionRemoved` also deletes them. 409 `no_subscription` when the
  mailbox has none (a Gmail mailbox never has one).
- `POST /_emulator/mailboxes/{address}/push/expire` -> 202 `{"expired": n}`: the Gmail watch
  or Graph subscriptions expire now, silently (no notification says so)
- `GET /_emulator/mailboxes/{address}/push` -> `{"kind": "watch"|"subscription"|null, "id",
  "expires_at", "notification_url"}`: what the provider holds now (`id`: the newest Graph
  subscription's; null for a watch; `notification_url`: the subscription's, or for a watch
  the push endpoint of the first push subscription on its topic)
- `GET /_emulator/push/log` -> `{"items": [{"provider", "kind", "mailbox", "url", "attempt",
  "status", "error", "at"}]}`: every push attempt since the last request-count reset
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.control_bodies import fault_routes, json_object, path_mailbox
from emulator.errors import ControlError
from emulator.gmail_watch import live_watch
from emulator.graph_subscriptions import LIFECYCLE_EVENTS, live_subscriptions, send_lifecycle
from emulator.state import EmulatorState, Mailbox

PREFIX = "/_emulator"
BOX = PREFIX + "/mailboxes/{address}"


def _iso(when: float) -> str:
    moment = dt.datetime.fromtimestamp(when, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def push_held(state: EmulatorState, mailbox: Mailbox) -> dict[str, Any]:
    """What push the provider holds for the mailbox now (the GET push answer)."""
    hub = state.push
    if mailbox.provider == "gmail":
        watch = live_watch(hub, mailbox.address)
        if watch is not None:
            targets = [s.push for s in hub.pubsub.push_subscriptions(watch.topic) if s.push]
            return {
                "kind": "watch",
                "id": None,
                "expires_at": _iso(watch.expires_at),
                "notification_url": targets[0].endpoint if targets else None,
            }
    else:
        subscriptions = live_subscriptions(hub, mailbox.address)
        if subscriptions:
            newest = subscriptions[-1]
            return {
                "kind": "subscription",
                "id": newest.id,
                "expires_at": _iso(newest.expires_at),
                "notification_url": newest.notification_url,
            }
    return {"kind": None, "id": None, "expires_at": None, "notification_url": None}


def push_control_routes(state: EmulatorState) -> list[Route]:
    hub = state.push

    async def lifecycle(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        event = (await json_object(request)).get("event")
        if event not in LIFECYCLE_EVENTS:
            raise ControlError(
                422, "invalid_body", "event must be one of: " + ", ".join(LIFECYCLE_EVENTS)
            )
        subscriptions = live_subscriptions(hub, mailbox.address)
        if not subscriptions:
            raise ControlError(
                409, "no_subscription", f"{mailbox.address} has no Graph subscription."
            )
        for subscription in subscriptions:
            send_lifecycle(hub, mailbox, subscription, str(event))
            if event == "reauthorizationRequired":
                subscription.needs_reauthorization = True
            elif event == "subscriptionRemoved":
                del hub.subscriptions[subscription.id]
        body = {"event": event, "subscriptions": [s.id for s in subscriptions]}
        return JSONResponse(body, status_code=202)

    async def expire(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        now = state.clock()
        expired = 0
        watch = live_watch(hub, mailbox.address)
        if watch is not None:
            watch.expires_at = now
            expired += 1
        for subscription in live_subscriptions(hub, mailbox.address):
            subscription.expires_at = now
            expired += 1
        return JSONResponse({"expired": expired}, status_code=202)

    async def held(request: Request) -> Response:
        return JSONResponse(push_held(state, path_mailbox(state, request)))

    async def log(_request: Request) -> Response:
        return JSONResponse({"items": state.requests.push_entries()})

    return [
        *fault_routes(PREFIX + "/push/faults", hub.faults),
        Route(PREFIX + "/push/log", log, methods=["GET"]),
        Route(BOX + "/lifecycle", lifecycle, methods=["POST"]),
        Route(BOX + "/push/expire", expire, methods=["POST"]),
        Route(BOX + "/push", held, methods=["GET"]),
    ]
