"""The mailbox story end to end through `deskclone dev` and its emulator, over real HTTP, for
Gmail and for Outlook:
connect by following the authorization URL, mail becomes tickets, revoke → Auth Expired,
mail sent while expired is not lost, Reconnect keeps every setting."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.devstack import running_dev
from tests.fakes import make_email

ADDRESSES = {"gmail": "support@acme.example", "outlook": "help@contoso.example"}


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_dev(tmp_path_factory.mktemp("dev")) as facts:
        yield facts


def eventually(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("provider", ["gmail", "outlook"])
def test_mailbox_lifecycle(dev: dict[str, Any], provider: str) -> None:
    address = ADDRESSES[provider]
    verify = ssl.create_default_context(cafile=dev["emulator_ca"])
    auth = {"Authorization": f"Bearer {dev['admin_token']}"}
    api = httpx.Client(base_url=dev["api_url"], headers=auth, timeout=15)
    emulator = httpx.Client(base_url=dev["emulator_url"], verify=verify, timeout=15)

    def consent(authorization_url: str) -> httpx.Response:
        """What a browser does: the emulator consents at once and sends us to the callback."""
        approved = emulator.get(authorization_url)
        assert approved.status_code in (302, 303), approved.text
        return api.get(approved.headers["location"])

    def deliver(subject: str, **kw: Any) -> None:
        sent = emulator.post(
            f"/_emulator/mailboxes/{address}/messages",
            content=make_email(subject=subject, **kw),
            headers={"Content-Type": "message/rfc822"},
        )
        assert sent.status_code == 201, sent.text

    mailbox_id = ""

    def titles() -> list[str]:
        items = api.get("/api/v1/tickets", params={"source": "email"}).json()["items"]
        return sorted(t["title"] for t in items if t["mailbox_id"] == mailbox_id)

    with api, emulator:
        started = api.post("/api/v1/mailboxes", json={"provider": provider, "login_hint": address})
        assert started.status_code == 201, started.text
        callback = consent(started.json()["authorization_url"])
        assert callback.status_code == 303 and callback.headers["location"] == "/sources"
        items = api.get("/api/v1/mailboxes").json()["items"]
        mailbox = next(m for m in items if m["address"] == address)
        assert (mailbox["status"], mailbox["provider"]) == ("active", provider)
        mailbox_id = mailbox["id"]
        mailbox_url = f"/api/v1/mailboxes/{mailbox['id']}"

        patched = api.patch(
            mailbox_url,
            json={"allowed_senders": ["@customer.example"], "poll_interval_seconds": 3600},
        )
        assert patched.status_code == 200, patched.text

        deliver("First question")
        deliver("From a stranger", sender="eve@elsewhere.example")
        assert api.post(f"{mailbox_url}/poll").status_code == 202
        eventually(lambda: titles() == ["First question"], "the first ticket")

        def settled() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = api.get(f"{mailbox_url}/messages").json()["items"]
            return (
                items if all(m["outcome"] != "pending" for m in items) and len(items) == 2 else []
            )

        ledger = {m["subject"]: m for m in eventually(settled, "both emails in the ledger")}
        assert ledger["First question"]["outcome"] == "ticket_created"
        assert ledger["From a stranger"]["outcome"] == "skipped"
        assert "eve@elsewhere.example" in ledger["From a stranger"]["reason"]

        assert emulator.post(f"/_emulator/mailboxes/{address}/revoke").status_code in (
            200,
            201,
            204,
        )
        api.post(f"{mailbox_url}/poll")
        expired = eventually(
            lambda: (m := api.get(mailbox_url).json())["status"] == "auth_expired" and m,
            "auth_expired",
        )
        assert "Reconnect" in expired["last_error"]
        emulator.post("/_emulator/requests/reset")
        deliver("Sent while expired")
        time.sleep(1.5)
        counts = emulator.get("/_emulator/requests").json()["counts"]
        # No provider calls at all while expired (Gmail API, Graph, token endpoints).
        assert not any("/gmail/" in k or "/v1.0/" in k or "token" in k for k in counts), counts

        reconnect = api.post(f"{mailbox_url}/reconnect")
        assert reconnect.status_code == 200
        assert consent(reconnect.json()["authorization_url"]).status_code == 303
        eventually(
            lambda: titles() == ["First question", "Sent while expired"],
            "mail from the expired time",
        )
        after = api.get(mailbox_url).json()
        assert after["status"] == "active"
        assert after["allowed_senders"] == ["@customer.example"]
        assert after["poll_interval_seconds"] == 3600
        assert after["counts"]["tickets_created"] == 2 and after["counts"]["skipped"] == 1

        assert api.delete(mailbox_url).status_code == 204
        assert api.get(mailbox_url).status_code == 404
        assert titles() == ["First question", "Sent while expired"]  # tickets stay


def test_gmail_and_outlook_side_by_side(dev: dict[str, Any]) -> None:
    verify = ssl.create_default_context(cafile=dev["emulator_ca"])
    auth = {"Authorization": f"Bearer {dev['admin_token']}"}
    boxes = {"gmail": "both-g@acme.example", "outlook": "both-o@contoso.example"}
    with (
        httpx.Client(base_url=dev["api_url"], headers=auth, timeout=15) as api,
        httpx.Client(base_url=dev["emulator_url"], verify=verify, timeout=15) as emulator,
    ):
        ids = {}
        for provider, address in boxes.items():
            started = api.post(
                "/api/v1/mailboxes", json={"provider": provider, "login_hint": address}
            )
            approved = emulator.get(started.json()["authorization_url"])
            assert api.get(approved.headers["location"]).status_code == 303
            listed = api.get("/api/v1/mailboxes").json()["items"]
            ids[provider] = next(m["id"] for m in listed if m["address"] == address)
        for provider, address in boxes.items():
            emulator.post(
                f"/_emulator/mailboxes/{address}/messages",
                content=make_email(subject=f"Via {provider}"),
                headers={"Content-Type": "message/rfc822"},
            ).raise_for_status()
            api.post(f"/api/v1/mailboxes/{ids[provider]}/poll")

        def by_mailbox() -> dict[str, list[str]]:
            items = api.get("/api/v1/tickets", params={"source": "email", "limit": "100"}).json()[
                "items"
            ]
            found = {p: [t["title"] for t in items if t["mailbox_id"] == i] for p, i in ids.items()}
            return found if all(found.values()) else {}

        assert eventually(by_mailbox, "a ticket from each mailbox") == {
            "gmail": ["Via gmail"],
            "outlook": ["Via outlook"],
        }
        providers = {m["provider"] for m in api.get("/api/v1/mailboxes").json()["items"]}
        assert {"gmail", "outlook"} <= providers
