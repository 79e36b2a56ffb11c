"""The Pub/Sub stand-in's REST subset and the certs endpoint pushes are verified against."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509

from emulator.server import RunningEmulator
from tests.emulator.push_support import Receiver, running_receiver, verify_google_token

TOPIC = "/v1/projects/deskclone-dev/topics/gmail-push"
SUBSCRIPTION = "/v1/projects/deskclone-dev/subscriptions/api"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as receiver:
        yield receiver


def test_topics_are_created_once_read_and_deleted(control: httpx.Client) -> None:
    created = control.put(TOPIC, json={"labels": {"team": "desk"}})
    assert created.status_code == 200
    assert created.json() == {
        "name": "projects/deskclone-dev/topics/gmail-push",
        "labels": {"team": "desk"},
    }
    again = control.put(TOPIC)
    assert again.status_code == 409
    assert again.json() == {
        "error": {
            "code": 409,
            "message": "Resource already exists in the project (resource=gmail-push).",
            "status": "ALREADY_EXISTS",
        }
    }
    assert control.get(TOPIC).json()["name"].endswith("/topics/gmail-push")
    assert control.delete(TOPIC).json() == {}
    missing = control.get(TOPIC)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Resource not found (resource=gmail-push)."


def test_a_push_subscription_reads_back_as_pubsub_writes_it(
    control: httpx.Client, receiver: Receiver
) -> None:
    body = {
        "topic": "projects/deskclone-dev/topics/gmail-push",
        "pushConfig": {
            "pushEndpoint": receiver.url("/push/gmail"),
            "oidcToken": {"serviceAccountEmail": "push@deskclone-dev.iam.gserviceaccount.com"},
        },
    }
    assert control.put(SUBSCRIPTION, json=body).status_code == 404  # no topic yet
    control.put(TOPIC)
    created = control.put(SUBSCRIPTION, json=body)
    assert created.status_code == 200
    resource = created.json()
    assert resource["name"] == "projects/deskclone-dev/subscriptions/api"
    assert resource["ackDeadlineSeconds"] == 10
    # Without an audience, Pub/Sub signs for the endpoint URL.
    assert resource["pushConfig"]["oidcToken"] == {
        "serviceAccountEmail": "push@deskclone-dev.iam.gserviceaccount.com",
        "audience": receiver.url("/push/gmail"),
    }
    assert control.get(SUBSCRIPTION).json() == resource
    assert control.get(TOPIC + "/subscriptions").json() == {"subscriptions": [resource["name"]]}
    assert control.put(SUBSCRIPTION, json=body).status_code == 409
    assert control.delete(SUBSCRIPTION).status_code == 200
    assert control.get(SUBSCRIPTION).status_code == 404


def test_published_messages_reach_push_subscriptions_signed_for_their_audience(
    emulator: RunningEmulator, control: httpx.Client, receiver: Receiver
) -> None:
    control.put(TOPIC)
    push_config = {
        "pushEndpoint": receiver.url("/push/gmail"),
        "oidcToken": {"serviceAccountEmail": "push@p.iam.gserviceaccount.com"},
    }
    body = {"topic": "projects/deskclone-dev/topics/gmail-push", "pushConfig": push_config}
    control.put(SUBSCRIPTION, json=body)
    control.put(
        "/v1/projects/deskclone-dev/subscriptions/pull",
        json={"topic": "projects/deskclone-dev/topics/gmail-push"},
    )  # a pull subscription: never pushed

    published = control.post(TOPIC + ":publish", json={"messages": [{"data": "aGVsbG8="}]})

    [push] = receiver.wait_for("/push/gmail", 1)
    message = push.json()["message"]
    assert message["data"] == "aGVsbG8="
    assert message["messageId"] == message["message_id"] == published.json()["messageIds"][0]
    assert message["publishTime"] == message["publish_time"]
    claims = verify_google_token(emulator, push.bearer, receiver.url("/push/gmail"))
    assert claims["email"] == "push@p.iam.gserviceaccount.com"
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/projects/p/topics/ab", None, 400),  # Pub/Sub ids are 3 characters or more
        ("/v1/projects/p/topics/9lives", None, 400),  # and start with a letter
        (SUBSCRIPTION, {"topic": "gmail-push"}, 400),
        (SUBSCRIPTION, {"topic": "projects/deskclone-dev/topics/gmail-push",
                        "pushConfig": {"pushEndpoint": "ftp://x"}}, 400),
        (SUBSCRIPTION, {"topic": "projects/deskclone-dev/topics/gmail-push",
                        "ackDeadlineSeconds": 5}, 400),
    ],
)  # fmt: skip
def test_bad_names_and_configs_are_invalid_arguments(
    control: httpx.Client, path: str, body: dict[str, object] | None, status: int
) -> None:
    control.put(TOPIC)
    answer = control.put(path, json=body) if body is not None else control.put(path)
    assert answer.status_code == status
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_certs_are_pem_certificates_by_kid_like_googles(control: httpx.Client) -> None:
    answer = control.get("/oauth2/v1/certs")
    assert answer.status_code == 200
    [(kid, pem)] = answer.json().items()
    assert len(kid) == 40
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert certificate.public_key().key_size == 2048  # type: ignore[union-attr]
    assert control.get("/_emulator/requests").json()["counts"] == {"GET /oauth2/v1/certs": 1}
