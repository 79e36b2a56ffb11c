"""MailboxWorkflow: one long-lived workflow per connected mailbox (id `mailbox:{id}`).

Loop: fetch a page into the ledger (which also advances the cursor, in the same transaction),
filter it, make tickets; loop at once while pages wait, else sleep for the poll interval or
until a signal. On AuthExpired the mailbox waits with no timer and no provider call until
`reconnect` or `disconnect`. History stays small through Continue-As-New.

An idle poll is one activity and one timer: filter and create run only when mail came.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.mailbox import MailboxActivities
    from activities.mailbox_types import (
        CreateTicketsInput,
        FetchInput,
        FilterInput,
        SetStatusInput,
    )
    from domain.outcomes import MailboxStatus
    from providers.registry import provider_info
    from workflows.mailbox_state import MailboxInput, MailboxState, SettingsChanged
    from workflows.policies import (
        DATABASE_WRITE_RETRY,
        DATABASE_WRITE_TIMEOUT,
        FETCH_ATTEMPT_TIMEOUT,
        FETCH_GIVE_UP,
        FETCH_HEARTBEAT,
        FETCH_RETRY,
        MAIL_PROCESSING_HEARTBEAT,
        MAIL_PROCESSING_TIMEOUT,
    )

MAILBOX_STATUS = SearchAttributeKey.for_keyword("MailboxStatus")
# Each wait is the interval less up to this share of it, drawn from the workflow's seeded
# random: mailboxes that once polled together (connected in bulk, or held up together by a
# busy worker) drift apart again instead of arriving together every interval, where the
# bunch grows (docs/benchmarks.md, fan-out). Never longer than the interval a person set.
POLL_JITTER = 0.1


def mailbox_workflow_id(mailbox_id: str) -> str:
    return f"mailbox:{mailbox_id}"


@workflow.defn(name="MailboxWorkflow")
class MailboxWorkflow:
    @workflow.init
    def __init__(self, inp: MailboxInput) -> None:
        self.s = inp.state
        self._poll_now = False
        self._settings_changed = False
        self._reconnected = False
        self._disconnected = False

    @workflow.query(name="state")
    def state(self) -> MailboxState:
        return self.s

    @workflow.signal(name="poll_now")
    def poll_now(self) -> None:
        self._poll_now = True

    @workflow.signal(name="settings_changed")
    def settings_changed(self, change: SettingsChanged) -> None:
        if change.poll_interval_seconds:
            self.s.poll_interval_seconds = change.poll_interval_seconds
        self._settings_changed = True

    @workflow.signal(name="reconnect")
    def reconnect(self) -> None:
        self._reconnected = True

    @workflow.signal(name="disconnect")
    def disconnect(self) -> None:
        self._disconnected = True

    @workflow.run
    async def run(self, inp: MailboxInput) -> MailboxState:
        polls_this_run = 0
        while not self._disconnected:
            if self.s.status == MailboxStatus.AUTH_EXPIRED:
                # No timer and no provider call: only a person's consent can help.
                await workflow.wait_condition(lambda: self._reconnected or self._disconnected)
                if self._disconnected:
                    break
                await self._set_status(MailboxStatus.ACTIVE, None)
            # Cleared before the poll, not after: a "poll now" or a settings change that
            # arrives while this poll runs must wake the next one, not be forgotten.
            self._reconnected = self._poll_now = self._settings_changed = False
            more = await self._poll_once()
            polls_this_run += 1
            if self.s.status == MailboxStatus.AUTH_EXPIRED or self._disconnected:
                continue
            if more and not self._disconnected:
                continue  # a backlog: fetch the next page at once
            try:
                await workflow.wait_condition(
                    lambda: (
                        self._poll_now
                        or self._settings_changed
                        or self._reconnected
                        or self._disconnected
                    ),
                    timeout=self._next_wait(),
                    timeout_summary="poll interval",
                )
            except TimeoutError:
                pass
            # Checked after the sleep, so the next run does not poll again at once.
            if (
                workflow.info().is_continue_as_new_suggested()
                or polls_this_run >= inp.polls_per_run
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not (self._disconnected or self._reconnected or self._poll_now):
                    workflow.continue_as_new(MailboxInput(self.s, inp.polls_per_run))
        # The database row was marked by the API; the search attribute tells operators.
        workflow.upsert_search_attributes([MAILBOX_STATUS.value_set(MailboxStatus.DISCONNECTED)])
        self.s.status = MailboxStatus.DISCONNECTED
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.s

    def _next_wait(self) -> timedelta:
        interval = self.s.poll_interval_seconds
        # Runs recorded before the jitter keep their exact timers when they replay.
        if not workflow.patched("poll-jitter"):
            return timedelta(seconds=interval)
        return timedelta(seconds=interval * (1 - POLL_JITTER * workflow.random().random()))

    async def _poll_once(self) -> bool:
        """One page: returns whether more pages wait."""
        try:
            fetched = await workflow.execute_activity_method(
                MailboxActivities.fetch_new_mail,
                FetchInput(self.s.mailbox_id),
                start_to_close_timeout=FETCH_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=FETCH_GIVE_UP,
                heartbeat_timeout=FETCH_HEARTBEAT,
                retry_policy=FETCH_RETRY,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == "AuthExpired":
                words = provider_info(self.s.provider).auth_expired_words()
                await self._set_status(MailboxStatus.AUTH_EXPIRED, words)
                return False
            self.s.last_error = _words_for_failure(cause)
            await self._set_status(MailboxStatus.ACTIVE, self.s.last_error)
            return False
        self.s.polls += 1
        self.s.last_poll_at = workflow.now().isoformat()
        self.s.cursor = fetched.cursor
        if fetched.ledger_ids:
            await self._process(fetched.ledger_ids)
        if self.s.last_error is not None:
            self.s.last_error = None
        if fetched.more and fetched.retry_after_seconds:
            # The provider throttled part of the page: honour its pause before the next one.
            await workflow.sleep(timedelta(seconds=fetched.retry_after_seconds))
        return fetched.more

    async def _process(self, ledger_ids: list[str]) -> None:
        # Runs recorded before the filters moved into `create_tickets` filter first, as
        # they did; since then one activity decides and writes every email of the page.
        if not workflow.patched("one-step-ingest"):
            filtered = await workflow.execute_activity_method(
                MailboxActivities.filter_mail,
                FilterInput(self.s.mailbox_id, ledger_ids),
                start_to_close_timeout=MAIL_PROCESSING_TIMEOUT,
                heartbeat_timeout=MAIL_PROCESSING_HEARTBEAT,
                retry_policy=DATABASE_WRITE_RETRY,
            )
            self.s.counts.skipped += filtered.skipped
            ledger_ids = filtered.accepted_ids
            if not ledger_ids:
                return
        made = await workflow.execute_activity_method(
            MailboxActivities.create_tickets,
            CreateTicketsInput(self.s.mailbox_id, ledger_ids),
            start_to_close_timeout=MAIL_PROCESSING_TIMEOUT,
            heartbeat_timeout=MAIL_PROCESSING_HEARTBEAT,
            retry_policy=DATABASE_WRITE_RETRY,
        )
        self.s.counts.add(made)

    async def _set_status(self, status: MailboxStatus, last_error: str | None) -> None:
        await workflow.execute_activity_method(
            MailboxActivities.set_mailbox_status,
            SetStatusInput(self.s.mailbox_id, status, last_error),
            start_to_close_timeout=DATABASE_WRITE_TIMEOUT,
            retry_policy=DATABASE_WRITE_RETRY,
        )
        if status != self.s.status:
            workflow.upsert_search_attributes([MAILBOX_STATUS.value_set(status)])
        self.s.status = status
        self.s.last_error = last_error


def _words_for_failure(cause: BaseException | None) -> str:
    kind = cause.type if isinstance(cause, ApplicationError) else None
    if kind == "Throttled":
        return "The mail provider asked us to slow down; polling will resume shortly."
    return "The mail provider did not answer; we will keep trying."
