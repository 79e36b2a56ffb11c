"""Drive schemathesis cases against the live app on the test's own event loop.

The app shares the session loop with the in-process Temporal worker and the Temporal client, so
requests must run on that loop, not in the private loop of Starlette's TestClient (which
`Case.call` uses for ASGI apps). Hypothesis runs in a worker thread (`asyncio.to_thread`); each
generated case is sent with `asyncio.run_coroutine_threadsafe` through the test's httpx client
(`httpx.ASGITransport`) while the loop keeps serving the worker.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]*$")
REQUEST_TIMEOUT = 30.0

AnyCase = Case[Any]
AnyOperation = APIOperation[Any, Any, Any, Any]


def operations_of(schema: BaseSchema) -> list[AnyOperation]:
    """Every operation of `schema`; one the loader could not read fails the test."""
    found: list[AnyOperation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        found.append(result.ok())
    return found


def error_shape_problem(response: httpx.Response) -> str | None:
    """Why a 4xx/5xx body is not `{"error": {"code": "snake_case", "message": "..."}}`, if not."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} body is not JSON: {response.text[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"{response.status_code} body has no `error` object: {body!r}"[:300]
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not SNAKE_CASE.match(code):
        return f"{response.status_code} error.code is not snake_case text: {code!r}"
    if not isinstance(message, str) or not message:
        return f"{response.status_code} error.message is not text: {message!r}"
    return None


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`Case.as_transport_kwargs()` (requests-style) as `httpx.AsyncClient.request` arguments."""
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params") or None,
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    return out


@dataclass
class Runner:
    """Runs one bounded, derandomised hypothesis search per operation; collects failures."""

    client: httpx.AsyncClient
    loop: asyncio.AbstractEventLoop
    token: str
    # Path parameters to put in place of generated ones most of the time, so the search
    # gets past 404 into the handlers (`{"public_key": the agent's key, ...}`).
    real_path: dict[str, str]
    max_examples: int = 25
    failures: list[str] = field(default_factory=list)
    sent: int = 0
    statuses: dict[str, set[int]] = field(default_factory=dict)
    # Names the known (reported) bug a response shows, if any: such a case is not a failure,
    # only counted in `excused`.
    known_bug: Callable[[httpx.Response], str | None] | None = None
    excused: dict[str, int] = field(default_factory=dict)

    def send(self, case: AnyCase) -> httpx.Response:
        kwargs = case.as_transport_kwargs(base_url=str(self.client.base_url))
        request = httpx_kwargs(kwargs)
        # Schemathesis makes up a bearer value for every case; the real token replaces it,
        # except where the case deliberately breaks it (then 401 is expected), as long as that
        # value can be put on the wire at all.
        request["headers"] = {
            k: v for k, v in request["headers"].items() if k.lower() != "authorization"
        }
        request["headers"]["Authorization"] = f"Bearer {self.token}"
        if case.operation.schema.is_security_param_negated(case):
            value = next(
                (str(v) for k, v in (case.headers or {}).items() if k.lower() == "authorization"),
                None,
            )
            if value is None:
                del request["headers"]["Authorization"]
            elif value.isascii():
                request["headers"]["Authorization"] = value
        future = asyncio.run_coroutine_threadsafe(self.client.request(**request), self.loop)
        return future.result(timeout=REQUEST_TIMEOUT)

    def check(self, case: AnyCase, response: httpx.Response) -> None:
        case.validate_response(response, checks=CHECKS)
        problem = error_shape_problem(response)
        assert problem is None, problem

    def strategy(self, operation: AnyOperation) -> st.SearchStrategy[AnyCase]:
        has_input = bool(
            operation.body or operation.query or operation.path_parameters or operation.headers
        )
        modes = [GenerationMode.POSITIVE]
        # Negative cases also break the bearer token on admin routes (expect 401 then).
        public = operation.definition.raw.get("security") == []
        if has_input or not public:
            modes.append(GenerationMode.NEGATIVE)
        return st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))

    def run(self, operation: AnyOperation) -> None:
        """Search `operation`; a failure is recorded in `failures` (one per operation)."""
        label = f"{operation.method.upper()} {operation.path}"
        real = {k: v for k, v in self.real_path.items() if k in operation.path}

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=self.strategy(operation), use_real=st.integers(0, 3))
        def search(case: AnyCase, use_real: int) -> None:
            if real and use_real:
                case.path_parameters = {**(case.path_parameters or {}), **real}
            response = self.send(case)
            self.sent += 1
            self.statuses.setdefault(label, set()).add(response.status_code)
            bug = self.known_bug(response) if self.known_bug is not None else None
            if bug is not None:
                self.excused[bug] = self.excused.get(bug, 0) + 1
                return
            self.check(case, response)

        try:
            search()
        except Exception as error:
            self.failures.append(
                f"{label}:\n{''.join(traceback.format_exception_only(error))[:4000]}"
            )
