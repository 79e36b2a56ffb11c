"""MailboxWorkflow: one long-lived workflow per connected mailbox (id `mailbox:{id}`).

Loop: fetch a page into the ledger (which also advances the cursor, in the same transaction),
make tickets of it; loop at once while pages wait (the next page is fetched while the one
before becomes tickets), else sleep for the poll interval or until a signal. On AuthExpired
the mailbox waits with no timer and no provider call until `reconnect` or `disconnect`.
History stays small through Continue-As-New.

Push (CONTRACT.md §5): where the deployment has it, the workflow keeps a Gmail watch or a Graph
subscription (set up at start and on Reconnect, renewed daily on its timer, replaced when it
proved broken, stopped on disconnect). A notification is only `poll_now`; while push is live
the interval is the safety net's. An idle poll is one activity and one timer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.mailbox import MailboxActivities
    from activities.mailbox_types import (
        CreateTicketsInput,
        FetchInput,
        FilterInput,
        KeepPushInput,
        SetStatusInput,
    )
    from domain import push as push_timing
    from domain.outcomes import MailboxStatus, PushState
    from domain.push import PushStatus

    # Named here, not only through activities.mailbox_types: the sandbox resolves a result
    # dataclass's type hints in its defining module, which must be among its modules.
    from ingest.fetch import FetchResult
    from providers.registry import provider_info
    from workflows.mailbox_state import (
        POLLS_PER_RUN,
        MailboxInput,
        MailboxState,
        PollRequest,
        PushEvent,
        SettingsChanged,
    )
    from workflows.policies import (
        DATABASE_WRITE_RETRY,
        DATABASE_WRITE_TIMEOUT,
        FETCH_ATTEMPT_TIMEOUT,
        FETCH_GIVE_UP,
        FETCH_HEARTBEAT,
        FETCH_LOCAL_RETRY_THRESHOLD,
        FETCH_RETRY,
        MAIL_PROCESSING_HEARTBEAT,
        MAIL_PROCESSING_TIMEOUT,
        PUSH_RETRY,
        PUSH_TIMEOUT,
    )

MAILBOX_STATUS = SearchAttributeKey.for_keyword("MailboxStatus")
MAILBOX_PUSH = SearchAttributeKey.for_keyword("MailboxPush")
# Each wait is the interval less up to this share of it, drawn from the workflow's seeded
# random: mailboxes that once polled together (connected in bulk, or held up together by a
# busy worker) drift apart again instead of arriving together every interval, where the
# bunch grows (docs/benchmarks.md, fan-out). Never longer than the interval a person set.
POLL_JITTER = 0.1
# A page of this many emails or fewer (a pushed one, an idle mailbox's few) is made into
# tickets by the fetch activity itself: one activity per poll instead of two. A backlog's
# pages go to `create_tickets`, with its own timeout and heartbeats.
INLINE_TICKETS = 25
# A poll's own page is small; if more is waiting, the next pages (FetchInput's size) are
# fetched ahead while the one before becomes tickets. A new backlog's first tickets come
# sooner, the pipeline fills sooner, and the local activity holds its workflow task briefly.
FIRST_PAGE = 50


def mailbox_workflow_id(mailbox_id: str) -> str:
    return f"mailbox:{mailbox_id}"


@workflow.defn(name="MailboxWorkflow")
class MailboxWorkflow:
    @workflow.init
    def __init__(self, inp: MailboxInput) -> None:
        self.s = inp.state
        self._poll_now = False
        self._poll_reason = "person"
        self._notified_at: str | None = None  # the earliest pending notification's
        self._notified_last: str | None = None  # the latest's
        self._settings_changed = False
        self._reconnected = False
        self._disconnected = False
        # Push upkeep due: at a run's start unless push is live and its renewal lies ahead.
        self._push_check = self.s.push.state != PushState.LIVE or self.s.push_renew_at is None
        self._push_replace = False
        self._follow_up_at: datetime | None = None
        # The supervisor's `state` signals so far: a poll's reading of its recorded state is
        # older than any signal that came while the poll ran, and then not adopted.
        self._push_reports = 0
        # A backlog's next page, being fetched while this one's tickets are made, with the
        # `_push_reports` count when it started.
        self._ahead: tuple[asyncio.Task[FetchResult], int] | None = None

    @workflow.query(name="state")
    def state(self) -> MailboxState:
        return self.s

    @workflow.signal(name="poll_now")
    def poll_now(self, request: PollRequest | None = None) -> None:
        """A person's button, or a provider's notification (`reason="push"`): either way
        only a hint to read through the cursor now. Many coalesce into one poll."""
        if not self._poll_now:
            self._poll_reason = "person"
        if request is not None and request.reason == "push":
            if not self._poll_now:
                self._poll_reason = "push"
            self._notified_at = self._notified_at or request.notified_at
            self._notified_last = request.notified_at or self._notified_last
            self.s.last_notification_at = request.notified_at or self.s.last_notification_at
        self._poll_now = True

    @workflow.signal(name="push_event")
    def push_event(self, event: PushEvent) -> None:
        """Graph's lifecycle notifications for the mailbox's subscription, or the IDLE
        supervisor's word on its connection."""
        if event.event == "state":
            self._push_reported(event)
            return
        if event.event == "reauthorizationRequired":
            self._push_check = True  # renewing reauthorizes it
        elif event.event == "subscriptionRemoved":
            self._push_replace = True  # a new one, then a poll for what was missed
        self._poll_now = True  # "missed" (and the others): read through the cursor now
        self._poll_reason = "person"

    def _push_reported(self, event: PushEvent) -> None:
        """An IMAP IDLE connection came up, failed or was found impossible: the state shows
        on the query and the search attribute at once (the supervisor wrote the database).
        A changed state wakes a poll, which then sleeps for the interval the new state calls
        for; so does every `live` (an IDLE session that just began, after a worker restart
        too): mail that came while nobody watched announced itself to nobody."""
        if event.state is None:
            return
        self._push_reports += 1
        safety = event.safety_poll_seconds or self.s.push.safety_poll_seconds
        status = PushStatus(event.state, error=event.error, safety_poll_seconds=safety)
        if self._adopt_push(status) or status.state == PushState.LIVE:
            self._poll_now = True
            self._poll_reason = "person"

    def _adopt_push(self, status: PushStatus) -> bool:
        """The push as the IDLE supervisor has it; True if its state changed."""
        changed = status.state != self.s.push.state
        if changed:
            workflow.upsert_search_attributes([MAILBOX_PUSH.value_set(status.state)])
        self.s.push = status
        return changed

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
        # Runs recorded before push keep their exact commands when they replay.
        pushing = workflow.patched("push")
        trigger = "start"
        while not self._disconnected:
            if self.s.status == MailboxStatus.AUTH_EXPIRED:
                await self._drop_ahead()
                # No timer and no provider call: only a person's consent can help.
                await workflow.wait_condition(lambda: self._reconnected or self._disconnected)
                if self._disconnected:
                    break
                await self._set_status(MailboxStatus.ACTIVE, None)
                self._push_check = True  # push paused with the mailbox; Reconnect restores it
                trigger = "reconnect"  # a fresh start, not a backlog's next page: spend the flags
            if pushing and (self._push_check or self._push_replace or self._renewal_due()):
                await self._keep_push()
                if self.s.status == MailboxStatus.AUTH_EXPIRED:
                    continue
            notified_at = self._notified_at if trigger == "push" else None
            notified_last = self._notified_last if trigger == "push" else None
            if trigger != "backlog" or not workflow.patched("backlog-keeps-wakeups"):
                # Cleared before the poll, not after: a "poll now" or a settings change that
                # arrives while this poll runs must wake the next one, not be forgotten. Not
                # between a backlog's pages: the next page may have been read already (fetched
                # ahead), and Graph's later pages of a round never show newer mail anyway.
                self._reconnected = self._poll_now = self._settings_changed = False
                self._notified_at = self._notified_last = None
            poll_started = workflow.now()
            fetched = await self._poll_once(notified_at)
            polls_this_run += 1
            if self.s.status == MailboxStatus.AUTH_EXPIRED or self._disconnected:
                continue
            if pushing and fetched is not None:
                await self._after_poll(trigger, fetched.fetched, poll_started, notified_last)
            if fetched is not None and fetched.more and not self._disconnected:
                trigger = "backlog"
                continue  # a backlog: fetch the next page at once
            trigger = await self._sleep(pushing)
            # Checked after the sleep, so the next run does not poll again at once.
            if (
                workflow.info().is_continue_as_new_suggested()
                or polls_this_run >= inp.polls_per_run
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not (self._disconnected or self._reconnected or self._poll_now):
                    # Runs started with a longer run take today's bound from their next.
                    polls = min(inp.polls_per_run, POLLS_PER_RUN)
                    workflow.continue_as_new(MailboxInput(self.s, polls))
        await self._drop_ahead()
        if pushing:
            await self._release()
        # The database row was marked by the API; the search attribute tells operators.
        workflow.upsert_search_attributes([MAILBOX_STATUS.value_set(MailboxStatus.DISCONNECTED)])
        self.s.status = MailboxStatus.DISCONNECTED
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.s

    async def _sleep(self, pushing: bool) -> str:
        """Until the next poll is due or a signal comes; says what woke it: "push" or
        "person" (poll_now), "signal", "follow_up", "renewal", or "timer" (the interval)."""
        now = workflow.now()
        poll_at = now + self._next_wait()
        deadline = poll_at
        renew_at = self._renew_at() if pushing else None
        for moment in (self._follow_up_at, renew_at):
            if moment is not None:
                deadline = min(deadline, moment)
        try:
            await workflow.wait_condition(
                lambda: (
                    self._poll_now
                    or self._settings_changed
                    or self._reconnected
                    or self._disconnected
                ),
                timeout=max(deadline - now, timedelta(0)),
                timeout_summary="poll interval",
            )
        except TimeoutError:
            now = workflow.now()
            if self._follow_up_at is not None and now >= self._follow_up_at:
                self._follow_up_at = None
                return "follow_up"
            return "renewal" if renew_at is not None and now >= renew_at else "timer"
        if self._poll_now:
            return self._poll_reason
        return "signal"

    def _next_wait(self) -> timedelta:
        interval = push_timing.poll_interval(
            self.s.poll_interval_seconds, self.s.push.state, self.s.push.safety_poll_seconds
        )
        # Runs recorded before the jitter keep their exact timers when they replay.
        if not workflow.patched("poll-jitter"):
            return timedelta(seconds=interval)
        return timedelta(seconds=interval * (1 - POLL_JITTER * workflow.random().random()))

    def _renew_at(self) -> datetime | None:
        at = self.s.push_renew_at
        return datetime.fromisoformat(at) if at else None

    def _renewal_due(self) -> bool:
        at = self._renew_at()
        return at is not None and workflow.now() >= at

    async def _keep_push(self) -> None:
        """Set up, renew or replace the push; a failure leaves the mailbox polling as before
        and is tried again later (`push_timing.RETRY_FAILED`)."""
        replace, self._push_check, self._push_replace = self._push_replace, False, False
        if provider_info(self.s.provider).push_kind == "imap_idle":
            return  # held by the worker's IDLE supervisor, which reports it (`push_event`)
        try:
            status = await workflow.execute_activity_method(
                MailboxActivities.keep_push,
                KeepPushInput(self.s.mailbox_id, replace),
                start_to_close_timeout=PUSH_TIMEOUT,
                retry_policy=PUSH_RETRY,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == "AuthExpired":
                words = provider_info(self.s.provider).auth_expired_words()
                await self._set_status(MailboxStatus.AUTH_EXPIRED, words)
                return
            status = PushStatus(
                PushState.FAILED,
                error=_words_for_failure(cause),
                safety_poll_seconds=self.s.push.safety_poll_seconds,
            )
        if status.state != self.s.push.state:
            workflow.upsert_search_attributes([MAILBOX_PUSH.value_set(status.state)])
        self.s.push = status
        renew = push_timing.renew_at(workflow.now(), status.expires, status.state)
        self.s.push_renew_at = renew.isoformat() if renew else None

    async def _after_poll(
        self, trigger: str, fetched: int, poll_started: datetime, notified_last: str | None
    ) -> None:
        """What a poll says about push: mail that came in the second after a notification may
        have had its own dropped (Gmail sends one a second), so look once more at that
        second's end if this poll came before it; mail found by the safety net that no
        notification announced means push is broken."""
        if self.s.push.state != PushState.LIVE or fetched == 0:
            return
        if trigger == "push":
            self._follow_up_at = push_timing.follow_up_at(
                datetime.fromisoformat(notified_last) if notified_last else None,
                poll_started,
                provider_info(self.s.provider).push_min_interval_seconds,
            )
        elif trigger == "timer":
            self._push_replace = True
            await self._keep_push()

    async def _release(self) -> None:
        """Stop the push with the mailbox's credentials, then drop them (best effort: a push
        nobody renews lapses within days by itself)."""
        try:
            await workflow.execute_activity_method(
                MailboxActivities.release_mailbox,
                self.s.mailbox_id,
                start_to_close_timeout=PUSH_TIMEOUT,
                retry_policy=PUSH_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("mailbox %s: push not released", self.s.mailbox_id)

    async def _poll_once(self, notified_at: str | None = None) -> FetchResult | None:
        """One page (None when the provider failed): the one fetched ahead, if there is one."""
        try:
            if self._ahead is not None:
                (fetching, reports), self._ahead = self._ahead, None
                fetched = await fetching
            else:
                reports = self._push_reports
                fetched = await self._fetch(
                    FetchInput(
                        self.s.mailbox_id,
                        # Replay compares no activity's input: no patch for the size.
                        max_messages=FIRST_PAGE,
                        notified_at=notified_at,
                        make_tickets_up_to=INLINE_TICKETS,
                    )
                )
        except (ActivityError, ApplicationError) as error:
            # A local activity's failure comes as its ApplicationError itself, not wrapped.
            cause = error.cause if isinstance(error, ActivityError) else error
            if isinstance(cause, ApplicationError) and cause.type == "AuthExpired":
                words = provider_info(self.s.provider).auth_expired_words()
                await self._set_status(MailboxStatus.AUTH_EXPIRED, words)
                return None
            self.s.last_error = _words_for_failure(cause)
            await self._set_status(MailboxStatus.ACTIVE, self.s.last_error)
            return None
        self.s.polls += 1
        self.s.last_poll_at = workflow.now().isoformat()
        self.s.cursor = fetched.cursor
        if fetched.watch is not None and reports == self._push_reports:
            self._adopt_push(fetched.watch)
        if fetched.made is not None:
            self.s.counts.add(fetched.made)
        if fetched.ledger_ids:
            if fetched.more and not fetched.retry_after_seconds and workflow.patched("fetch-ahead"):
                self._fetch_ahead()
            await self._process(fetched.ledger_ids)
        if self.s.last_error is not None:
            self.s.last_error = None
        if fetched.more and fetched.retry_after_seconds:
            # The provider throttled part of the page: honour its pause before the next one.
            await workflow.sleep(timedelta(seconds=fetched.retry_after_seconds))
        return fetched

    def _fetch_ahead(self) -> None:
        """A backlog's next page is read from the provider while this one's tickets are made:
        the two wait on different things (the provider; the database and the MIME parser).
        Its emails are still made into tickets after this page's, in order, and none by the
        fetch itself (no `make_tickets_up_to`): a reply must find the ticket made of the
        email it answers. A normal activity, not a local one: a workflow task with a local
        activity running is not completed, so `create_tickets` would not be scheduled until
        the fetch had finished."""
        ahead = FetchInput(self.s.mailbox_id, carry_pending=False)
        fetching = self._fetch(ahead, local=False)
        self._ahead = (asyncio.create_task(fetching), self._push_reports)

    async def _drop_ahead(self) -> None:
        """A page fetched ahead that will not be made into tickets now (the mailbox stopped
        or lost its login meanwhile): its rows wait in the ledger as pending, and the next
        poll that carries pending rows hands them over."""
        if self._ahead is None:
            return
        (fetching, _), self._ahead = self._ahead, None
        try:
            await fetching
        except (ActivityError, ApplicationError):
            pass  # the next poll reads through the cursor, which only moves with stored mail

    async def _fetch(self, fetch: FetchInput, *, local: bool = True) -> FetchResult:
        if local and workflow.patched("local-fetch"):
            # A local activity: run by this worker inside the workflow task, so a poll
            # costs the server one workflow task instead of two and an activity task
            # (docs/benchmarks.md, push and fan-out). A killed worker's is run again
            # by the next worker when the workflow task times out.
            return await workflow.execute_local_activity_method(
                MailboxActivities.fetch_new_mail,
                fetch,
                start_to_close_timeout=FETCH_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=FETCH_GIVE_UP,
                retry_policy=FETCH_RETRY,
                local_retry_threshold=FETCH_LOCAL_RETRY_THRESHOLD,
            )
        return await workflow.execute_activity_method(
            MailboxActivities.fetch_new_mail,
            fetch,
            start_to_close_timeout=FETCH_ATTEMPT_TIMEOUT,
            schedule_to_close_timeout=FETCH_GIVE_UP,
            heartbeat_timeout=FETCH_HEARTBEAT,
            retry_policy=FETCH_RETRY,
        )

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
