"""Golden files for the .eml fixtures: what normalising each one must give.

Regenerate after an intended change with `python -m tests.domain.goldens`, then read the
diff line by line: the goldens are the specification, not a snapshot to accept blindly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from domain.loop_guards import check_loop
from domain.mime import normalise_email
from domain.quotes import trim_quoted_reply
from domain.thread_decision import thread_keys

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
# The mailbox every fixture was delivered to.
MAILBOX = "support@acme.example"


def fixture_paths() -> list[Path]:
    return sorted(FIXTURES.glob("*.eml"))


def golden_path(eml: Path) -> Path:
    return eml.with_name(eml.stem + ".expected.json")


def golden_view(raw: bytes) -> dict[str, Any]:
    """The fields that matter, in a JSON-friendly shape."""
    email = normalise_email(raw)
    loop = check_loop(email, MAILBOX)
    return {
        "subject": email.subject,
        "from_address": email.from_address,
        "from_name": email.from_name,
        "reply_to": email.reply_to,
        "to": list(email.to),
        "cc": list(email.cc),
        "date": email.date.isoformat() if email.date else None,
        "message_id": email.message_id,
        "in_reply_to": list(email.in_reply_to),
        "references": list(email.references),
        "ticket_numbers": list(thread_keys(email, None).ticket_numbers),
        "content_type": email.content_type,
        "text": email.text,
        "trimmed_text": trim_quoted_reply(email.text),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in email.attachments
        ],
        "loop": {"outcome": loop.outcome.value, "rule": loop.rule},
        "defects": list(email.defects),
    }


def render(view: dict[str, Any]) -> str:
    return json.dumps(view, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for eml in fixture_paths():
        golden_path(eml).write_text(render(golden_view(eml.read_bytes())), encoding="utf-8")
    sys.stdout.write(f"wrote {len(fixture_paths())} goldens\n")


if __name__ == "__main__":
    main()
