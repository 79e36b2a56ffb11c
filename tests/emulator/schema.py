"""Checks emulator JSON against the Gmail discovery document the client library ships.

The library's own `gmail.v1.json` holds the response schemas; every key the
emulator emits must exist there with the right JSON type, so the emulator
cannot drift into shapes the real API never returns.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient  # type: ignore[import-untyped]

DISCOVERY_PATH = (
    Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "gmail.v1.json"
)
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


class SchemaMismatch(AssertionError):
    """A value the discovery document does not allow."""


@cache
def schemas() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DISCOVERY_PATH.read_text())
    found: dict[str, Any] = document["schemas"]
    return found


def assert_schema(value: object, schema_name: str) -> None:
    """Raise `SchemaMismatch` naming the first key or value `schema_name` does not allow."""
    _walk(value, {"$ref": schema_name}, schema_name)


def _walk(value: object, schema: dict[str, Any], path: str) -> None:
    if "$ref" in schema:
        schema = schemas()[schema["$ref"]]
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise SchemaMismatch(f"{path}: expected an object, got {value!r}")
        properties: dict[str, Any] = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                _walk(item, properties[key], f"{path}.{key}")
            elif "additionalProperties" in schema:
                _walk(item, schema["additionalProperties"], f"{path}.{key}")
            else:
                raise SchemaMismatch(f"{path}: key {key!r} is not in the schema")
    elif kind == "array":
        if not isinstance(value, list):
            raise SchemaMismatch(f"{path}: expected an array, got {value!r}")
        for index, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{index}]")
    elif kind == "string":
        _check_string(value, schema.get("format"), path)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaMismatch(f"{path}: expected an integer, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise SchemaMismatch(f"{path}: expected a boolean, got {value!r}")
    else:
        raise SchemaMismatch(f"{path}: schema type {kind!r} is not handled by this checker")


def _check_string(value: object, fmt: str | None, path: str) -> None:
    if not isinstance(value, str):
        raise SchemaMismatch(f"{path}: expected a string, got {value!r}")
    if fmt in ("int64", "uint64") and not value.isdigit():
        raise SchemaMismatch(f"{path}: expected a decimal {fmt} string, got {value!r}")
    if fmt == "byte" and (not _BASE64URL.match(value) or len(value) % 4 == 1):
        raise SchemaMismatch(f"{path}: not base64url: {value[:40]!r}")
