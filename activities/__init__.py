"""Thin I/O shells called by the workflows. `build_activities` is the worker's only list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from activities.intake import IntakeActivities
from activities.mailbox import MailboxActivities
from activities.webhooks import WebhookActivities
from core.crypto import Cipher
from core.settings import Settings
from providers.cache import ProviderFactory
from providers.registry import build_provider


def build_activities(
    engine: Engine, settings: Settings, provider_factory: ProviderFactory = build_provider
) -> list[Callable[..., Any]]:
    intake = IntakeActivities(engine)
    cipher = Cipher.from_settings(settings) if settings.secret_key else None
    mailbox = MailboxActivities(engine, settings, cipher, provider_factory)
    return [
        intake.create_ticket,
        mailbox.fetch_new_mail,
        mailbox.filter_mail,
        mailbox.create_tickets,
        mailbox.set_mailbox_status,
        mailbox.keep_push,
        mailbox.release_mailbox,
    ]


def build_webhook_activities(engine: Engine, settings: Settings) -> WebhookActivities:
    """The delivery activities, for the worker on `settings.webhook_task_queue`; their HTTP
    connection pool is closed with `aclose()` when that worker stops."""
    cipher = Cipher.from_settings(settings) if settings.secret_key else None
    return WebhookActivities(engine, settings, cipher)
