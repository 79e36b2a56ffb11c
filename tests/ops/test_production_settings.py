"""Production settings never reach the provider emulator; development (and `deskclone dev`)
keeps using it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import PROVIDER_URL_SETTINGS, Settings, emulator_problems
from deskclone import cli

EMULATOR_URLS = [
    "https://127.0.0.1:8025",
    "http://localhost:8025/o/oauth2/auth",
    "https://127.0.0.2:9000",
    "https://[::1]:8025",
    "https://emulator:8025",
    "https://deskclone-emulator.internal",
    "https://api.localhost",
]


@pytest.mark.parametrize("name", PROVIDER_URL_SETTINGS)
@pytest.mark.parametrize("url", EMULATOR_URLS)
def test_production_refuses_an_emulator_url(name: str, url: str) -> None:
    given: dict[str, Any] = {name: url}
    with pytest.raises(ValidationError, match="must not use the provider emulator") as caught:
        Settings(environment="production", **given)
    assert f"DESKCLONE_{name.upper()}={url}" in str(caught.value)


def test_production_refuses_the_emulator_ca(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the emulator's CA"):
        Settings(environment="production", provider_ca_bundle=tmp_path / "emulator-ca.pem")


def test_production_accepts_the_real_endpoints(tmp_path: Path) -> None:
    settings = Settings(environment="production", provider_ca_bundle=tmp_path / "corporate.pem")
    assert emulator_problems(settings) == []
    assert settings.gmail_api_url == "https://gmail.googleapis.com"


def test_development_accepts_the_emulator(api_worker: Settings) -> None:
    """The API tests' settings are what `deskclone dev` hands its children."""
    assert api_worker.environment == "development"
    assert emulator_problems(api_worker)  # it does point at the emulator
    Settings(**api_worker.model_dump())  # and validating it again is fine


def test_production_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKCLONE_ENVIRONMENT", "production")
    monkeypatch.setenv("DESKCLONE_GOOGLE_TOKEN_URI", "https://127.0.0.1:8025/token")
    with pytest.raises(ValidationError, match="DESKCLONE_GOOGLE_TOKEN_URI"):
        Settings()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    return {**env, **extra}


def test_a_command_with_production_emulator_settings_stops_in_words(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deskclone", "migrate"],
        env=clean_env(
            DESKCLONE_DATA_DIR=str(tmp_path),
            DESKCLONE_ENVIRONMENT="production",
            DESKCLONE_GMAIL_API_URL="https://127.0.0.1:8025",
            DESKCLONE_GOOGLE_CLIENT_SECRET="a-real-looking-secret-value",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "deskclone: refusing to start: production settings must not use the provider "
        "emulator: DESKCLONE_GMAIL_API_URL=https://127.0.0.1:8025 points at 127.0.0.1"
    )
    assert "Traceback" not in done.stderr and "a-real-looking-secret-value" not in done.stderr
    assert not (tmp_path / "deskclone.db").exists()


@pytest.mark.usefixtures("restore_logging")
def test_dev_is_always_development(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`deskclone dev` points its children at the emulator: it runs them as development
    even when the shell says production."""
    monkeypatch.setenv("DESKCLONE_ENVIRONMENT", "production")
    seen: dict[str, Any] = {}

    def fake_run_dev(options: object, settings: Settings) -> int:
        seen["settings"] = settings
        seen["child_env"] = os.environ["DESKCLONE_ENVIRONMENT"]
        return 0

    monkeypatch.setattr("deskclone.dev.run_dev", fake_run_dev)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["dev", "--data-dir", str(tmp_path)])
    assert stopped.value.code == 0
    assert seen["settings"].environment == "development"
    assert seen["child_env"] == "development"
