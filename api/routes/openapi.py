"""`GET /api/v1/openapi.json`: the OpenAPI description of this API (public, cacheable)."""

from __future__ import annotations

import json
from functools import cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.openapi import openapi_document


@cache
def _body() -> bytes:
    return json.dumps(openapi_document(), separators=(",", ":")).encode()


async def openapi_json(_request: Request) -> Response:
    return Response(
        _body(),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
