"""One HTTPS emulator per session, reset before each test; the real provider code against it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from deskclone.settings import Settings
from emulator.server import RunningEmulator, running_emulator
from providers.base import Credentials
from providers.gmail import GmailProvider
from providers.google_oauth import GoogleGrant
from tests.providers.support import closed_port_url, connect, provider_settings

ProviderFactory = Callable[..., GmailProvider]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with running_emulator(tmp_path_factory.mktemp("provider-emulator")) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_state(emulator: RunningEmulator) -> None:
    # Safe from this thread: between tests no request is in flight.
    emulator.state.reset()


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
def grant(control: httpx.Client, settings: Settings) -> GoogleGrant:
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
def gmail(make_provider: ProviderFactory, grant: GoogleGrant) -> GmailProvider:
    return make_provider(grant.credentials)
