"""Structured logs: one JSON object per line, with mailbox and workflow ids where known.

Never a secret: configured secret values are replaced wherever they appear, and so is anything
shaped like a bearer token, an OAuth token, code or client secret, or a password in a URL.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

REDACTED = "[redacted]"

# Key/value pairs whose value is a secret, as they appear in URLs, form bodies, JSON and reprs.
_SECRET_PAIR = re.compile(
    r"(?i)(\b(?:access_token|refresh_token|id_token|client_secret|code_verifier|code|"
    r"password|passwd|secret_key|admin_token|api_key|token)\b[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"'&,;}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
# user:password@host in database and other URLs.
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)([^@\s/]+)(@)")
# Attribute names a log call may pass in `extra` whose value must never be written.
_SECRET_KEY_NAME = re.compile(r"(?i)token|secret|password|credential|authorization|cookie")

# LogRecord attributes that are not `extra` fields.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
# Fields copied from Temporal's context dicts (`temporal_workflow`, `temporal_activity`).
_TEMPORAL_FIELDS = ("workflow_id", "run_id", "workflow_type", "activity_id", "activity_type")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<3>", text)
    return _SECRET_PAIR.sub(rf"\g<1>{REDACTED}", text)


def _mailbox_from_workflow(workflow_id: str | None) -> str | None:
    if workflow_id and workflow_id.startswith("mailbox:"):
        return workflow_id.removeprefix("mailbox:")
    return None


def _temporal_context() -> dict[str, str]:
    """Inside an activity (its thread or task), the ids of the activity and its workflow."""
    from temporalio import activity

    if not activity.in_activity():
        return {}
    info = activity.info()
    found = {
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "workflow_type": info.workflow_type,
        "activity_id": info.activity_id,
        "activity_type": info.activity_type,
    }
    return {key: value for key, value in found.items() if value}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "mailbox_id"?, "workflow_id"?, ..., "error"?}`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._clean(record.getMessage()),
        }
        try:
            entry.update(_temporal_context())
        except Exception:  # a log line must never fail because of its context
            pass
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if key in ("temporal_workflow", "temporal_activity") and isinstance(value, Mapping):
                for field in _TEMPORAL_FIELDS:
                    if value.get(field) is not None:
                        entry[field] = str(value[field])
                continue
            entry[key] = REDACTED if _SECRET_KEY_NAME.search(key) else self._value(value)
        mailbox_id = entry.get("mailbox_id") or _mailbox_from_workflow(entry.get("workflow_id"))
        if mailbox_id:
            entry["mailbox_id"] = mailbox_id
        if record.exc_info:
            entry["error"] = self._clean(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["error"] = self._clean(record.exc_text)
        if record.stack_info:
            entry["stack"] = self._clean(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def _value(self, value: object) -> object:
        if value is None or isinstance(value, bool | int | float):
            return value
        return self._clean(value if isinstance(value, str) else repr(value))


def secret_values(settings: Any) -> list[str]:
    """Every secret a Settings object holds, for the formatter to blank out wherever it is."""
    from pydantic import SecretStr
    from sqlalchemy.engine.url import make_url

    found: list[str] = []
    for value in dict(settings).values():
        items = value if isinstance(value, list) else [value]
        found += [v.get_secret_value() for v in items if isinstance(v, SecretStr)]
    if settings.database_url:
        try:
            password = make_url(settings.database_url).password
        except Exception:
            password = None
        if password:
            found.append(str(password))
    return [s for s in found if s]
