"""Small helpers that build raw emails for the domain tests."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

from domain.mime import NormalisedEmail, normalise_email


def raw_email(
    headers: list[tuple[str, str]] | None = None,
    body: str = "Hello, the printer is broken.\n",
    *,
    sender: str | None = "Ann Customer <ann@customer.example>",
    subject: str = "Printer broken",
) -> bytes:
    """A plain-text message with the given extra headers, as a mail server would hand it over."""
    lines = ["To: support@acme.example", f"Subject: {subject}", "Message-ID: <m1@customer.example>"]
    if sender is not None:
        lines.insert(0, f"From: {sender}")
    lines += [f"{name}: {value}" for name, value in headers or []]
    head = "\r\n".join(lines)
    return f"{head}\r\n\r\n{body}".encode()


def email_with(
    headers: list[tuple[str, str]] | None = None,
    *,
    sender: str | None = "Ann Customer <ann@customer.example>",
    subject: str = "Printer broken",
) -> NormalisedEmail:
    return normalise_email(raw_email(headers, sender=sender, subject=subject))


def reserialise(email: NormalisedEmail) -> bytes:
    """Write a normalised email back out as a fresh, well-formed message."""
    message = EmailMessage(policy=policy.SMTP)
    if email.from_address:
        message["From"] = (
            f'"{email.from_name}" <{email.from_address}>' if email.from_name else email.from_address
        )
    if email.to:
        message["To"] = ", ".join(email.to)
    if email.cc:
        message["Cc"] = ", ".join(email.cc)
    message["Subject"] = email.subject
    if email.message_id:
        message["Message-ID"] = f"<{email.message_id}>"
    if email.in_reply_to:
        message["In-Reply-To"] = " ".join(f"<{mid}>" for mid in email.in_reply_to)
    if email.references:
        message["References"] = " ".join(f"<{mid}>" for mid in email.references)
    if email.date:
        message["Date"] = email.date
    message.set_content(email.text)
    return message.as_bytes()
