"""Serving the emulator: HTTPS with a CA made at start, blocking or on a thread.

A fresh `trustme` CA is made at every start and its PEM written to
`DATA_DIR/emulator-ca.pem` (what `dev.json` calls `emulator_ca`); the leaf
certificate (127.0.0.1, localhost, ::1) and its key never touch the disk.
Clients must be handed that CA explicitly: this machine exports
`REQUESTS_CA_BUNDLE` and `HTTPLIB2_CA_CERTS`, which override implicit settings.

- `serve(host, port, data_dir)` blocks until SIGINT or SIGTERM, then stops cleanly.
- `running_emulator(data_dir)` runs it on a background thread for pytest.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import trustme
import uvicorn

from emulator.app import create_emulator_app
from emulator.state import EmulatorState

logger = logging.getLogger(__name__)

CA_FILENAME = "emulator-ca.pem"
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0


@dataclass
class RunningEmulator:
    """A started emulator: where it listens, the CA to trust, and its live state."""

    url: str
    port: int
    ca_path: Path | None
    state: EmulatorState
    _thread: threading.Thread = field(repr=False)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only the emulator's CA (for httpx `verify=`)."""
        if self.ca_path is None:
            raise RuntimeError("this emulator serves plain HTTP")
        return ssl.create_default_context(cafile=str(self.ca_path))


def _tls_factory(data_dir: Path) -> tuple[Path, Callable[..., ssl.SSLContext]]:
    ca = trustme.CA(organization_name="DeskClone provider emulator")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_path = data_dir / CA_FILENAME
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)

    def factory(*_: object) -> ssl.SSLContext:
        return context

    return ca_path, factory


def _bind(host: str, port: int) -> socket.socket:
    # Bound before uvicorn starts so port 0 resolves to a real port we can report.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto is IPPROTO_TCP, and without it every keep-alive response stalls ~40 ms
    # (Nagle against delayed ACKs, since headers and body are written separately).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _public_url(scheme: str, host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _run_server(server: uvicorn.Server, sock: socket.socket, state: EmulatorState) -> None:
    async def main() -> None:
        # The coroutine is created inside the thread's own loop; building it (or a
        # gather over several) before asyncio.run hangs, as research §7 found.
        state.push.pusher.bind(asyncio.get_running_loop())
        try:
            await server.serve(sockets=[sock])
        finally:
            # Pushes run on this loop: cancel what is still pending and close their
            # client before the loop goes, so nothing outlives the emulator.
            await state.push.pusher.aclose()

    asyncio.run(main())


@contextmanager
def running_emulator(
    data_dir: Path,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    state: EmulatorState | None = None,
    tls: bool = True,
) -> Iterator[RunningEmulator]:
    """Run the emulator on a background thread (own event loop) until the block ends."""
    world = state if state is not None else EmulatorState()
    data_dir.mkdir(parents=True, exist_ok=True)
    ca_path, factory = _tls_factory(data_dir) if tls else (None, None)
    config = uvicorn.Config(
        create_emulator_app(world),
        ssl_context_factory=factory,
        # None keeps uvicorn from rewriting the host process's logging setup.
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    sock = _bind(host, port)
    thread = threading.Thread(
        target=_run_server, args=(server, sock, world), name="provider-emulator", daemon=True
    )
    try:
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the provider emulator did not start")
            time.sleep(0.01)
        bound_port = int(sock.getsockname()[1])
        url = _public_url("https" if tls else "http", host, bound_port)
        yield RunningEmulator(
            url=url, port=bound_port, ca_path=ca_path, state=world, _thread=thread
        )
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        sock.close()


def serve(host: str, port: int, data_dir: Path, *, tls: bool = True) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly and return."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with running_emulator(data_dir, port, host=host, tls=tls) as emulator:
            logger.info("provider emulator serving at %s (CA: %s)", emulator.url, emulator.ca_path)
            # Short waits keep the main thread responsive to signals.
            while not stop.wait(0.2):
                if not emulator.alive():
                    raise RuntimeError("the provider emulator stopped unexpectedly")
        logger.info("provider emulator stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
