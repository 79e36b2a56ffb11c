"""How emulator/dovecot.py's Dovecot is set up: its config file, who its processes run as, and
its self-signed certificate. Nothing of the product is imported here either."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def config_text(
    *, root: Path, host: str, port: int, tls_port: int, max_user_connections: int
) -> str:
    users = accounts()
    uid, gid = users.mail_uid, users.mail_gid
    user = users.internal
    r = root
    return f"""# Written by emulator/dovecot.py; rewritten at every start.
base_dir = {r}/run
state_dir = {r}/state
log_path = {root / "dovecot.log"}
instance_name = deskclone-{port}
protocols = imap
listen = {host}
ssl = yes
ssl_cert = <{root / "cert.pem"}
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {users.internal_group}
default_login_user = {users.login}
first_valid_uid = {min(uid, 500)}
first_valid_gid = {min(gid, 500)}
mail_location = maildir:{r}/mail/%u
mail_max_userip_connections = {max_user_connections}
mail_privileged_group =
shutdown_clients = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root / "passwd"}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={r}/home/%u
}}
service imap-login {{
  inet_listener imap {{
address = {host}
port = {port}
  }}
  inet_listener imaps {{
address = {host}
port = {tls_port}
ssl = yes
  }}
  process_min_avail = 1
  client_limit = 1000
  service_count = 0
}}
service imap {{
  process_limit = 2048
}}
default_client_limit = 4096
default_vsz_limit = 512M
service anvil {{
  unix_listener anvil {{
user = {user}
  }}
  # No growing delay after failed logins from one IP: every test logs in from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
mode = 0
  }}
}}
service auth {{
  unix_listener auth-userdb {{
user = {user}
  }}
}}
"""


@dataclass(frozen=True)
class _Accounts:
    internal: str  # auth, anvil, stats
    internal_group: str
    login: str  # imap-login
    mail_uid: int  # imap processes and the Maildirs
    mail_gid: int


def accounts() -> _Accounts:
    """Who each Dovecot process runs as. As an ordinary user: that user, for everything. As
    root (containers, CI): Dovecot refuses root for its login and mail processes, so they take
    Debian's `dovenull` and `dovecot` accounts and mail belongs to `nobody`."""
    import grp
    import pwd

    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid()).pw_name
        return _Accounts(me, grp.getgrgid(os.getgid()).gr_name, me, os.getuid(), os.getgid())
    nobody = pwd.getpwnam("nobody")
    return _Accounts("dovecot", "dovecot", "dovenull", nobody.pw_uid, nobody.pw_gid)


def open_up(root: Path, mail_dirs: list[Path]) -> None:
    """As root, the unprivileged processes must reach the config dir and own the mail."""
    if os.getuid() != 0:
        return
    root.chmod(0o755)
    for parent in root.parents:
        if not parent.stat().st_mode & 0o001:
            raise RuntimeError(
                f"{parent} is closed to other users; Dovecot's unprivileged processes must "
                f"reach {root}: put it elsewhere (e.g. under /tmp) or chmod o+x {parent}"
            )
    owner = accounts()
    for path in mail_dirs:
        os.chown(path, owner.mail_uid, owner.mail_gid)


def write_self_signed(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for localhost, usable as its own CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            # The name only: a client that connects to 127.0.0.1 by address is refused,
            # which is how tests see a certificate that does not name its host.
            x509.SubjectAlternativeName([x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
