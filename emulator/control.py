"""The control API under `/_emulator/...`: how tests and `deskclone dev` drive the world.

CONTRACT.md §4 routes:

- `POST /_emulator/mailboxes` `{"provider": "gmail"|"outlook", "address"}` -> 201 (idempotent)
- `POST /_emulator/mailboxes/{address}/messages[?folder=inbox|sent]`, body one raw RFC 822
  message with `Content-Type: message/rfc822` -> 201 `{"id", "thread_id", "history_id"}`:
  the ids the provider's own API shows for it (Gmail: message id and threadId; Outlook:
  the Graph message id and conversationId) and the mailbox's history id after it
- `POST /_emulator/mailboxes/{address}/revoke` -> 200 `{"address", "revoked_tokens"}`;
  every token of the mailbox dies until the user consents again
- `POST /_emulator/faults` -> 201 (fields in `emulator.faults`); `DELETE /_emulator/faults` -> 204
- `GET /_emulator/requests` -> `{"counts": {"METHOD /route/pattern": n}, "pushes":
  {"<provider> <kind> <outcome>": n}}` (`pushes`: what the emulator sent, see
  `emulator.push_delivery`); `POST /_emulator/requests/reset` -> 204 (resets both)

Extensions:

- `GET /_emulator/health` -> `{"status": "ok"}` (readiness probe for a parent process)
- `GET /_emulator/requests/log` -> `{"items": [{"route", "account", "peer"}]}`: per API
  request since the reset, the mailbox its token signed in as and the client's "host:port"
- `GET /_emulator/mailboxes` -> `{"items": [mailbox]}`
- `POST /_emulator/mailboxes/{address}/expire-history` -> 200 mailbox; every
  `startHistoryId` up to now answers 404, as Gmail does for week-old ids
- `POST /_emulator/mailboxes/{address}/expire-access-tokens` -> 200 `{"expired_tokens"}`;
  access tokens stop working, refresh tokens still refresh
- `POST /_emulator/mailboxes/{address}/refresh-token-rotation` `{"enabled": bool}` -> 200
  mailbox; while on, each refresh returns a new refresh token and kills the old one
- `GET /_emulator/faults` -> `{"items": [fault]}` (those that can still fire)
- `POST /_emulator/clients` `{"provider", "client_id", "client_secret"}` -> 201; registers
  an OAuth client (the default Google one is in `emulator.tokens`)
- `GET /_emulator/settings`, `PATCH /_emulator/settings` `{"access_token_lifetime": s}`
- `POST /_emulator/reset` `{"seed": int}`? -> 204; back to a fresh emulator
- Microsoft side (`emulator.graph_control`): `POST .../{address}/expire-delta-tokens`,
  `DELETE .../{address}/messages/{id}`
- Push (`emulator.push_control`): `/_emulator/push/faults`, `/_emulator/push/log`,
  `.../{address}/lifecycle`, `.../{address}/push/expire`, `GET .../{address}/push`

Errors: `{"error": {"code": "snake_case", "message": "..."}}` with 400/404/409/413/415/422.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.control_bodies import fault_routes, json_object, path_mailbox
from emulator.errors import ControlError
from emulator.graph_render import conversation_id, message_id
from emulator.state import (
    FOLDERS,
    KNOWN_PROVIDERS,
    EmulatorState,
    InvalidAddressError,
    Mailbox,
    ProviderConflictError,
    StoredMessage,
    UnknownProviderError,
)
from emulator.tokens import OAuthClient

PREFIX = "/_emulator"
#: Gmail refuses messages over about 35 MB raw; leave room but stay bounded.
MAX_MESSAGE_BYTES = 50 * 1024 * 1024


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ControlError(422, "invalid_body", f"{key} must be a non-empty string.")
    return value


def mailbox_json(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "provider": mailbox.provider,
        "address": mailbox.address,
        "history_id": str(mailbox.history_id),
        "messages": len(mailbox.messages),
        "rotate_refresh_tokens": mailbox.rotate_refresh_tokens,
    }


def provider_ids(mailbox: Mailbox, stored: StoredMessage) -> tuple[str, str]:
    """(message id, thread id) as the mailbox's provider API names the message."""
    if mailbox.provider == "outlook":
        return message_id(stored), conversation_id(stored)
    return stored.id, stored.thread_id


def control_routes(state: EmulatorState) -> list[Route]:
    async def create_mailbox(request: Request) -> Response:
        body = await json_object(request)
        provider = body.get("provider")
        if provider not in KNOWN_PROVIDERS:
            raise ControlError(
                422, "unknown_provider", "provider must be one of: " + ", ".join(KNOWN_PROVIDERS)
            )
        try:
            mailbox, _ = state.ensure_mailbox(str(provider), _string(body, "address"))
        except InvalidAddressError as error:
            raise ControlError(422, "invalid_address", str(error)) from error
        except (ProviderConflictError, UnknownProviderError) as error:
            raise ControlError(409, "provider_conflict", str(error)) from error
        return JSONResponse(mailbox_json(mailbox), status_code=201)

    async def list_mailboxes(_request: Request) -> Response:
        return JSONResponse({"items": [mailbox_json(m) for m in state.mailboxes.values()]})

    async def deliver(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        folder = request.query_params.get("folder", "inbox")
        if folder not in FOLDERS:
            raise ControlError(
                422, "invalid_folder", "folder must be one of: " + ", ".join(FOLDERS)
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "message/rfc822":
            raise ControlError(415, "unsupported_media_type", "Send Content-Type: message/rfc822.")
        raw = await request.body()
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ControlError(413, "message_too_large", "The message is larger than 50 MB.")
        if not raw.strip():
            raise ControlError(422, "empty_message", "The body must be one RFC 822 message.")
        stored = state.deliver(mailbox, raw, folder)
        message, thread = provider_ids(mailbox, stored)
        body = {"id": message, "thread_id": thread, "history_id": str(stored.history_id)}
        return JSONResponse(body, status_code=201)

    async def revoke(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        revoked = state.tokens.revoke_mailbox(mailbox.address)
        return JSONResponse({"address": mailbox.address, "revoked_tokens": revoked})

    async def expire_history(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        mailbox.expire_history()
        return JSONResponse(mailbox_json(mailbox))

    async def expire_access_tokens(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        return JSONResponse({"expired_tokens": state.tokens.expire_access(mailbox.address)})

    async def rotation(request: Request) -> Response:
        mailbox = path_mailbox(state, request)
        enabled = (await json_object(request)).get("enabled")
        if not isinstance(enabled, bool):
            raise ControlError(422, "invalid_body", "enabled must be true or false.")
        mailbox.rotate_refresh_tokens = enabled
        return JSONResponse(mailbox_json(mailbox))

    async def request_counts(_request: Request) -> Response:
        return JSONResponse(
            {"counts": state.requests.counts(), "pushes": state.requests.push_counts()}
        )

    async def request_log(_request: Request) -> Response:
        return JSONResponse({"items": state.requests.entries()})

    async def reset_counts(_request: Request) -> Response:
        state.requests.reset()
        return Response(status_code=204)

    async def register_client(request: Request) -> Response:
        body = await json_object(request)
        if body.get("provider") not in KNOWN_PROVIDERS:
            raise ControlError(
                422, "unknown_provider", "provider must be one of: " + ", ".join(KNOWN_PROVIDERS)
            )
        client = OAuthClient(
            str(body["provider"]), _string(body, "client_id"), _string(body, "client_secret")
        )
        state.tokens.register_client(client)
        return JSONResponse({"provider": client.provider, "client_id": client.client_id}, 201)

    async def settings(request: Request) -> Response:
        if request.method == "PATCH":
            lifetime = (await json_object(request)).get("access_token_lifetime")
            if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime < 1:
                raise ControlError(
                    422, "invalid_body", "access_token_lifetime must be a positive integer."
                )
            state.access_token_lifetime = lifetime
        return JSONResponse({"access_token_lifetime": state.access_token_lifetime})

    async def reset(request: Request) -> Response:
        seed = (await json_object(request, optional=True)).get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ControlError(422, "invalid_body", "seed must be an integer.")
        state.reset(seed=seed)
        return Response(status_code=204)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    box = PREFIX + "/mailboxes/{address}"
    return [
        Route(PREFIX + "/health", health, methods=["GET"]),
        Route(PREFIX + "/mailboxes", create_mailbox, methods=["POST"]),
        Route(PREFIX + "/mailboxes", list_mailboxes, methods=["GET"]),
        Route(box + "/messages", deliver, methods=["POST"]),
        Route(box + "/revoke", revoke, methods=["POST"]),
        Route(box + "/expire-history", expire_history, methods=["POST"]),
        Route(box + "/expire-access-tokens", expire_access_tokens, methods=["POST"]),
        Route(box + "/refresh-token-rotation", rotation, methods=["POST"]),
        *fault_routes(PREFIX + "/faults", state.faults),
        Route(PREFIX + "/requests", request_counts, methods=["GET"]),
        Route(PREFIX + "/requests/reset", reset_counts, methods=["POST"]),
        Route(PREFIX + "/requests/log", request_log, methods=["GET"]),
        Route(PREFIX + "/clients", register_client, methods=["POST"]),
        Route(PREFIX + "/settings", settings, methods=["GET", "PATCH"]),
        Route(PREFIX + "/reset", reset, methods=["POST"]),
    ]
