"""What every control route shares: reading a JSON object body, finding the mailbox a path
names, and the three routes of a fault book (add, list, clear), for the provider faults and
the push faults alike."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.errors import ControlError
from emulator.state import EmulatorState, Mailbox


async def json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object; with `optional`, an empty body is `{}`."""
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ControlError(400, "invalid_json", f"The body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise ControlError(422, "invalid_body", "The body must be a JSON object.")
    return body


def path_mailbox(state: EmulatorState, request: Request) -> Mailbox:
    """The mailbox the route's `{address}` names, or a 404 control error."""
    address = request.path_params["address"]
    mailbox = state.mailbox(address)
    if mailbox is None:
        raise ControlError(404, "mailbox_not_found", f"No mailbox {address}.")
    return mailbox


class _Fault(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class FaultBook(Protocol):
    def add_from_json(self, body: Mapping[str, object]) -> _Fault: ...

    def active(self) -> Sequence[_Fault]: ...

    def clear(self) -> object: ...


def fault_routes(path: str, book: FaultBook) -> list[Route]:
    """`POST path` -> 201 fault, `GET path` -> `{"items"}` (those that can still fire),
    `DELETE path` -> 204."""

    async def add(request: Request) -> Response:
        fault = book.add_from_json(await json_object(request))
        return JSONResponse(fault.to_json(), status_code=201)

    async def listed(_request: Request) -> Response:
        return JSONResponse({"items": [f.to_json() for f in book.active()]})

    async def clear(_request: Request) -> Response:
        book.clear()
        return Response(status_code=204)

    return [
        Route(path, add, methods=["POST"]),
        Route(path, listed, methods=["GET"]),
        Route(path, clear, methods=["DELETE"]),
    ]
