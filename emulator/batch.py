"""Google's multipart batch endpoint, at `/batch/gmail/v1` and at `/batch`.

google-api-python-client posts batches to the discovery document's `rootUrl`
+ `batchPath` (`/batch`) and ignores `api_endpoint`, while Gmail's guide names
`/batch/gmail/v1`; clients pass one of them as `batch_uri`, so both are served.

Each part is an `application/http` request that runs through the very same
path as a direct call (`handle_gmail_call`): it is counted under its own
route, can be faulted, and is authenticated with its own `Authorization`
header (or the outer request's, as Google documents). The answer is
`multipart/mixed`, one part per request in order, each echoing its
`Content-ID` as `<response-...>` with CRLF line ends, which is what the
client library splits on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, Parser
from email.policy import compat32
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.api import JSON_CONTENT_TYPE, ApiCall, ApiResponse, peer_of, roll_fault
from emulator.gmail import GMAIL_PREFIX, PROVIDER, fault_response, gmail_error, handle_gmail_call
from emulator.state import EmulatorState

BATCH_PATHS = ("/batch/gmail/v1", "/batch")
#: Gmail's documented limit on calls per batch request.
MAX_BATCH_PARTS = 100
#: Longest batch body read; 100 GETs are a few tens of kilobytes.
MAX_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class BatchPart:
    content_id: str | None
    call: ApiCall | None


def _content_id(part: Message) -> str | None:
    value = part.get("Content-ID")
    if value is None:
        return None
    return str(value).strip().removeprefix("<").removesuffix(">")


def _inner_call(text: str, outer_auth: str | None) -> ApiCall | None:
    """The `application/http` request inside a part, or None if unreadable."""
    request_line, _, rest = text.lstrip("\r\n").partition("\n")
    fields = request_line.strip().split(" ")
    if len(fields) < 2:
        return None
    target = urlsplit(fields[1])
    inner = Parser(policy=compat32).parsestr(rest, headersonly=True)
    headers = {name.lower(): str(value) for name, value in inner.items()}
    if outer_auth is not None:
        headers.setdefault("authorization", outer_auth)
    return ApiCall(
        method=fields[0].upper(),
        path=unquote(target.path),
        query=QueryParams(target.query),
        headers=headers,
    )


def parse_batch(content_type: str, body: bytes, outer_auth: str | None) -> list[BatchPart] | None:
    """The parts of a batch body, or None when it is not multipart/mixed."""
    envelope = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser(policy=compat32).parsebytes(envelope)
    if message.get_content_type() != "multipart/mixed" or not message.is_multipart():
        return None
    parts = []
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        payload = part.get_payload()
        call = _inner_call(payload, outer_auth) if isinstance(payload, str) else None
        parts.append(BatchPart(_content_id(part), call))
    return parts


def render_batch(answers: list[tuple[str | None, ApiResponse]], boundary: str) -> bytes:
    chunks: list[bytes] = []
    for content_id, answer in answers:
        content = answer.content()
        head = ["Content-Type: application/http"]
        if content_id is not None:
            head.append(f"Content-ID: <response-{content_id}>")
        try:
            phrase = HTTPStatus(answer.status).phrase
        except ValueError:
            phrase = "Unknown"
        inner = [f"HTTP/1.1 {answer.status} {phrase}", f"Content-Type: {JSON_CONTENT_TYPE}"]
        inner += [f"{name}: {value}" for name, value in answer.headers.items()]
        inner.append(f"Content-Length: {len(content)}")
        text = f"--{boundary}\r\n" + "\r\n".join(head) + "\r\n\r\n" + "\r\n".join(inner)
        chunks.append(text.encode("utf-8") + b"\r\n\r\n" + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


async def _answer(state: EmulatorState, part: BatchPart) -> ApiResponse:
    if part.call is None:
        return gmail_error(400, "Could not parse the batch part as an HTTP request")
    if not part.call.path.startswith(GMAIL_PREFIX):
        # A batch endpoint serves one API; the emulator's other routes are not in it.
        return gmail_error(404, f"The Gmail batch endpoint does not serve {part.call.path}")
    return await handle_gmail_call(state, part.call)


def batch_routes(state: EmulatorState) -> list[Route]:
    def endpoint_for(path: str) -> Route:
        key = f"POST {path}"

        async def endpoint(request: Request) -> Response:
            state.requests.record(key)
            # Each part is signed in on its own; the batch itself only has a connection.
            state.requests.log(key, account=None, peer=peer_of(request))
            # Only a fault naming this route hits the batch itself; plain
            # provider faults hit its parts, like per-call quota errors do.
            fault = await roll_fault(state, PROVIDER, key, api=False)
            if fault is not None:
                return fault_response(fault).to_starlette()
            body = await request.body()
            if len(body) > MAX_BATCH_BYTES:
                return gmail_error(413, "Batch request too large").to_starlette()
            outer_auth = request.headers.get("authorization")
            parts = parse_batch(request.headers.get("content-type", ""), body, outer_auth)
            if not parts:
                message = "A batch request must be a non-empty multipart/mixed body"
                return gmail_error(400, message).to_starlette()
            if len(parts) > MAX_BATCH_PARTS:
                message = f"A batch request may hold at most {MAX_BATCH_PARTS} calls"
                return gmail_error(400, message).to_starlette()
            answers = [(part.content_id, await _answer(state, part)) for part in parts]
            boundary = "batch_" + secrets.token_hex(12)
            return Response(
                render_batch(answers, boundary),
                media_type=f"multipart/mixed; boundary={boundary}",
            )

        return Route(path, endpoint, methods=["POST"])

    return [endpoint_for(path) for path in BATCH_PATHS]
