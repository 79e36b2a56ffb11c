"""`deskclone dev`'s sandbox mail server: a real Dovecot (emulator/dovecot.py) in the data dir,
run as one more supervised child, with one account a newcomer connects from the Sources page
and mails with any IMAP client or `curl`. Its ports and password are kept in the data dir, so a
mailbox connected once still works after the next `deskclone dev`.

Without Debian's `dovecot-imapd` the rest of dev starts as ever and the banner says how to add
it."""

from __future__ import annotations

import json
import logging
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deskclone.children import Child
from emulator.dovecot import INSTALL_HINT, Dovecot, free_port, installed

log = logging.getLogger("deskclone.dev")

SANDBOX_USER = "support@sandbox.example"


@dataclass(frozen=True)
class ImapSandbox:
    server: Dovecot
    child: Child
    password: str

    def facts(self) -> dict[str, Any]:
        """dev.json's "imap": what the Sources form and a mail client need."""
        return {
            "address": SANDBOX_USER,
            "username": SANDBOX_USER,
            "password": self.password,
            # Plain (allowed in dev) or STARTTLS on `port`; implicit TLS on `tls_port` for
            # "localhost", whose certificate dev trusts (DESKCLONE_IMAP_CA_FILE).
            "host": self.server.host,
            "port": self.server.port,
            "security": "none",
            "tls_host": "localhost",
            "tls_port": self.server.tls_port,
            "ca_file": str(self.server.ca_file),
        }


def ca_bundle(data_dir: Path) -> Path:
    """What dev's workers trust for IMAP: the sandbox's certificate, and the CA file the
    developer set (DESKCLONE_IMAP_CA_FILE), if any."""
    return data_dir / "imap-ca.pem"


def sandbox_ca(data_dir: Path) -> dict[str, str]:
    """The setting that makes the workers trust the sandbox, where there can be one."""
    if not installed():
        return {}  # the developer's own DESKCLONE_IMAP_CA_FILE, if set, stays as it is
    return {"DESKCLONE_IMAP_CA_FILE": str(ca_bundle(data_dir))}


def _write_bundle(data_dir: Path, own_ca: Path | None, sandbox_cert: Path) -> None:
    parts = [path.read_text() for path in (own_ca, sandbox_cert) if path and path.is_file()]
    if not parts:  # an empty CA file would fail every TLS connection: the system's instead
        system = Path(ssl.get_default_verify_paths().openssl_cafile)
        parts = [system.read_text()] if system.is_file() else []
    ca_bundle(data_dir).write_text("\n".join(parts))


def prepare_sandbox(
    data_dir: Path, env: dict[str, str], own_ca: Path | None = None
) -> ImapSandbox | str:
    """The sandbox, ready to start; or why there is none, in words for the banner."""
    if not installed():
        return f"not started: dovecot is not installed ({INSTALL_HINT})"
    root = data_dir / "dovecot"
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _prepare(root, env)
    finally:
        _write_bundle(data_dir, own_ca, root / "cert.pem")


def _prepare(root: Path, env: dict[str, str]) -> ImapSandbox | str:
    remembered = root / "sandbox.json"
    kept: dict[str, int] = json.loads(remembered.read_text()) if remembered.exists() else {}
    server = Dovecot(
        root, port=kept.get("port") or free_port(), tls_port=kept.get("tls_port") or free_port()
    )
    try:
        server.prepare()
    except (OSError, RuntimeError) as error:
        log.warning("IMAP sandbox not started: %s", error)
        return f"not started: {error}"
    remembered.write_text(json.dumps({"port": server.port, "tls_port": server.tls_port}))
    password = server.password(SANDBOX_USER) or secrets.token_urlsafe(12)
    server.set_password(SANDBOX_USER, password)
    child = Child("imap", server.command(), env, log_file=root / "dovecot.stderr", restart=True)
    return ImapSandbox(server, child, password)


def banner_line(sandbox: ImapSandbox | str) -> str:
    if isinstance(sandbox, str):
        return f"  IMAP sandbox    {sandbox}"
    facts = sandbox.facts()
    return (
        f"  IMAP sandbox    {facts['host']}:{facts['port']} user {facts['username']} "
        f"password {facts['password']} (security none; TLS: {facts['tls_host']}:"
        f"{facts['tls_port']})"
    )
