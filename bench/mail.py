"""Realistic support mail for benchmarks: mixed sizes, HTML alternatives, attachments, replies."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

WORDS = (
    "invoice export fails order refund password reset login account billing shipping "
    "delivery tracking printer error screenshot attached please urgent thanks regards"
).split()


def backlog(count: int, seed: int = 7) -> list[bytes]:
    """`count` emails; about a fifth are replies to earlier ones, a fifth carry a PDF."""
    rng = random.Random(seed)
    mails: list[bytes] = []
    ids: list[tuple[str, str]] = []
    for i in range(count):
        message = EmailMessage()
        sender = f"customer{rng.randrange(count // 4 + 1)}@customer.example"
        message["From"] = f"Customer {i} <{sender}>"
        message["To"] = "support@acme.example"
        message_id = make_msgid(domain="customer.example")
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(datetime.now(UTC))
        subject = " ".join(rng.choices(WORDS, k=5)).capitalize()
        if ids and rng.random() < 0.2:
            parent_id, parent_subject = rng.choice(ids)
            message["In-Reply-To"] = parent_id
            message["References"] = parent_id
            subject = f"Re: {parent_subject}"
        message["Subject"] = subject
        paragraphs = [
            " ".join(rng.choices(WORDS, k=rng.randint(20, 120))) for _ in range(rng.randint(1, 6))
        ]
        text = "\n\n".join(paragraphs)
        message.set_content(text)
        message.add_alternative("".join(f"<p>{p}</p>" for p in paragraphs), subtype="html")
        if rng.random() < 0.2:
            message.add_attachment(
                rng.randbytes(rng.randint(2_000, 60_000)),
                maintype="application",
                subtype="pdf",
                filename=f"invoice-{i}.pdf",
            )
        ids.append((message_id, subject))
        mails.append(message.as_bytes())
    return mails
