"""One HTTPS emulator per session, reset before each test; the real provider code against it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from core.settings import Settings
from emulator.graph_render import encoded_message_id
from emulator.server import RunningEmulator, running_emulator
from providers.base import Credentials, MailboxProvider
from providers.gmail.client import GmailProvider
from providers.oauth_common import Grant
from providers.outlook import oauth as microsoft_oauth
from providers.outlook.client import OutlookProvider
from providers.registry import close_shared_connections
from tests.emulator.support import deliver, make_message
from tests.providers.support import Synced, closed_port_url, connect, provider_settings

ProviderFactory = Callable[..., GmailProvider]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with running_emulator(tmp_path_factory.mktemp("provider-emulator")) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(emulator: RunningEmulator) -> Iterator[None]:
    # Safe from this thread: between tests no request is in flight.
    emulator.state.reset()
    yield
    # Connections kept alive for the next poll (shared by all mailboxes) end with the test,
    # so none reaches into the next test or outlives the emulator.
    close_shared_connections()


@pytest.fixture
def control(emulator: RunningEmulator) -> Iterator[httpx.Client]:
    """The emulator's control API (and the 'browser'), trusting only its CA."""
    with httpx.Client(base_url=emulator.url, verify=emulator.ssl_context(), timeout=10) as client:
        yield client


@pytest.fixture
def settings(emulator: RunningEmulator) -> Settings:
    return provider_settings(emulator)


@pytest.fixture
def emulator_down_settings(emulator: RunningEmulator) -> Settings:
    """Every provider URL on a port nothing listens on."""
    url = closed_port_url()
    return provider_settings(
        emulator,
        google_auth_uri=url + "/o/oauth2/v2/auth",
        google_token_uri=url + "/token",
        gmail_api_url=url,
    )


@pytest.fixture
def grant(control: httpx.Client, settings: Settings) -> Grant:
    """ann@example.com, connected through `authorization_url` and `exchange_code`."""
    return connect(control, settings)


@pytest.fixture
def make_provider(settings: Settings) -> Iterator[ProviderFactory]:
    """GmailProviders on the test settings (or others), closed at teardown."""
    made: list[GmailProvider] = []

    def make(credentials: Credentials, on: Settings | None = None) -> GmailProvider:
        provider = GmailProvider(on or settings, credentials)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def gmail(make_provider: ProviderFactory, grant: Grant) -> GmailProvider:
    return make_provider(grant.credentials)


# -- Outlook: the Microsoft identity platform and Graph on the same emulator ----------

OLIVE = "olive@example.org"
OUTLOOK_REDIRECT_URI = "http://127.0.0.1:9/oauth/outlook/callback"
OutlookFactory = Callable[..., OutlookProvider]


def outlook_settings(emulator: RunningEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "microsoft_authority": emulator.url + "/common",
        "graph_api_url": emulator.url + "/v1.0",
    }
    values.update(overrides)
    return provider_settings(emulator, **values)


@dataclass(frozen=True)
class OutlookCallback:
    code: str
    state: str
    verifier: str


def outlook_consent(
    control: httpx.Client, settings: Settings, *, login_hint: str = OLIVE, **overrides: str
) -> OutlookCallback:
    """Follow `microsoft_oauth.authorization_url` like a browser to the callback redirect.

    `overrides` replace query parameters, as a user declining a permission (or a
    tampered URL) would change what Microsoft grants.
    """
    verifier, challenge = microsoft_oauth.new_pkce_pair()
    state = secrets.token_urlsafe(16)
    url = httpx.URL(
        microsoft_oauth.authorization_url(
            settings,
            state=state,
            code_challenge=challenge,
            redirect_uri=OUTLOOK_REDIRECT_URI,
            login_hint=login_hint,
        )
    )
    for name, value in overrides.items():
        url = url.copy_set_param(name, value)
    answer = control.get(url)
    assert answer.status_code == 302, answer.text
    callback = httpx.URL(answer.headers["location"])
    assert str(callback.copy_with(query=None)) == OUTLOOK_REDIRECT_URI
    assert callback.params["state"] == state
    return OutlookCallback(callback.params["code"], state, verifier)


def connect_outlook(control: httpx.Client, settings: Settings, *, login_hint: str = OLIVE) -> Grant:
    back = outlook_consent(control, settings, login_hint=login_hint)
    return microsoft_oauth.exchange_code(
        settings, code=back.code, code_verifier=back.verifier, redirect_uri=OUTLOOK_REDIRECT_URI
    )


def drain(
    provider: MailboxProvider, cursor: str, max_messages: int = 50, limit: int = 20
) -> Synced:
    """fetch_page until `more` is False, as the workflow loops (any provider)."""
    synced = Synced(cursor=cursor)
    for _ in range(limit):
        page = provider.fetch_page(synced.cursor, max_messages)
        assert len(page.messages) + len(page.skipped_ids) <= max_messages
        synced.pages.append(page)
        synced.cursor = page.next_cursor
        if not page.more:
            return synced
    raise AssertionError(f"still more after {limit} pages")


def deliver_to_outlook(
    control: httpx.Client, count: int, *, folder: str | None = None
) -> list[str]:
    """`count` messages into Olive's mailbox; their Graph ids, in delivery order."""
    return [
        graph_id(deliver(control, make_message(subject=f"Case {i}", to=OLIVE), OLIVE, folder))
        for i in range(count)
    ]


def graph_id(delivered: dict[str, Any]) -> str:
    """The Graph id of a message the control API delivered."""
    return encoded_message_id(str(delivered["id"]))


@pytest.fixture
def ms_settings(emulator: RunningEmulator) -> Settings:
    return outlook_settings(emulator)


@pytest.fixture
def outlook_grant(control: httpx.Client, ms_settings: Settings) -> Grant:
    """olive@example.org, connected through `authorization_url` and `exchange_code`."""
    return connect_outlook(control, ms_settings)


@pytest.fixture
def make_outlook(ms_settings: Settings) -> Iterator[OutlookFactory]:
    """OutlookProviders on the test settings (or others), closed at teardown."""
    made: list[OutlookProvider] = []

    def make(credentials: Credentials, on: Settings | None = None) -> OutlookProvider:
        provider = OutlookProvider(on or ms_settings, credentials)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def outlook(make_outlook: OutlookFactory, outlook_grant: Grant) -> OutlookProvider:
    return make_outlook(outlook_grant.credentials)
