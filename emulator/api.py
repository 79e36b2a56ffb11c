"""A provider API call and its answer, independent of Starlette.

The batch endpoint replays each of its parts through the same handler as a
direct HTTP call, so counting, faults, auth and shapes cannot drift apart
between the two paths.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from emulator.faults import Fault
from emulator.state import EmulatorState

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    query: QueryParams
    #: Header names lower-cased.
    headers: Mapping[str, str]
    #: The client's "host:port" (its TCP connection); None for a part of a batch.
    peer: str | None = None
    #: The request body (read by the few calls that take one, e.g. Gmail's watch).
    body: bytes = b""

    @classmethod
    def from_request(cls, request: Request) -> ApiCall:
        return cls(
            method=request.method,
            path=request.url.path,
            query=request.query_params,
            headers={k.lower(): v for k, v in request.headers.items()},
            peer=peer_of(request),
        )


def peer_of(request: Request) -> str | None:
    return f"{request.client.host}:{request.client.port}" if request.client else None


@dataclass
class ApiResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        if self.status == 204:
            return b""
        return json.dumps(self.body, ensure_ascii=False, indent=2).encode("utf-8")

    def to_starlette(self) -> Response:
        return Response(
            self.content(),
            status_code=self.status,
            headers=self.headers,
            media_type=None if self.status == 204 else JSON_CONTENT_TYPE,
        )


async def roll_fault(
    state: EmulatorState, provider: str, route_key: str, *, api: bool = True
) -> Fault | None:
    """Roll for a fault on this request and sleep its delay; the fault if it fails the call."""
    fault = state.faults.draw(provider, route_key, api=api)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    return fault if fault.status is not None else None
