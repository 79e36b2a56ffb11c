"""A real local HTTP endpoint for the emulator's pushes, and helpers around it."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import requests
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import id_token

from emulator.server import RunningEmulator

WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def pubsub_data(self) -> Any:
        """The Gmail notification inside a Pub/Sub push envelope."""
        return json.loads(base64.b64decode(self.json()["message"]["data"]))

    @property
    def bearer(self) -> str:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        assert scheme == "Bearer", self.headers
        return token


class Receiver:
    """Records every POST; answers from a per-path script (default 202), and answers
    Graph's validation requests (`?validationToken=`) as `validation` says."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: dict[str, list[int]] = {}
        #: "echo" (right), "wrong" (another body), or an HTTP status to answer instead.
        self.validation: str | int = "echo"
        self._changed = threading.Condition()
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        """The next answers to POSTs on `path`, in order (then 202 again)."""
        self._script.setdefault(path, []).extend(statuses)

    def record(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()

    def next_status(self, path: str) -> int:
        with self._changed:
            script = self._script.get(path)
            return script.pop(0) if script else 202

    def on(self, path: str) -> list[Received]:
        """What arrived on `path` so far, validation requests left out."""
        return [r for r in self.received if r.path == path and "validationToken" not in r.query]

    def wait_for(self, path: str, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.on(path)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.on(path))} of {count} pushes on {path}")
                self._changed.wait(left)
            return self.on(path)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(target.query).items()}
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.record(Received(target.path, query, headers, body, time.monotonic()))
            if "validationToken" in query:
                self._validate(query["validationToken"])
            else:
                self._reply(receiver.next_status(target.path), b"", "text/plain")

        def _validate(self, token: str) -> None:
            mode = receiver.validation
            if isinstance(mode, int):
                self._reply(mode, b"no", "text/plain")
            elif mode == "wrong":
                self._reply(200, b"not the token", "text/plain")
            else:
                self._reply(200, token.encode(), "text/plain; charset=utf-8")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = int(server.server_address[1])
    # A short poll interval: shutdown waits for the serving loop to notice.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="push-receiver", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- emulator-side helpers ---------------------------------------------------------------


def push_log(control: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = control.get("/_emulator/push/log").json()["items"]
    return items


def push_counts(control: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = control.get("/_emulator/requests").json()["pushes"]
    return counts


def assert_nothing_sent(emulator: RunningEmulator, control: httpx.Client) -> None:
    """No push pending and none attempted: deciding to push happens inside the request
    that delivered the mail, so right after it this is the whole truth."""
    assert emulator.state.push.pusher.pending() == 0
    assert [e for e in push_log(control) if e["kind"] != "validation"] == []


def wait_until_idle(emulator: RunningEmulator, timeout: float = WAIT_SECONDS) -> None:
    """Until the emulator has no push pending (sent, or given up)."""
    deadline = time.monotonic() + timeout
    while emulator.state.push.pusher.pending():
        assert time.monotonic() < deadline, "pushes still pending"
        time.sleep(0.02)


def verify_google_token(emulator: RunningEmulator, token: str, audience: str) -> dict[str, Any]:
    """What a push endpoint does: google-auth against the emulator's certs URL."""
    with requests.Session() as session:
        session.trust_env = False  # this machine's REQUESTS_CA_BUNDLE would win otherwise
        session.verify = str(emulator.ca_path)
        claims = id_token.verify_token(
            token,
            GoogleRequest(session=session),
            audience=audience,
            certs_url=emulator.url + "/oauth2/v1/certs",
        )
    return dict(claims)
