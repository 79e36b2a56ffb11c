"""POST /api/v1/mailboxes with provider "imap" (CONTRACT.md §7): the connection is tested
first (login, EXAMINE), each failure has its code and a sentence, nothing is stored for a
refused one, and the password is never answered."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from sqlmodel import Session, select

from core.crypto import Cipher
from emulator.dovecot import free_port
from store.models import Mailbox
from tests.api.conftest import Api
from tests.imap.conftest import Account, api_with


async def connect(api: Api, body: dict[str, Any]) -> Any:
    return await api.client.post("/api/v1/mailboxes", json=body, headers=api.auth)


def stored(api: Api) -> list[Mailbox]:
    with Session(api.engine) as session:
        return list(session.exec(select(Mailbox).where(Mailbox.agent_id == api.agent.id)))


async def test_a_working_login_connects_an_active_mailbox(imap_api: Api, account: Account) -> None:
    answer = await connect(imap_api, account.body())

    assert answer.status_code == 201, answer.text
    mailbox = answer.json()
    assert mailbox["provider"] == "imap" and mailbox["status"] == "active"
    assert mailbox["address"] == account.address
    assert mailbox["imap"] == {
        "host": "localhost",
        "port": account.dovecot.tls_port,
        "security": "tls",
        "username": account.user,
        "folder": "INBOX",
    }
    assert account.password not in answer.text
    listed = await imap_api.client.get("/api/v1/mailboxes", headers=imap_api.auth)
    assert account.password not in listed.text
    assert [m["imap"]["username"] for m in listed.json()["items"]] == [account.user]
    # Stored encrypted, like OAuth tokens.
    (row,) = stored(imap_api)
    assert row.credentials_encrypted and account.password not in row.credentials_encrypted
    credentials = Cipher.from_settings(imap_api.settings).decrypt_credentials(
        row.credentials_encrypted
    )
    assert credentials.password == account.password


async def test_starttls_connects_too(imap_api: Api, account: Account) -> None:
    body = account.body(port=account.dovecot.port, security="starttls")
    answer = await connect(imap_api, body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["imap"]["security"] == "starttls"


def refused_cases(account: Account) -> dict[str, tuple[dict[str, Any], str, str]]:
    """body changes → (code, field)."""
    closed = free_port()
    return {
        "wrong password": ({"password": "not-the-password"}, "imap_auth_failed", "password"),
        "unknown user": ({"username": "nobody-here"}, "imap_auth_failed", "password"),
        "nothing listening": ({"port": closed}, "imap_unreachable", "host"),
        "no such host": ({"host": "no-such-host.invalid"}, "imap_unreachable", "host"),
        # TLS spoken to the plain port, and a certificate for another name.
        "tls to a plain port": ({"port": account.dovecot.port}, "imap_tls_failed", "security"),
        "name not on the certificate": ({"host": "127.0.0.1"}, "imap_tls_failed", "security"),
        "no such folder": ({"folder": "Support/Nope"}, "imap_folder_missing", "folder"),
        "plaintext": (
            {"port": account.dovecot.port, "security": "none"},
            "imap_plaintext_refused",
            "security",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong password",
        "unknown user",
        "nothing listening",
        "no such host",
        "tls to a plain port",
        "name not on the certificate",
        "no such folder",
        "plaintext",
    ],
)
async def test_a_refused_connection_names_what_failed_and_stores_nothing(
    imap_api: Api, account: Account, case: str
) -> None:
    changes, code, field = refused_cases(account)[case]

    answer = await connect(imap_api, account.body(**changes))

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert len(error["message"]) > 30 and account.password not in answer.text
    assert [f["field"] for f in error["fields"]] == [field]
    assert stored(imap_api) == []


async def test_an_untrusted_certificate_is_refused_without_the_ca_file(
    imap_api: Api, account: Account
) -> None:
    async with api_with(imap_api, imap_ca_file=None) as api:
        answer = await connect(api, account.body())
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "imap_tls_failed"
    assert "DESKCLONE_IMAP_CA_FILE" in answer.json()["error"]["message"]


async def test_plaintext_is_allowed_where_the_operator_allows_it(
    imap_api: Api, account: Account
) -> None:
    body = account.body(port=account.dovecot.port, security="none")
    async with api_with(imap_api, imap_allow_plaintext=True) as api:
        answer = await connect(api, body)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0},
        {"port": "993"},
        {"security": "ssl"},
        {"host": "imap.example.com/x"},
        {"password": ""},
        {"address": "not-an-address"},
        {"scopes": ["x"]},
    ],
)
async def test_bad_input_is_a_validation_error(
    imap_api: Api, account: Account, changes: dict[str, Any]
) -> None:
    answer = await connect(imap_api, account.body(**changes))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "validation_error"
    assert stored(imap_api) == []


def test_the_test_host_names_resolve_as_the_cases_expect() -> None:
    # "localhost" is on the certificate; 127.0.0.1 reaches the same server but is not.
    assert socket.gethostbyname("localhost") == "127.0.0.1"
