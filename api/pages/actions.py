"""What the Sources buttons check before `api.mailbox_service` does the work: the connect form
and a card's settings, worded for the person who typed them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.requests import Request

from api import mailbox_service
from api.routes.mailboxes import ConnectRequest
from domain import poll_interval
from domain.senders import parse_allowed_senders
from store.models import Agent


class ConnectRefused(Exception):
    """The connect form cannot go on; the message is for the person who pressed the button."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the form field at fault, if one is


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
