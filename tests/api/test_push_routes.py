"""The push receivers (CONTRACT.md §5) through the real app, PostgreSQL and a Temporal dev
server: Google's OIDC tokens verified against a certs server of our own (signed with
google-auth's signer), Graph's handshake and clientState rule, and what reaches Temporal.

No worker polls this test's task queue: a signalled mailbox's workflow is started and waits,
so its history shows exactly the signals the API sent (and the workflow is terminated after).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import MailboxStatus, PushState
from store import mailboxes
from store.db import transaction
from store.models import Mailbox, utcnow
from tests.api.conftest import make_api_settings
from tests.api.push_tokens import (
    PUSHER,
    CertsServer,
    SigningKey,
    google_claims,
    running_certs,
    unsigned,
)
from tests.conftest import make_agent, unique_task_queue
from tests.providers.support import closed_port_url

TOPIC = "projects/deskclone-test/topics/gmail-push"
AUDIENCE = "https://help.example.com/push/gmail"  # public_url + /push/gmail, the default
GRAPH_TOKEN = (
    "Validation: Testing client application reachability for subscription Request-Id: "
    "3b8f0c4e-6f5e-4c0e-9a51-2f0e1d8b7c6a"
)
NOT_JSON = b'{"message": {"data": '


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey.make("google-key-1")


@pytest.fixture
def certs(google_key: SigningKey) -> Iterator[CertsServer]:
    with running_certs(google_key) as certs:
        yield certs


@dataclass
class PushApi:
    client: httpx.AsyncClient
    settings: Settings
    engine: Engine
    temporal: Client
    agent_id: str
    certs: CertsServer
    key: SigningKey
    made: list[str] = field(default_factory=list)  # mailbox ids, their workflows ended after

    @property
    def cipher(self) -> Cipher:
        return Cipher.from_settings(self.settings)

    def token(self, **claims: Any) -> str:
        return self.key.sign(google_claims(AUDIENCE, **claims))

    async def gmail(self, body: Any, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        if isinstance(body, bytes):
            return await self.client.post("/push/gmail", content=body, headers=headers)
        return await self.client.post("/push/gmail", json=body, headers=headers)


def push_settings(**overrides: Any) -> Settings:
    base = Settings(task_queue=unique_task_queue(), secret_key="push-routes-secret")
    values: dict[str, Any] = {
        "gmail_push_topic": TOPIC,
        "gmail_push_service_account": PUSHER,
    }
    values.update(overrides)
    return make_api_settings(base, **values)


@pytest.fixture
async def push_api(
    dev_server_env: WorkflowEnvironment,
    postgres_engine: Engine,
    certs: CertsServer,
    google_key: SigningKey,
) -> AsyncIterator[PushApi]:
    settings = push_settings(gmail_push_certs_url=certs.url)
    agent, _ = make_agent(postgres_engine)
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    address = "2001:db8::" + ":".join(secrets.token_hex(2) for _ in range(3))
    transport = httpx.ASGITransport(app=app, client=(address, 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        api = PushApi(
            client, settings, postgres_engine, dev_server_env.client, agent.id, certs, google_key
        )
        yield api
    for mailbox_id in api.made:
        try:
            await dev_server_env.client.get_workflow_handle(f"mailbox:{mailbox_id}").terminate()
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND


# -- mailboxes and what happened to them ----------------------------------------------------


def add_mailbox(
    api: PushApi,
    provider: str = "gmail",
    *,
    address: str | None = None,
    agent_id: str | None = None,
    status: MailboxStatus = MailboxStatus.ACTIVE,
    secret: str | None = None,
) -> Mailbox:
    """A connected mailbox row; an Outlook one with a live subscription and its secret."""
    address = address or f"help-{uuid.uuid4().hex[:12]}@acme.example"
    with transaction(api.engine) as session:
        mailbox, _ = mailboxes.connect(
            session,
            agent_id=agent_id or api.agent_id,
            provider=provider,
            address=address,
            credentials_encrypted=api.cipher.encrypt(b"{}"),
        )
        if secret is not None:
            mailboxes.record_push(
                session,
                mailbox,
                state=PushState.LIVE,
                push_id=str(uuid.uuid4()),
                expires_at=utcnow() + timedelta(days=6),
                secret_encrypted=api.cipher.encrypt(secret.encode()),
                error=None,
            )
        if status != MailboxStatus.ACTIVE:
            mailboxes.set_status(session, mailbox, status, "Reconnect")
        session.flush()
        session.expunge(mailbox)
    api.made.append(mailbox.id)
    return mailbox


def notified_at(api: PushApi, mailbox: Mailbox) -> datetime | None:
    with Session(api.engine) as session:
        row = session.get(Mailbox, mailbox.id)
        assert row is not None
        return row.last_notification_at


async def signals(api: PushApi, mailbox: Mailbox) -> list[tuple[str, Any]] | None:
    """The signals the mailbox's workflow received, with their argument; None: no workflow."""
    handle = api.temporal.get_workflow_handle(f"mailbox:{mailbox.id}")
    try:
        history = await handle.fetch_history()
    except RPCError as error:
        assert error.status == RPCStatusCode.NOT_FOUND
        return None
    found: list[tuple[str, Any]] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attributes = event.workflow_execution_signaled_event_attributes
            payloads = attributes.input.payloads
            found.append(
                (attributes.signal_name, json.loads(payloads[0].data) if payloads else None)
            )
    return found


async def push_count(api: PushApi, provider: str, result: str) -> float:
    """`deskclone_push_notifications_total{provider, result}` as /metrics shows it."""
    answer = await api.client.get("/metrics")
    assert answer.status_code == 200
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "deskclone_push_notifications_total" and sample.labels == {
                "provider": provider,
                "result": result,
            }:
                return float(sample.value)
    return 0.0


def envelope(address: str, history_id: Any = 9_876_543) -> dict[str, Any]:
    """A Pub/Sub push body carrying Gmail's notification, as Google sends it."""
    data = json.dumps({"emailAddress": address, "historyId": history_id}).encode()
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2025-01-01T12:00:00.123Z",
            "publish_time": "2025-01-01T12:00:00.123Z",
            "attributes": {},
        },
        "subscription": "projects/deskclone-test/subscriptions/deskclone-api",
    }


def assert_push_signal(found: list[tuple[str, Any]] | None) -> None:
    assert found is not None, "no workflow was started"
    [(name, poll)] = found
    assert name == "poll_now"
    assert poll["reason"] == "push" and poll["notified_at"]


# -- Gmail: verified pushes ---------------------------------------------------------------


@pytest.mark.parametrize("history_id", [9_876_543, "9876543"], ids=["number", "string"])
async def test_a_verified_push_stamps_and_signals_the_mailbox(
    push_api: PushApi, history_id: Any
) -> None:
    mailbox = add_mailbox(push_api)
    before = utcnow()

    answer = await push_api.gmail(envelope(mailbox.address, history_id))

    assert answer.status_code == 204, answer.text
    stamped = notified_at(push_api, mailbox)
    assert stamped is not None and before <= stamped <= utcnow()
    assert_push_signal(await signals(push_api, mailbox))


async def test_the_address_is_matched_without_case_in_every_workspace(
    push_api: PushApi,
) -> None:
    address = f"Support-{uuid.uuid4().hex[:8]}@Acme.example"
    ours = add_mailbox(push_api, address=address.lower())
    other_agent, _ = make_agent(push_api.engine, "Other workspace")
    theirs = add_mailbox(push_api, address=address.lower(), agent_id=other_agent.id)
    outlook_namesake = add_mailbox(push_api, "outlook", address=address.lower())

    answer = await push_api.gmail(envelope(address))

    assert answer.status_code == 204
    assert_push_signal(await signals(push_api, ours))
    assert_push_signal(await signals(push_api, theirs))
    assert await signals(push_api, outlook_namesake) is None  # a Gmail push is for Gmail


async def test_many_pushes_fetch_the_certs_once(push_api: PushApi) -> None:
    mailbox = add_mailbox(push_api)

    for _ in range(5):
        answer = await push_api.gmail(envelope(mailbox.address))
        assert answer.status_code == 204

    assert push_api.certs.fetches == 1
    found = await signals(push_api, mailbox)
    assert found is not None and [name for name, _ in found] == ["poll_now"] * 5


async def test_a_new_signing_key_refetches_the_certs_once(push_api: PushApi) -> None:
    mailbox = add_mailbox(push_api)
    assert (await push_api.gmail(envelope(mailbox.address))).status_code == 204
    assert push_api.certs.fetches == 1
    rotated = SigningKey.make("google-key-2")
    push_api.certs.keys.append(rotated)  # Google publishes a new key and signs with it

    answer = await push_api.gmail(envelope(mailbox.address), rotated.sign(google_claims(AUDIENCE)))

    assert answer.status_code == 204, answer.text
    assert push_api.certs.fetches == 2
    # The old key still verifies from the refreshed cache, without another fetch.
    assert (await push_api.gmail(envelope(mailbox.address))).status_code == 204
    assert push_api.certs.fetches == 2
    # A kid nobody publishes: refused, and it cannot make us fetch again and again.
    stranger = SigningKey.make("google-key-3")
    for _ in range(3):
        refused = await push_api.gmail(
            envelope(mailbox.address), stranger.sign(google_claims(AUDIENCE))
        )
        assert refused.status_code == 401
    assert push_api.certs.fetches == 2


async def test_an_unknown_address_is_acknowledged_and_counted(push_api: PushApi) -> None:
    before = await push_count(push_api, "gmail", "unknown_mailbox")

    answer = await push_api.gmail(envelope(f"nobody-{uuid.uuid4().hex[:8]}@acme.example"))

    assert answer.status_code == 204
    assert await push_count(push_api, "gmail", "unknown_mailbox") == before + 1


@pytest.mark.parametrize(
    "body",
    [
        NOT_JSON,
        b"[]",
        b"{}",
        {"message": {}},
        {"message": {"data": "!!! not base64 !!!"}},
        {"message": {"data": base64.b64encode(b"not json").decode()}},
        {"message": {"data": base64.b64encode(b"\xff\xfe").decode()}},
        {"message": {"data": base64.b64encode(b'{"historyId": 1}').decode()}},
        {"message": {"data": base64.b64encode(b'["ann@example.com"]').decode()}},
        {"message": {"data": base64.b64encode(b'{"emailAddress": 7}').decode()}},
    ],
    ids=[
        "not-json",
        "a-list",
        "empty",
        "no-data",
        "not-base64",
        "data-not-json",
        "data-not-utf8",
        "no-address",
        "data-a-list",
        "address-a-number",
    ],
)
async def test_a_garbled_body_from_google_is_acknowledged_and_ignored(
    push_api: PushApi, body: Any
) -> None:
    """Pub/Sub retries anything but a 2xx for a week: a body we can never read is
    acknowledged (and counted), never answered 4xx."""
    before = await push_count(push_api, "gmail", "ignored")

    answer = await push_api.gmail(body)

    assert answer.status_code == 204, answer.text
    assert await push_count(push_api, "gmail", "ignored") == before + 1


async def test_a_push_for_an_expired_mailbox_changes_nothing(push_api: PushApi) -> None:
    mailbox = add_mailbox(push_api, status=MailboxStatus.AUTH_EXPIRED)

    answer = await push_api.gmail(envelope(mailbox.address))

    assert answer.status_code == 204
    assert notified_at(push_api, mailbox) is None
    assert await signals(push_api, mailbox) is None  # it waits for Reconnect


# -- Gmail: refused pushes --------------------------------------------------------------------


def forged(api: PushApi) -> str:
    """Signed by a key of the forger's, under the kid Google's certs publish."""
    return SigningKey.make("forger").sign(google_claims(AUDIENCE), kid=api.key.kid)


REFUSALS: dict[str, Any] = {
    "no-header": None,
    "not-bearer": lambda api: "Basic " + base64.b64encode(b"google:secret").decode(),
    "empty-bearer": lambda api: "Bearer ",
    "not-a-jwt": lambda api: "Bearer not.a.jwt",
    "forged": lambda api: "Bearer " + forged(api),
    "unsigned": lambda api: "Bearer " + unsigned(google_claims(AUDIENCE), api.key.kid),
    "wrong-audience": lambda api: (
        "Bearer " + api.key.sign(google_claims("https://evil.example/push/gmail"))
    ),
    "expired": lambda api: (
        "Bearer " + api.token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    ),
    "wrong-issuer": lambda api: "Bearer " + api.token(iss="https://evil.example"),
    "another-account": lambda api: (
        "Bearer " + api.token(email="someone@evil-project.iam.gserviceaccount.com")
    ),
    "email-unverified": lambda api: "Bearer " + api.token(email_verified=False),
    "no-email": lambda api: "Bearer " + api.token(email=None, email_verified=None),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("readable", [True, False], ids=["envelope", "not-json"])
async def test_an_unverified_push_is_refused_before_anything_is_read(
    push_api: PushApi, case: str, readable: bool
) -> None:
    mailbox = add_mailbox(push_api)
    make = REFUSALS[case]
    headers = {} if make is None else {"Authorization": make(push_api)}
    body = json.dumps(envelope(mailbox.address)).encode() if readable else NOT_JSON
    before = await push_count(push_api, "gmail", "refused")

    answer = await push_api.client.post("/push/gmail", content=body, headers=headers)

    # Refused as such (never a 400 about the body: it was not read), and nothing happened.
    assert answer.status_code in (401, 403), answer.text
    assert answer.json()["error"]["code"] in ("unauthorized", "forbidden")
    assert await push_count(push_api, "gmail", "refused") == before + 1
    assert notified_at(push_api, mailbox) is None
    assert await signals(push_api, mailbox) is None


@pytest.mark.parametrize(
    ("case", "status"),
    [
        *[("no-header", 401), ("forged", 401), ("unsigned", 401), ("expired", 401)],
        *[("wrong-audience", 403), ("wrong-issuer", 403), ("another-account", 403)],
        ("email-unverified", 403),
    ],
)
async def test_refusals_say_who_is_unknown_and_who_is_not_allowed(
    push_api: PushApi, case: str, status: int
) -> None:
    """401: we cannot tell who sent it; 403: Google vouches for someone we do not take."""
    make = REFUSALS[case]
    headers = {} if make is None else {"Authorization": make(push_api)}

    answer = await push_api.client.post("/push/gmail", json={}, headers=headers)

    assert answer.status_code == status, answer.text


async def test_unreadable_certs_refuse_the_push(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine, google_key: SigningKey
) -> None:
    settings = push_settings(gmail_push_certs_url=closed_port_url() + "/oauth2/v1/certs")
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    token = google_key.sign(google_claims(AUDIENCE))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post(
            "/push/gmail",
            json=envelope("ann@example.com"),
            headers={"Authorization": f"Bearer {token}"},
        )

    assert answer.status_code == 401, answer.text


async def test_gmail_push_not_configured_is_not_found(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> None:
    settings = push_settings(gmail_push_topic=None)
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.post("/push/gmail", json=envelope("ann@example.com"))

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "push_not_configured"


# -- Outlook ----------------------------------------------------------------------------------

OUTLOOK_URLS = ["/push/outlook", "/push/outlook/lifecycle"]


def change(mailbox: Mailbox, secret: str) -> dict[str, Any]:
    """One Graph change notification for the mailbox's subscription."""
    message = uuid.uuid4().hex
    return {
        "subscriptionId": mailbox.push_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00+00:00",
        "changeType": "created",
        "resource": f"Users/oid/Messages/{message}",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Message", "id": message},
        "clientState": secret,
        "tenantId": "tid",
    }


def lifecycle(mailbox: Mailbox, secret: str, event: str) -> dict[str, Any]:
    return {
        "subscriptionId": mailbox.push_id,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00+00:00",
        "tenantId": "tid",
        "clientState": secret,
        "lifecycleEvent": event,
    }


@pytest.mark.parametrize("path", OUTLOOK_URLS)
async def test_the_validation_handshake_echoes_the_decoded_token(
    push_api: PushApi, path: str
) -> None:
    answer = await push_api.client.post(
        f"{path}?validationToken={quote(GRAPH_TOKEN)}",
        headers={"Content-Type": "text/plain"},
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == "text/plain"
    assert answer.text == GRAPH_TOKEN


async def test_a_matching_notification_is_accepted_and_signals_once(push_api: PushApi) -> None:
    secret = secrets.token_urlsafe(24)
    mailbox = add_mailbox(push_api, "outlook", secret=secret)
    other_secret = secrets.token_urlsafe(24)
    other = add_mailbox(push_api, "outlook", secret=other_secret)
    # A batch: three new mails in one mailbox, one in another.
    batch = [change(mailbox, secret) for _ in range(3)] + [change(other, other_secret)]
    verified = await push_count(push_api, "outlook", "verified")
    refused = await push_count(push_api, "outlook", "refused")

    answer = await push_api.client.post("/push/outlook", json={"value": batch})

    assert answer.status_code == 202
    # Counted per notification: four verified, none refused.
    assert await push_count(push_api, "outlook", "verified") == verified + 4
    assert await push_count(push_api, "outlook", "refused") == refused
    assert notified_at(push_api, mailbox) is not None
    assert_push_signal(await signals(push_api, mailbox))  # one poll_now for all three
    assert_push_signal(await signals(push_api, other))


@pytest.mark.parametrize("wrong", ["client-state", "subscription", "no-client-state"])
async def test_a_notification_that_does_not_match_is_ignored(push_api: PushApi, wrong: str) -> None:
    secret = secrets.token_urlsafe(24)
    mailbox = add_mailbox(push_api, "outlook", secret=secret)
    item = change(mailbox, secret)
    if wrong == "client-state":
        item["clientState"] = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    elif wrong == "subscription":
        item["subscriptionId"] = str(uuid.uuid4())
    else:
        del item["clientState"]
    before = await push_count(push_api, "outlook", "refused")

    answer = await push_api.client.post("/push/outlook", json={"value": [item]})

    assert answer.status_code == 202
    assert await push_count(push_api, "outlook", "refused") == before + 1
    assert notified_at(push_api, mailbox) is None
    assert await signals(push_api, mailbox) is None


@pytest.mark.parametrize("path", OUTLOOK_URLS)
async def test_a_notification_for_an_expired_mailbox_changes_nothing(
    push_api: PushApi, path: str
) -> None:
    secret = secrets.token_urlsafe(24)
    mailbox = add_mailbox(push_api, "outlook", secret=secret, status=MailboxStatus.AUTH_EXPIRED)
    item = (
        change(mailbox, secret) if path == "/push/outlook" else lifecycle(mailbox, secret, "missed")
    )

    answer = await push_api.client.post(path, json={"value": [item]})

    assert answer.status_code == 202
    assert notified_at(push_api, mailbox) is None
    assert await signals(push_api, mailbox) is None


@pytest.mark.parametrize("event", ["subscriptionRemoved", "reauthorizationRequired", "missed"])
async def test_a_lifecycle_event_reaches_the_workflow(push_api: PushApi, event: str) -> None:
    secret = secrets.token_urlsafe(24)
    mailbox = add_mailbox(push_api, "outlook", secret=secret)

    answer = await push_api.client.post(
        "/push/outlook/lifecycle", json={"value": [lifecycle(mailbox, secret, event)]}
    )

    assert answer.status_code == 202
    # A lifecycle event carries nothing else (the other fields are IMAP IDLE's state reports).
    reported = {"event": event, "state": None, "error": None, "safety_poll_seconds": None}
    assert await signals(push_api, mailbox) == [("push_event", reported)]


@pytest.mark.parametrize("wrong", ["client-state", "unknown-event"])
async def test_a_lifecycle_notification_that_does_not_match_is_ignored(
    push_api: PushApi, wrong: str
) -> None:
    secret = secrets.token_urlsafe(24)
    mailbox = add_mailbox(push_api, "outlook", secret=secret)
    item = lifecycle(mailbox, secret, "subscriptionRemoved")
    if wrong == "client-state":
        item["clientState"] = "guessed"
    else:
        item["lifecycleEvent"] = "somethingNew"

    answer = await push_api.client.post("/push/outlook/lifecycle", json={"value": [item]})

    assert answer.status_code == 202
    assert await signals(push_api, mailbox) is None


@pytest.mark.parametrize("path", OUTLOOK_URLS)
@pytest.mark.parametrize(
    "body",
    [NOT_JSON, b"[]", b"{}", b'{"value": "x"}', b'{"value": [1, "two", null]}'],
    ids=["not-json", "a-list", "empty", "value-not-a-list", "items-not-objects"],
)
async def test_garbage_to_outlook_is_never_a_server_error(
    push_api: PushApi, path: str, body: bytes
) -> None:
    answer = await push_api.client.post(
        path, content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code in (202, 400), answer.text
