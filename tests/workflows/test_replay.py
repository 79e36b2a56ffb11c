"""Recorded histories replay on today's workflow code: a change that would break running
mailboxes (non-determinism) fails here, before it reaches them. See record_histories.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from worker import WORKFLOW_RUNNER
from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER).replay_workflow(history)


def test_there_are_histories_to_replay() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "mailbox_poll_expire_reconnect",
        # Recorded before poll jitter: mailboxes running since then must replay unchanged.
        "mailbox_poll_expire_reconnect_before_poll_jitter",
        "intake_form",
    }
