"""One Settings object, built by entry points and passed down; nothing reads the env later."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # Where the API is reachable from a browser; used in embed snippets.
    public_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    log_level: str = "INFO"

    # Limits.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    form_rate_limit_per_minute: int = Field(default=20, ge=1)
    escalation_rate_limit_per_minute: int = Field(default=20, ge=1)
    intake_wait_seconds: float = Field(default=5.0, gt=0)
    worker_max_concurrent_activities: int = Field(default=32, ge=1)

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

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'deskclone.db').resolve()}"
