"""One Settings object, built by entry points and passed down; nothing reads the env later."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESKCLONE_", extra="ignore")

    data_dir: Path = Path(".data")
    # None means "SQLite file in the data dir"; see `effective_database_url`.
    database_url: str | None = None

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "deskclone"

    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = None
    # Keys that encrypted stored tokens before the current one (comma-separated in the env).
    old_secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    # Where the API is reachable from a browser; used in embed snippets.
    public_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    log_level: str = "INFO"

    # --- Operations (docs/operations.md) ---
    # "production" refuses the provider emulator: see `emulator_problems` below.
    environment: Literal["development", "production"] = "development"
    # "json": one JSON object per log line (core/json_logs.py), never a secret in it.
    log_format: Literal["text", "json"] = "text"
    # The worker serves Prometheus metrics (Temporal SDK and deskclone_*) on this port; None: off.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # When set, the API's /metrics wants `Authorization: Bearer <this>`.
    metrics_token: SecretStr | None = None

    # Providers. Every URL is a setting, so the emulator and the real services run the same code.
    google_client_id: str = "deskclone-emulator.apps.googleusercontent.com"
    google_client_secret: SecretStr = SecretStr("deskclone-emulator-google-secret")
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    gmail_api_url: str = "https://gmail.googleapis.com"
    microsoft_client_id: str = "deskclone-emulator-microsoft-client"
    microsoft_client_secret: SecretStr = SecretStr("deskclone-emulator-microsoft-secret")
    # The identity platform authority, tenant included ("common" for any work or school account).
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    graph_api_url: str = "https://graph.microsoft.com/v1.0"
    # A CA bundle for provider endpoints (the emulator's); None means the system's trust store.
    provider_ca_bundle: Path | None = None
    # Timeout for one provider HTTP request, in seconds.
    provider_timeout_seconds: float = Field(default=20.0, gt=0)
    # IMAP (docs/providers.md): certificates are verified against the system's trust store and,
    # when set, this CA file too (a self-hosted server's own CA).
    imap_ca_file: Path | None = None
    # Lets a mailbox connect with `security: "none"` (password in the clear): `deskclone dev`.
    imap_allow_plaintext: bool = False
    # One IMAP connection's connect, login and each command, in seconds.
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    # How far back the first sync of a newly connected mailbox reaches.
    initial_import_days: int = Field(default=7, ge=0)
    # How long an OAuth `state` stays usable.
    oauth_state_ttl_seconds: int = Field(default=600, ge=30)

    # Push (docs/push.md). Gmail: on when a Pub/Sub topic is set; Google signs each push
    # with an OIDC token for `gmail_push_audience` as `gmail_push_service_account`.
    gmail_push_topic: str | None = None  # projects/{project}/topics/{topic}
    gmail_push_audience: str | None = None  # default: {push_url or public_url}/push/gmail
    gmail_push_service_account: str | None = None
    gmail_push_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    # Outlook: on when set; Graph calls {push_url}/push/outlook (public https in production).
    push_url: str | None = None
    # With push live a mailbox still polls, as the safety net, this often at least.
    push_safety_poll_seconds: int = Field(default=900, ge=10)
    # IMAP IDLE (docs/scaling.md): each worker holds one IDLE connection per IMAP mailbox it
    # owns. IDLE is ended and issued again this often: RFC 2177 lets a server drop it after
    # 29 minutes of silence. Tests shorten it.
    imap_idle: bool = True
    imap_idle_renew_seconds: float = Field(default=25 * 60, gt=0, le=29 * 60)
    # How often the supervisor re-reads which mailboxes to watch without being told (on
    # PostgreSQL a mailbox's connect, reconnect or disconnect tells it at once).
    imap_idle_rescan_seconds: float = Field(default=30.0, gt=0)
    # A dropped connection is tried again after 1 s, doubling up to this, with jitter.
    imap_idle_backoff_max_seconds: float = Field(default=300.0, gt=0)
    # At most this many IDLE connections per worker process; the rest are left to others.
    imap_idle_max_per_worker: int = Field(default=5000, ge=1)

    # Limits.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    form_rate_limit_per_minute: int = Field(default=20, ge=1)
    escalation_rate_limit_per_minute: int = Field(default=20, ge=1)
    # All public requests for one public key, from any address: caps a distributed flood.
    public_key_rate_limit_per_minute: int = Field(default=600, ge=1)
    # One sender may open at most this many tickets an hour through one mailbox.
    flood_limit_per_hour: int = Field(default=20, ge=1)
    intake_wait_seconds: float = Field(default=5.0, gt=0)
    worker_max_concurrent_activities: int = Field(default=32, ge=1)
    # Workflows a worker keeps in memory between tasks (Temporal's default is 1,000): above the
    # mailboxes it serves, or every wake of an evicted one replays its history (about 42 KiB
    # per cached workflow; docs/scaling.md).
    worker_max_cached_workflows: int = Field(default=2000, ge=0)

    # --- Webhooks (docs/events.md) ---
    # Lets endpoints be http and on loopback, private or link-local addresses: for a receiver
    # on this machine (`deskclone dev` sets it). Off, every delivery checks where it goes.
    webhook_allow_private: bool = False
    # Endpoints delivering at once per worker: the delivery task queue's own activity slots,
    # apart from ticket intake's, so no endpoint, however slow, holds up a ticket.
    webhook_max_concurrent_deliveries: int = Field(default=200, ge=1)
    # Requests in flight to one endpoint.
    webhook_concurrency_per_endpoint: int = Field(default=8, ge=1, le=64)
    # A delivery round stays open this long after its last event, sending new ones as they
    # come without a Temporal round trip each (activities/webhooks.py); 0: one pass a round.
    webhook_linger_seconds: float = Field(default=2.0, ge=0, le=30)

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str | None) -> str | None:
        """Accept the URLs people paste (`postgres://...`) but always drive psycopg 3."""
        if value is None or value == "":
            return None
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("old_secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _production_refuses_the_emulator(self) -> Settings:
        if self.environment == "production":
            problems = emulator_problems(self)
            if problems:
                raise ValueError(
                    "production settings must not use the provider emulator: " + "; ".join(problems)
                )
        return self

    @property
    def gmail_push_configured(self) -> bool:
        return bool(self.gmail_push_topic and self.gmail_push_service_account)

    @property
    def effective_gmail_push_audience(self) -> str:
        base = (self.push_url or self.public_url).rstrip("/")
        return self.gmail_push_audience or f"{base}/push/gmail"

    @property
    def webhook_task_queue(self) -> str:
        """Deliveries run on their own task queue, served by the worker's second `Worker`."""
        return f"{self.task_queue}-webhooks"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'deskclone.db').resolve()}"


# --- The emulator is never reachable in production (CONTRACT.md §4) ---
PROVIDER_URL_SETTINGS = (
    "google_auth_uri",
    "google_token_uri",
    "gmail_api_url",
    "gmail_push_certs_url",
    "microsoft_authority",
    "graph_api_url",
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", "emulator"})


def is_emulator_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return (
        host in _LOCAL_HOSTS
        or host.startswith("127.")
        or host.endswith(".localhost")
        or "emulator" in host
    )


def emulator_problems(settings: Settings) -> list[str]:
    """What in these settings points at the provider emulator, in words (empty: nothing)."""
    problems: list[str] = []
    for name in PROVIDER_URL_SETTINGS:
        url: str = getattr(settings, name)
        host = urlsplit(url).hostname or ""
        if is_emulator_host(host):
            problems.append(f"DESKCLONE_{name.upper()}={url} points at {host or 'no host'}")
    bundle = settings.provider_ca_bundle
    if bundle is not None and "emulator" in bundle.name.lower():
        problems.append(f"DESKCLONE_PROVIDER_CA_BUNDLE={bundle} is the emulator's CA")
    return problems
