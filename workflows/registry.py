"""`WORKFLOWS`, the worker's only list of workflows."""

from __future__ import annotations

from workflows.intake import IntakeWorkflow
from workflows.mailbox import MailboxWorkflow
from workflows.webhooks import WebhookDispatcher

WORKFLOWS: list[type] = [IntakeWorkflow, MailboxWorkflow, WebhookDispatcher]
