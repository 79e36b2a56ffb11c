"""Graph's delta query for the messages of a mail folder, with its paging and expiry rules.

A request without a token starts an *initial round*: every message now in the
folder (narrowed by `$filter=receivedDateTime ge|gt <instant>`), oldest first.
`@odata.deltaLink` (`$deltatoken`) starts the next round: what changed since the
previous round ended, i.e. messages that arrived (created) and `@removed` rows
for messages deleted from the folder. A round is a snapshot taken at its first
request (the change sequence then), paged through `@odata.nextLink`
(`$skiptoken`) with `Prefer: odata.maxpagesize` (else `$top`, else 10 per page,
at most 1000); mail arriving mid-round comes in the next one, so nothing repeats
or goes missing. `changeType=created|updated|deleted` narrows the rows, as in Graph.

Tokens are self-contained (base64url JSON) and carry the query options, so links
are followed verbatim and options on later requests are ignored, as Graph does.
They also carry the mailbox's delta epoch: after
`POST /_emulator/mailboxes/{address}/expire-delta-tokens` (or an emulator reset or
restart) every older token answers 410 Gone with a `Location` to restart from (the
initial query, with an empty `$deltatoken`), or 400 `syncStateNotFound`, the two
ways the delta-query overview says a client must be told to resync.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

from emulator.graph_context import (
    GRAPH_PREFIX,
    GraphContext,
    GraphError,
    GraphResponse,
    bad_request,
)
from emulator.graph_render import (
    encoded_message_id,
    folder_id,
    received_at,
    render_message,
    resolve_folder,
)
from emulator.state import Mailbox, StoredMessage

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000
CHANGE_TYPES = ("created", "updated", "deleted")
EXPIRED_MESSAGE = (
    "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again."
)
_FILTER = re.compile(r"^\s*receivedDateTime\s+(ge|gt)\s+'?([^'\s]+)'?\s*$", re.IGNORECASE)
_OPTIONS = ("$select", "$filter", "$top", "$skiptoken", "$deltatoken")


@dataclass(frozen=True)
class DeltaState:
    """What a `$skiptoken` or `$deltatoken` stands for."""

    epoch: str
    folder: str
    select: tuple[str, ...] | None
    #: (`ge`|`gt`, ISO instant) from `$filter`.
    received_filter: tuple[str, str] | None
    change_types: tuple[str, ...] | None
    #: An initial round lists what is in the folder and reports no removals.
    initial: bool
    #: Changes up to `position` were returned; the round ends at `high`.
    position: int
    high: int

    def encode(self) -> str:
        body = {
            "e": self.epoch,
            "f": self.folder,
            "s": list(self.select) if self.select is not None else None,
            "r": list(self.received_filter) if self.received_filter is not None else None,
            "c": list(self.change_types) if self.change_types is not None else None,
            "i": self.initial,
            "p": self.position,
            "h": self.high,
        }
        text = json.dumps(body, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str) -> DeltaState:
        try:
            body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            received = body["r"]
            return cls(
                epoch=str(body["e"]),
                folder=str(body["f"]),
                select=tuple(body["s"]) if body["s"] is not None else None,
                received_filter=(str(received[0]), str(received[1])) if received else None,
                change_types=tuple(body["c"]) if body["c"] is not None else None,
                initial=bool(body["i"]),
                position=int(body["p"]),
                high=int(body["h"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError, IndexError) as error:
            raise bad_request(
                "The delta or skip token is malformed.", "SyncStateInvalid"
            ) from error


@dataclass(frozen=True)
class Change:
    """One row of a round: a message that arrived, or one that was removed."""

    seq: int
    message: StoredMessage | None = None
    removed_id: str | None = None

    def row(self, mailbox: Mailbox, select: tuple[str, ...] | None) -> dict[str, Any]:
        if self.message is None:
            return {
                "@odata.type": "#microsoft.graph.message",
                "id": encoded_message_id(str(self.removed_id)),
                "@removed": {"reason": "deleted"},
            }
        rendered = render_message(mailbox, self.message, list(select) if select else None)
        return {"@odata.type": "#microsoft.graph.message", **rendered}


def _received_filter(raw: str | None) -> tuple[str, str] | None:
    if raw is None:
        return None
    found = _FILTER.match(raw)
    if found is None:
        raise bad_request(
            "Delta query for messages supports only $filter=receivedDateTime ge|gt <instant> "
            f"(got {raw!r}).",
            "ErrorInvalidUrlQueryFilter",
        )
    _parse_instant(found.group(2))
    return found.group(1).lower(), found.group(2)


def _parse_instant(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise bad_request(f"Invalid DateTimeOffset: {value}", "BadRequest") from error
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _change_types(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    kinds = tuple(k.strip().lower() for k in raw.split(",") if k.strip())
    if not kinds or any(k not in CHANGE_TYPES for k in kinds):
        raise bad_request("changeType must be created, updated or deleted.")
    return kinds


def _page_size(ctx: GraphContext) -> tuple[int, bool]:
    """(page size, whether `odata.maxpagesize` set it)."""
    raw = ctx.prefer.get("odata.maxpagesize")
    from_header = raw is not None
    if raw is None:
        raw = ctx.query.get("$top")
    if raw is None:
        return DEFAULT_PAGE_SIZE, False
    if not raw.isdigit() or int(raw) < 1:
        raise bad_request(f"Invalid page size: {raw}")
    return min(int(raw), MAX_PAGE_SIZE), from_header


def _folder_url(ctx: GraphContext, folder: str) -> str:
    # Graph writes its links with `mailfolders` and the folder's id, whatever the client sent.
    return (
        f"{ctx.base_url}{GRAPH_PREFIX}/me/mailfolders('{folder_id(ctx.mailbox, folder)}')"
        "/messages/delta"
    )


def _restart_url(ctx: GraphContext, state: DeltaState) -> str:
    """The initial query of `state`'s round, with an empty `$deltatoken`, for 410's Location."""
    params: dict[str, str] = {}
    if state.select is not None:
        params["$select"] = ",".join(state.select)
    if state.received_filter is not None:
        params["$filter"] = (
            f"receivedDateTime {state.received_filter[0]} {state.received_filter[1]}"
        )
    if state.change_types is not None:
        params["changeType"] = ",".join(state.change_types)
    params["$deltatoken"] = ""
    return _folder_url(ctx, state.folder) + "?" + urlencode(params, safe="$,:", quote_via=quote)


def _expired(ctx: GraphContext, state: DeltaState) -> GraphError:
    if ctx.mailbox.delta_expired_status == 410:
        return GraphError(
            410, "SyncStateNotFound", EXPIRED_MESSAGE, {"Location": _restart_url(ctx, state)}
        )
    return GraphError(400, "syncStateNotFound", EXPIRED_MESSAGE)


def _changes(ctx: GraphContext, state: DeltaState) -> list[Change]:
    """The rest of the round, in change order; rendered later, one page at a time."""
    mailbox: Mailbox = ctx.mailbox
    kinds = state.change_types or CHANGE_TYPES
    window = range(state.position + 1, state.high + 1)
    changes: list[Change] = []
    if "created" in kinds:
        bound = None
        if state.received_filter is not None:
            op, value = state.received_filter
            bound = (op, _parse_instant(value))
        for message in mailbox.messages.values():
            if message.folder != state.folder or message.seq not in window:
                continue
            if bound is not None:
                when = received_at(message)
                if when < bound[1] or (bound[0] == "gt" and when == bound[1]):
                    continue
            changes.append(Change(message.seq, message=message))
    if "deleted" in kinds and not state.initial:
        for removal in mailbox.removed:
            if removal.folder == state.folder and removal.seq in window:
                changes.append(Change(removal.seq, removed_id=removal.message_id))
    return sorted(changes, key=lambda change: change.seq)


def messages_delta(ctx: GraphContext) -> GraphResponse:
    folder = resolve_folder(ctx.mailbox, ctx.params["folder"])
    if folder is None:
        raise GraphError(404, "ErrorItemNotFound", "The specified folder could not be found.")
    ctx.refuse_options(*_OPTIONS)
    skip, delta = ctx.query.get("$skiptoken"), ctx.query.get("$deltatoken")
    if skip and delta:
        raise bad_request("Give either $skiptoken or $deltatoken, not both.")
    now = ctx.state.last_seq
    if skip or delta:
        state = DeltaState.decode(skip or delta or "")
        if state.epoch != ctx.mailbox.delta_epoch or state.folder != folder:
            raise _expired(ctx, state)
        if delta:
            # A new round: everything that changed since the last one ended, up to now.
            state = replace(state, initial=False, position=state.high, high=now)
    else:
        select = ctx.select()
        state = DeltaState(
            epoch=ctx.mailbox.delta_epoch,
            folder=folder,
            select=tuple(select) if select is not None else None,
            received_filter=_received_filter(ctx.query.get("$filter")),
            change_types=_change_types(ctx.query.get("changeType")),
            initial=True,
            position=0,
            high=now,
        )
    size, from_header = _page_size(ctx)
    changes = _changes(ctx, state)
    page = changes[:size]
    body: dict[str, Any] = {
        "@odata.context": f"{ctx.base_url}{GRAPH_PREFIX}/$metadata#Collection(message)",
        "value": [change.row(ctx.mailbox, state.select) for change in page],
    }
    url = _folder_url(ctx, folder)
    if len(changes) > size:
        after = replace(state, position=page[-1].seq)
        body["@odata.nextLink"] = f"{url}?$skiptoken={after.encode()}"
    else:
        # The round is done: the next one starts where this one's snapshot ended.
        after = replace(state, initial=False, position=state.high)
        body["@odata.deltaLink"] = f"{url}?$deltatoken={after.encode()}"
    applied = []
    if from_header:
        applied.append(f"odata.maxpagesize={size}")
    if "idtype" in ctx.prefer:
        applied.append(f'IdType="{ctx.prefer["idtype"]}"')
    headers = {"Preference-Applied": ", ".join(applied)} if applied else {}
    return GraphResponse(200, body, headers)
