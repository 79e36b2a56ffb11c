"""What the Sources buttons do. The same steps as the JSON API's handlers
(`api/routes/mailboxes.py`), from the same parts: its OAuth start, `store.mailboxes`, the
sender rule of `domain/` and `api.mailbox_control`; only the caller is the browser session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlmodel import Session
from starlette.requests import Request

from api import mailbox_control
from api.deps import db, resources
from api.errors import ApiError
from api.routes.mailboxes import MAX_INTERVAL, MIN_INTERVAL, ConnectRequest, _authorization_url
from domain.senders import parse_allowed_senders
from store import mailboxes
from store.models import Agent, Mailbox
from workflows.mailbox_state import SettingsChanged


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
    return await _authorization_url(request, agent, body.provider, body.login_hint, None)


async def start_reconnect(request: Request, agent: Agent, mailbox: Mailbox) -> str:
    """The consent URL for this card's own account; completing it keeps every setting."""
    return await _authorization_url(request, agent, mailbox.provider, mailbox.address, mailbox.id)


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
        raw = interval_text.strip()
        if not raw.isdigit() or not MIN_INTERVAL <= int(raw) <= MAX_INTERVAL:
            form.errors["poll_interval_seconds"] = (
                f"Enter a whole number of seconds from {MIN_INTERVAL} to {MAX_INTERVAL}."
            )
        else:
            form.interval = int(raw)
        return form


async def save_settings(
    request: Request, agent: Agent, mailbox: Mailbox, form: SettingsForm
) -> Mailbox:
    def update(session: Session) -> Mailbox:
        row = mailboxes.get(session, agent.id, mailbox.id)
        if row is None or row.status == "disconnected":
            raise ApiError(404, "not_found", "This mailbox was disconnected in the meantime.")
        return mailboxes.update_settings(
            session, row, allowed_senders=form.senders, poll_interval_seconds=form.interval
        )

    updated = await db(request, update)
    res = resources(request)
    # Senders are read from the database at each filtering; the interval lives in the workflow.
    await mailbox_control.signal(
        res.temporal,
        res.settings,
        updated,
        "settings_changed",
        SettingsChanged(poll_interval_seconds=form.interval),
    )
    return updated


async def poll_now(request: Request, mailbox: Mailbox) -> None:
    if mailbox.status == "auth_expired":
        raise ApiError(409, "auth_expired", "This mailbox must be reconnected before it can poll.")
    res = resources(request)
    await mailbox_control.signal(res.temporal, res.settings, mailbox, "poll_now")


async def disconnect(request: Request, agent: Agent, mailbox: Mailbox) -> None:
    def mark(session: Session) -> None:
        row = mailboxes.get(session, agent.id, mailbox.id)
        if row is not None and row.status != "disconnected":
            mailboxes.set_status(session, row, "disconnected")

    # The database first: a workflow that outlives a failed signal finds nothing to read.
    await db(request, mark)
    await mailbox_control.disconnect(resources(request).temporal, mailbox)
