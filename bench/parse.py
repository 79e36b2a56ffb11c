"""How fast normalise_email (plus the loop guard and thread keys) eats a backlog.

Run: `.venv/bin/python -m bench.parse [count]` (or `--messages count`; default 2000). Not a
timed test (timings on shared machines are noise); the mail mix follows perf-notes.md: text +
HTML alternative, every fifth message with a small PDF, plus a reply chain in References. The
fixture corpus is measured too, as the hostile end of the range.

Baseline, same run, same messages: the standard library alone reading each message the way
`normalise_email` starts (`email.message_from_bytes`, compat32) and decoding every leaf part's
payload, with no normalisation, loop guard, thread keys or quote trimming: the floor of any
pipeline that reads the whole message. Prints two lines for people, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

from domain.loop_guards import check_loop
from domain.mime import normalise_email
from domain.quotes import trim_quoted_reply
from domain.thread_decision import thread_keys
from tests.domain.goldens import fixture_paths

_BODY = (
    "Hi support team,\n\nSince this morning the export of invoice {n} fails with an error "
    "message saying the file could not be generated. I tried Chrome and Firefox.\n\n"
    "Could you have a look? It is blocking our month-end closing.\n\nThanks a lot,\nJane Doe\n"
    "Finance, Customer Inc.\n\nOn Mon, Mar 4, 2024 at 10:12 AM ACME <support@acme.example> wrote:\n"
    "> Hello Jane,\n> please send us the invoice number.\n"
)


def typical_messages(count: int) -> list[bytes]:
    messages: list[bytes] = []
    for n in range(count):
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = f"Jane Doe <jane.doe{n % 50}@customer.example>"
        message["To"] = "ACME Support <support@acme.example>"
        message["Subject"] = f"Re: [#{1000 + n}] Export of invoice {n} fails \u2013 urgent"
        message["Message-ID"] = f"<msg-{n}@customer.example>"
        message["In-Reply-To"] = f"<ticket-{n}-2@acme.example>"
        message["References"] = " ".join(f"<ticket-{n}-{i}@acme.example>" for i in range(3))
        message["Date"] = "Mon, 4 Mar 2024 10:12:39 +0100"
        text = _BODY.format(n=n)
        message.set_content(text)
        html = "".join(f"<p>{line}</p>" for line in text.splitlines())
        message.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
        if n % 5 == 0:
            message.add_attachment(
                b"%PDF-1.4\n" + bytes(range(256)) * 60,
                maintype="application",
                subtype="pdf",
                filename=f"invoice-{n}.pdf",
            )
        messages.append(message.as_bytes())
    return messages


def measure(messages: list[bytes]) -> float:
    """Messages per second for the whole pure pipeline on one core."""
    start = time.perf_counter()
    for raw in messages:
        email = normalise_email(raw)
        check_loop(email, "support@acme.example")
        thread_keys(email, None)
        trim_quoted_reply(email.text)
    return len(messages) / (time.perf_counter() - start)


def measure_baseline(messages: list[bytes]) -> float:
    """Messages per second for the standard library's parse and payload decoding alone."""
    start = time.perf_counter()
    for raw in messages:
        for part in message_from_bytes(raw).walk():
            if not part.is_multipart():
                part.get_payload(decode=True)
    return len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", nargs="?", type=int, default=None)
    parser.add_argument("--messages", type=int, default=None)
    args = parser.parse_args()
    count = args.messages or args.count or 2000
    typical = typical_messages(count)
    fixtures = [path.read_bytes() for path in fixture_paths()]
    measure(typical[:50])  # warm up imports and caches
    measure_baseline(typical[:50])
    rate = measure(typical)
    baseline_rate = measure_baseline(typical)
    fixture_rate = measure(fixtures * 10)
    sys.stdout.write(
        f"typical mail: {count} messages, {rate:,.0f} messages/s\n"
        f"fixture corpus (hostile included): {fixture_rate:,.0f} messages/s\n"
    )
    result = {
        "messages": count,
        "msgs_per_s": round(rate, 1),
        "baseline_msgs_per_s": round(baseline_rate, 1),
        "ratio": round(baseline_rate / rate, 2),
        "fixture_messages": len(fixtures) * 10,
        "fixture_msgs_per_s": round(fixture_rate, 1),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
