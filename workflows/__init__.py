"""Deterministic orchestration. `WORKFLOWS` is the worker's only list."""

from __future__ import annotations

from workflows.intake import IntakeWorkflow
from workflows.mailbox import MailboxWorkflow

WORKFLOWS: list[type] = [IntakeWorkflow, MailboxWorkflow]
