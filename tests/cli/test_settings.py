from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_are_driven_by_psycopg3(given: str, used: str) -> None:
    assert Settings(database_url=given).effective_database_url == used


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path, database_url=None).effective_database_url
    assert url == f"sqlite:///{tmp_path.resolve()}/deskclone.db"


def test_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKCLONE_TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE", "5")
    monkeypatch.setenv("DESKCLONE_ADMIN_TOKEN", "s3cret")
    settings = Settings()
    assert settings.temporal_address == "temporal:7233"
    assert settings.form_rate_limit_per_minute == 5
    assert settings.admin_token is not None and "s3cret" not in repr(settings)


def test_bad_limits_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE", "0")
    with pytest.raises(ValueError, match="form_rate_limit_per_minute"):
        Settings()
