"""One HTTPS emulator per test session, reset before every test; real clients only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httplib2  # type: ignore[import-untyped]
import httpx
import pytest
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp  # type: ignore[import-untyped]
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.http import BatchHttpRequest  # type: ignore[import-untyped]

from emulator.server import RunningEmulator, running_emulator
from emulator.tokens import DEFAULT_GOOGLE_CLIENT_ID, DEFAULT_GOOGLE_CLIENT_SECRET
from tests.emulator.support import Grant, connect


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(emulator: RunningEmulator) -> None:
    # Safe from this thread: between tests no request is in flight.
    emulator.state.reset()


@pytest.fixture
def control(emulator: RunningEmulator) -> Iterator[httpx.Client]:
    """httpx trusting only the emulator's CA (the machine's global CA variables are ignored)."""
    with httpx.Client(base_url=emulator.url, verify=emulator.ssl_context(), timeout=10) as client:
        yield client


class GmailFactory:
    """Builds real Gmail services against the emulator and closes their connections."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.emulator = emulator
        self._closables: list[Any] = []

    def credentials(self, grant: Grant, *, token: str | None = None) -> Credentials:
        # google-auth ships py.typed but leaves this constructor unannotated.
        return Credentials(  # type: ignore[no-untyped-call]
            token=token if token is not None else grant.access_token,
            refresh_token=grant.refresh_token,
            token_uri=self.emulator.url + "/token",
            client_id=DEFAULT_GOOGLE_CLIENT_ID,
            client_secret=DEFAULT_GOOGLE_CLIENT_SECRET,
        )

    def service(self, credentials: Credentials) -> Any:
        # The CA goes to httplib2 explicitly: HTTPLIB2_CA_CERTS would win otherwise.
        http = httplib2.Http(ca_certs=str(self.emulator.ca_path), timeout=10)
        service = build(
            "gmail",
            "v1",
            http=AuthorizedHttp(credentials, http=http),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.emulator.url},
        )
        self._closables += [service, http]
        return service

    def batch(self, path: str = "/batch/gmail/v1") -> Any:
        # new_batch_http_request() would post to gmail.googleapis.com (rootUrl); see batch.py.
        return BatchHttpRequest(batch_uri=self.emulator.url + path)

    def close(self) -> None:
        for closable in self._closables:
            closable.close()


@pytest.fixture
def gmail_factory(emulator: RunningEmulator) -> Iterator[GmailFactory]:
    factory = GmailFactory(emulator)
    yield factory
    factory.close()


@pytest.fixture
def grant(control: httpx.Client) -> Grant:
    """ann@example.com, connected through the OAuth flow with gmail.readonly."""
    return connect(control)


@pytest.fixture
def gmail(gmail_factory: GmailFactory, grant: Grant) -> Any:
    return gmail_factory.service(gmail_factory.credentials(grant))
