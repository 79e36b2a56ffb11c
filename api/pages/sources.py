"""Tickets > Sources: one card per mailbox, connecting, settings, polling, the ledger."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from api import mailbox_control, mailbox_service
from api.deps import db, resources
from api.pages import actions
from api.pages.live import live_url
from api.pages.present import OUTCOMES, MailboxCard, sentence
from api.pages.queries import LEDGER_OUTCOMES, ledger_page, mailbox_rows
from api.pages.web import Page, json_endpoint, page
from providers.registry import PROVIDERS
from store.models import Mailbox

# Notices after a redirect, by key: the query string never carries text onto the page.
NOTICES = {
    "saved": "Settings saved. They apply from the next check.",
    "polling": "Checking for new mail now.",
    "disconnected": "Mailbox disconnected. Its tickets stay in the queue.",
}
ACTIVITY_PAGE = 50
LIVE_TIMEOUT = 1.0


async def _live_poll_time(p: Page, mailbox_id: str) -> datetime | None:
    """The workflow's own last poll time: an idle poll writes nothing to the database."""
    try:
        state = await asyncio.wait_for(
            mailbox_control.live_state(resources(p.request).temporal, mailbox_id), LIVE_TIMEOUT
        )
    except TimeoutError:
        return None
    if state is None or not state.last_poll_at:
        return None
    return datetime.fromisoformat(state.last_poll_at)


async def _cards(p: Page) -> list[MailboxCard]:
    rows = await db(p.request, lambda s: mailbox_rows(s, p.agent.id))
    live = await asyncio.gather(*(_live_poll_time(p, row.mailbox.id) for row in rows))
    safety = resources(p.request).settings.push_safety_poll_seconds
    return [MailboxCard.of(row, safety, polled) for row, polled in zip(rows, live, strict=True)]


async def _mailbox(p: Page) -> Mailbox | None:
    return await mailbox_service.owned(p.request, p.agent, p.request.path_params["mailbox_id"])


def _not_found(p: Page) -> Response:
    return p.render(
        "pages/problem.html",
        status_code=404,
        title="Mailbox not found",
        detail="It may have been disconnected. Its tickets stay in the queue.",
    )


async def _sources_page(
    p: Page,
    *,
    status_code: int = 200,
    connect_error: str | None = None,
    connect_field: str | None = None,
    login_hint: str = "",
    settings_errors: dict[str, Any] | None = None,
) -> Response:
    """`settings_errors`: {"mailbox": id, "form": actions.SettingsForm} to show on that card."""
    cards = await _cards(p)
    notice = NOTICES.get(p.request.query_params.get("done", ""))
    return p.render(
        "pages/sources.html",
        status_code=status_code,
        section="sources",
        tab="mailboxes",
        connect_providers=[p for p in PROVIDERS.values() if p.sign_in == "oauth"],
        cards=cards,
        notice=notice,
        connect_error=connect_error,
        hint_invalid=connect_field == "login_hint",
        login_hint=login_hint,
        settings_errors=settings_errors or {},
        live_url=await live_url(p.request, p.agent.id),
    )


@page
async def sources(p: Page) -> Response:
    return await _sources_page(p)


@page
async def connect(p: Page) -> Response:
    login_hint = p.field("login_hint")
    try:
        url = await actions.start_connect(p.request, p.agent, p.field("provider"), login_hint)
    except actions.ConnectRefused as refused:
        return await _sources_page(
            p,
            status_code=422,
            connect_error=str(refused),
            connect_field=refused.field,
            login_hint=login_hint,
        )
    return RedirectResponse(url, status_code=303)


@page
async def reconnect(p: Page) -> Response:
    mailbox = await _mailbox(p)
    if mailbox is None:
        return _not_found(p)
    return RedirectResponse(
        await mailbox_service.start_reconnect(p.request, p.agent, mailbox), status_code=303
    )


@page
async def save_settings(p: Page) -> Response:
    mailbox = await _mailbox(p)
    if mailbox is None:
        return _not_found(p)
    form = actions.SettingsForm.check(p.field("allowed_senders"), p.field("poll_interval_seconds"))
    if form.errors:
        return await _sources_page(
            p, status_code=422, settings_errors={"mailbox": mailbox.id, "form": form}
        )
    await mailbox_service.change_settings(
        p.request,
        p.agent,
        mailbox,
        allowed_senders=form.senders,
        poll_interval_seconds=form.interval,
    )
    return RedirectResponse(f"/sources?done=saved#mailbox-{mailbox.id}", status_code=303)


@page
async def poll(p: Page) -> Response:
    mailbox = await _mailbox(p)
    if mailbox is None:
        return _not_found(p)
    await mailbox_service.poll_now(p.request, mailbox)
    return RedirectResponse(f"/sources?done=polling#mailbox-{mailbox.id}", status_code=303)


@page
async def disconnect(p: Page) -> Response:
    mailbox = await _mailbox(p)
    if mailbox is None:
        return _not_found(p)
    await mailbox_service.disconnect(p.request, p.agent, mailbox)
    return RedirectResponse("/sources?done=disconnected", status_code=303)


@page
async def activity(p: Page) -> Response:
    mailbox = await _mailbox(p)
    if mailbox is None:
        return _not_found(p)
    params = p.request.query_params
    outcome = params.get("outcome") or None
    if outcome not in (None, *LEDGER_OUTCOMES):
        outcome = None
    before = params.get("before") or None
    mailbox_id = mailbox.id
    found = await db(
        p.request,
        lambda s: ledger_page(
            s,
            p.agent.id,
            mailbox_id,
            outcome=outcome,
            limit=ACTIVITY_PAGE,
            before_id=before,
        ),
    )
    return p.render(
        "pages/activity.html",
        section="sources",
        mailbox=mailbox,
        ledger=found,
        outcome=outcome,
        outcomes=OUTCOMES,
        paged=before is not None,
        sentence=sentence,
    )


@json_endpoint
async def status(p: Page) -> Response:
    cards = await _cards(p)
    return JSONResponse({"items": [card.status_json() for card in cards]})


routes = [
    Route("/sources", sources, methods=["GET"]),
    Route("/sources/status.json", status, methods=["GET"]),
    Route("/sources/connect", connect, methods=["POST"]),
    Route("/sources/{mailbox_id}/settings", save_settings, methods=["POST"]),
    Route("/sources/{mailbox_id}/poll", poll, methods=["POST"]),
    Route("/sources/{mailbox_id}/reconnect", reconnect, methods=["POST"]),
    Route("/sources/{mailbox_id}/disconnect", disconnect, methods=["POST"]),
    Route("/sources/{mailbox_id}/activity", activity, methods=["GET"]),
]
