"""Control routes for the Microsoft side, next to `emulator.control` under `/_emulator`.

- `POST /_emulator/mailboxes/{address}/expire-delta-tokens` `{"status": 410|400}`? -> 200
  `{"address", "delta_expired_status"}`: every Graph delta/skip token handed out so far
  stops working; it answers 410 Gone with a `Location` (the default) or 400
  `syncStateNotFound`, the two ways Graph tells a client to resync.
- `DELETE /_emulator/mailboxes/{address}/messages/{id}` -> 204: the user deletes a
  message (`id` as the control API or Graph gave it); the next delta round reports
  it `@removed`. Gmail history simply forgets it (it only records additions).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.control_bodies import path_mailbox
from emulator.errors import ControlError
from emulator.graph_render import stored_id
from emulator.state import EmulatorState

PREFIX = "/_emulator/mailboxes/{address}"
EXPIRED_STATUSES = (410, 400)


def graph_control_routes(state: EmulatorState) -> list[Route]:
    async def expire_delta_tokens(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        raw = (await request.body()).strip()
        try:
            body = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ControlError(
                400, "invalid_json", f"The body is not valid JSON: {error}"
            ) from error
        status = body.get("status", 410) if isinstance(body, dict) else None
        if status not in EXPIRED_STATUSES or isinstance(status, bool):
            raise ControlError(422, "invalid_body", "status must be 410 or 400.")
        mailbox.expire_delta_tokens(int(status))
        return JSONResponse({"address": mailbox.address, "delta_expired_status": status})

    async def delete_message(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        given = request.path_params["message_id"]
        removed = state.remove_message(mailbox, stored_id(given) or given)
        if removed is None:
            raise ControlError(
                404, "message_not_found", f"No message {given} in {mailbox.address}."
            )
        return Response(status_code=204)

    return [
        Route(PREFIX + "/expire-delta-tokens", expire_delta_tokens, methods=["POST"]),
        Route(PREFIX + "/messages/{message_id}", delete_message, methods=["DELETE"]),
    ]
