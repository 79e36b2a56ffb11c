"""`WORKFLOWS`, the worker's only list of workflows."""

from __future__ import annotations

from workflows.intake import IntakeWorkflow
from workflows.mailbox import MailboxWorkflow

WORKFLOWS: list[type] = [IntakeWorkflow, MailboxWorkflow]
