"""What a Gmail API handler gets: the authenticated mailbox and the request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from emulator.state import EmulatorState, Mailbox, StoredMessage
from emulator.tokens import AccessToken

_SCOPE = "https://www.googleapis.com/auth/"
METADATA_SCOPE = _SCOPE + "gmail.metadata"
#: Any of these lets a token read mail (headers only with the metadata scope).
READ_SCOPES = frozenset(
    {_SCOPE + "gmail.readonly", _SCOPE + "gmail.modify", "https://mail.google.com/", METADATA_SCOPE}
)
#: Gmail message and thread ids are hex; anything else is a 400, not a 404.
HEX_ID = re.compile(r"^[0-9a-f]{1,16}$")


class GmailError(Exception):
    """Raised by handlers; answered with Google's error body."""

    def __init__(self, status: int, message: str | None = None, reason: str | None = None) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message
        self.reason = reason


def invalid_argument(message: str) -> GmailError:
    return GmailError(400, message, "invalidArgument")


@dataclass(frozen=True)
class GmailContext:
    state: EmulatorState
    mailbox: Mailbox
    token: AccessToken
    params: dict[str, str]
    query: QueryParams
    body: bytes = b""

    @property
    def metadata_only(self) -> bool:
        """Whether the token's only Gmail scope is `gmail.metadata`."""
        return not (set(self.token.scope.split()) & READ_SCOPES) - {METADATA_SCOPE}

    def message(self, message_id: str) -> StoredMessage:
        if not HEX_ID.match(message_id):
            raise invalid_argument("Invalid id value")
        found = self.mailbox.messages.get(message_id)
        if found is None:
            raise GmailError(404)
        return found

    def max_results(self, default: int, cap: int) -> int:
        """`maxResults`, silently capped like Gmail does."""
        raw = self.query.get("maxResults")
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) < 1:
            raise invalid_argument(f"Invalid value for maxResults: {raw}")
        return min(int(raw), cap)
