"""What the Sources buttons check before `api.mailbox_service` does the work: the connect form
and a card's settings, worded for the person who typed them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.requests import Request

from api import mailbox_service
from api.errors import ApiError
from api.pages.imap_form import IMAP, ImapConnection
from api.routes.mailboxes import ConnectRequest
from domain import poll_interval
from domain.senders import parse_allowed_senders
from store.models import Agent, Mailbox


class ConnectRefused(Exception):
    """The connect form cannot go on; the message is for the person who pressed the button."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the form field at fault, if one is


class ImapRefused(Exception):
    """The connection test failed; `code` is the API's (`imap_auth_failed`, ...), the message
    a sentence for the person who typed the settings."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def connect_imap(request: Request, agent: Agent, connection: ImapConnection) -> Mailbox:
    """A new IMAP mailbox once its connection test passed; `ImapRefused` when it did not."""
    try:
        return await mailbox_service.connect_with_password(
            request,
            agent,
            IMAP,
            connection.address,
            connection.server(),
            connection.password,
        )
    except ApiError as error:
        raise _refused(error) from error


async def reconnect_imap(request: Request, agent: Agent, mailbox: Mailbox, password: str) -> None:
    """The IMAP mailbox with a new password, every setting kept; `ImapRefused` on failure."""
    try:
        await mailbox_service.reconnect_with_password(request, agent, mailbox, password)
    except ApiError as error:
        raise _refused(error) from error


def _refused(error: ApiError) -> Exception:
    """The connection test's refusal (422) goes to the form; anything else (a mailbox
    disconnected meanwhile, secrets not configured) to the error page, as it came."""
    return ImapRefused(error.code, error.message) if error.status == 422 else error


async def start_connect(request: Request, agent: Agent, provider: str, login_hint: str) -> str:
    """The provider's consent URL for a new mailbox."""
    try:
        body = ConnectRequest.model_validate(
            {"provider": provider, "login_hint": login_hint.strip() or None}
        )
    except ValidationError as error:
        fields = {str(e["loc"][0]) for e in error.errors(include_url=False)}
        if "login_hint" in fields:
            raise ConnectRefused(
                "Enter the whole email address of the account, like support@example.com, "
                "or leave the box empty.",
                field="login_hint",
            ) from error
        raise ConnectRefused("Choose Google or Outlook.") from error
    return await mailbox_service.start_connect(request, agent, body.provider, body.login_hint)


@dataclass
class SettingsForm:
    """What was typed into a card's settings, checked; `errors` by field when not valid."""

    senders_text: str
    interval_text: str
    senders: list[str] = field(default_factory=list)
    interval: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def check(cls, senders_text: str, interval_text: str) -> SettingsForm:
        form = cls(senders_text, interval_text)
        lines = [(n, line) for n, line in enumerate(senders_text.splitlines(), 1) if line.strip()]
        problems = []
        for number, line in lines:
            try:
                parse_allowed_senders([line])
            except ValueError as error:
                problems.append(f"Line {number}: {error}.")
        if problems:
            form.errors["allowed_senders"] = " ".join(problems)
        else:
            form.senders = parse_allowed_senders([line for _, line in lines])
        try:
            form.interval = poll_interval.parse(interval_text)
        except ValueError:
            form.errors["poll_interval_seconds"] = (
                f"Enter a whole number of seconds from {poll_interval.MIN_SECONDS} "
                f"to {poll_interval.MAX_SECONDS}."
            )
        return form
