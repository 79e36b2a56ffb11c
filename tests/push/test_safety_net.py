"""The safety net: with push live a mailbox still polls now and then, and mail that poll finds
with no notification for it means push broke silently, so push is set up anew at once.

The system here polls its safety net every 10 s instead of 900 s, so it is seen in seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.faults.conftest import System, system_of_its_own
from tests.push.conftest import connected, eventually, mail


@pytest.fixture(scope="module")
def quick_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with system_of_its_own(
        tmp_path_factory.mktemp("safety-net"), DESKCLONE_PUSH_SAFETY_POLL_SECONDS="10"
    ) as running:
        yield running


@pytest.mark.parametrize("provider", ["gmail", "outlook"])
def test_a_silently_expired_push_is_found_out_and_set_up_again(
    quick_net: System, provider: str
) -> None:
    address, mailbox_id = connected(quick_net, provider, interval=10)
    held = quick_net.emulator.get(f"/_emulator/mailboxes/{address}/push").json()
    expired = quick_net.emulator.post(f"/_emulator/mailboxes/{address}/push/expire")
    assert expired.status_code == 202
    assert quick_net.emulator.get(f"/_emulator/mailboxes/{address}/push").json()["kind"] is None
    subject = f"Unannounced {provider} {time.monotonic()}"
    quick_net.deliver(address, [mail(subject)], provider)
    # No notification comes; the safety-net poll finds the mail within its interval.
    eventually(
        lambda: quick_net.api.get("/api/v1/tickets", params={"q": subject}).json()["items"],
        "the safety net's ticket",
        30,
    )
    renewed = eventually(
        lambda: (
            (h := quick_net.emulator.get(f"/_emulator/mailboxes/{address}/push").json())["kind"]
            and h
        ),
        "push set up again",
        15,
    )
    assert renewed["kind"] == held["kind"]
    if provider == "outlook":
        assert renewed["id"] != held["id"]
    # Live again: the next mail is pushed.
    subject = f"Pushed again {provider} {time.monotonic()}"
    started = time.monotonic()
    quick_net.deliver(address, [mail(subject)], provider)
    eventually(
        lambda: quick_net.api.get("/api/v1/tickets", params={"q": subject}).json()["items"],
        "the pushed ticket",
        10,
    )
    assert time.monotonic() - started < 5
    assert quick_net.mailbox(mailbox_id)["push"]["state"] == "live"
