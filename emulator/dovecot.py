"""A real Dovecot IMAP server in a directory of its own, for tests, benchmarks and `deskclone dev`.

Nothing here is an emulation: it runs Debian's `dovecot` binary (package `dovecot-imapd`) with a
config written into `root`, as the current user, on free ports of 127.0.0.1. Mail lives in
Maildirs under `root/mail/<user>`; users and passwords live in `root/passwd`, which Dovecot
rereads when it changes, so a test can add a user or change a password at any moment.

API (all synchronous; `emulator/` imports nothing of the product):

    server = Dovecot(root)           # nothing runs yet; `installed()` says if dovecot exists
    server.start()                   # writes config + self-signed cert, starts, waits for ports
    server.prepare(); server.command()  # the same, for a supervisor that runs the process itself
    server.wait_listening()
    server.host                      # "127.0.0.1"
    server.port                      # plain IMAP; STARTTLS offered (LOGIN allowed without TLS)
    server.tls_port                  # implicit TLS (IMAPS)
    server.ca_file                   # the self-signed certificate, for "localhost" only (so
                                     # 127.0.0.1 by address fails verification: a wrong name)
    server.add_user(name, password)  # also set_password(name, password), remove_user(name)
    server.append(user, raw, folder="INBOX", flags="") -> int  # IMAP APPEND: the new UID
    server.append_many(user, [raw, ...], folder="INBOX")  # a backlog in one session
    server.create_folder(user, name)
    server.flags(user, folder="INBOX") -> dict[int, frozenset[str]]  # UID -> flags, via EXAMINE
    server.uids(user, folder="INBOX") -> list[int]
    server.uid_validity(user, folder="INBOX") -> int
    server.set_uid_validity(user, value, folder="INBOX")  # `doveadm mailbox update`
    server.doveadm(*args) -> str     # any doveadm command against this config
    server.process_count() -> int    # dovecot's processes (master + children)
    server.stop(); server.start()    # same ports, same mail, same users. The server gets
                                     # SIGTERM when the thread that started it ends (so a
                                     # killed test run leaves none): start it from one that lives
    with running_dovecot(root) as server: ...  # start, then stop on exit

Settings kept for tests: plaintext LOGIN is allowed on the plain port (so the product's
`security: "none"` and STARTTLS are both testable), failed logins answer at once
(`auth_failure_delay = 0`), and each user may hold `max_user_connections` connections per IP.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from emulator.dovecot_setup import HOST, config_text, open_up, write_self_signed

INSTALL_HINT = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd"


def installed() -> bool:
    return shutil.which("dovecot", path=_PATH) is not None


_PATH = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"


def _binary(name: str) -> str:
    found = shutil.which(name, path=_PATH)
    if found is None:
        raise RuntimeError(f"{name} is not installed; install it with: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Dovecot:
    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        tls_port: int | None = None,
        max_user_connections: int = 50,
    ) -> None:
        self.root = Path(root).resolve()
        self.host = HOST
        self.port = port or free_port()
        self.tls_port = tls_port or free_port()
        self.max_user_connections = max_user_connections
        self._process: subprocess.Popen[bytes] | None = None

    # --- paths ---------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def passwd_file(self) -> Path:
        return self.root / "passwd"

    @property
    def ca_file(self) -> Path:
        return self.root / "cert.pem"

    @property
    def log_file(self) -> Path:
        return self.root / "dovecot.log"

    # --- lifecycle -----------------------------------------------------------------------

    def prepare(self) -> None:
        """Directories, certificate, passwd file and config: all a start needs."""
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if not self.ca_file.exists():
            write_self_signed(self.ca_file, self.root / "key.pem")
        open_up(self.root, [self.root / "mail", self.root / "home"])
        self.passwd_file.touch()
        self.config_file.write_text(self._config())

    def command(self) -> list[str]:
        """The master in the foreground (-F), for whoever runs it (`start`, or `deskclone dev`
        as one of its supervised children)."""
        return [_binary("dovecot"), "-F", "-c", str(self.config_file)]

    def start(self, timeout: float = 15.0) -> None:
        if self.running:
            return
        self.prepare()
        with open(self.root / "dovecot.stderr", "ab") as stderr:  # the child keeps its own copy
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_die_with_parent,  # a killed test run leaves no Dovecot behind
            )
        try:
            self.wait_listening(timeout)
        except RuntimeError:
            self.stop()
            raise

    def wait_listening(
        self, timeout: float = 15.0, exited: Callable[[], bool] | None = None
    ) -> None:
        """Until both ports listen. `exited` says whether the process ended, for a Dovecot
        started by someone else (`deskclone dev`'s supervisor)."""
        deadline = time.monotonic() + timeout
        while not (_greets(self.port) and _listening(self.tls_port)):
            ended = self._process.poll() is not None if self._process is not None else False
            if ended or (exited is not None and exited()):
                raise RuntimeError(f"dovecot exited at start: {self._tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not listen in {timeout}s: {self._tail()}")
            time.sleep(0.05)

    def password(self, name: str) -> str | None:
        """The user's password from the passwd file (None: no such user)."""
        try:
            return self._password(name)
        except KeyError:
            return None

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # the master stops its children before it exits
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        deadline = time.monotonic() + timeout
        while (_listening(self.port) or _listening(self.tls_port)) and time.monotonic() < deadline:
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def process_count(self) -> int:
        """The master and every process below it (login, imap, auth, anvil, ...)."""
        if self.pid is None:
            return 0
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        count, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            count += 1
            todo.extend(children.get(pid, []))
        return count

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- users ---------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        self.set_password(name, password)

    def set_password(self, name: str, password: str) -> None:
        if ":" in name or ":" in password or "\n" in name + password:
            raise ValueError("user names and passwords may not hold ':' or newlines here")
        lines = [line for line in self._passwd_lines() if line.split(":", 1)[0] != name]
        lines.append(f"{name}:{{PLAIN}}{password}")
        self._write_passwd(lines)
        if self.running:
            self._await_login(name, password)

    def _await_login(self, name: str, password: str, timeout: float = 5.0) -> None:
        """Dovecot rereads the passwd file at most once a second: wait until it has."""
        deadline = time.monotonic() + timeout
        while True:
            conn = imaplib.IMAP4(self.host, self.port, timeout=10)
            try:
                conn.login(name, password)
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
            finally:
                conn.logout()
            time.sleep(0.1)

    def remove_user(self, name: str) -> None:
        self._write_passwd([line for line in self._passwd_lines() if line.split(":", 1)[0] != name])

    def users(self) -> list[str]:
        return [line.split(":", 1)[0] for line in self._passwd_lines()]

    def _passwd_lines(self) -> list[str]:
        if not self.passwd_file.exists():
            return []
        return [line for line in self.passwd_file.read_text().splitlines() if line]

    def _write_passwd(self, lines: list[str]) -> None:
        # Written whole and renamed, so Dovecot never reads half a file.
        tmp = self.passwd_file.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in lines))
        os.replace(tmp, self.passwd_file)
        # Dovecot rereads passwd-file when its mtime changes; two writes in one second would
        # otherwise look like one.
        now = time.time()
        os.utime(self.passwd_file, (now, now + _bump()))

    def _password(self, name: str) -> str:
        for line in self._passwd_lines():
            user, _, rest = line.partition(":")
            if user == name:
                return rest.split(":", 1)[0].removeprefix("{PLAIN}")
        raise KeyError(name)

    # --- mail ----------------------------------------------------------------------------

    @contextmanager
    def session(self, user: str) -> Iterator[imaplib.IMAP4]:
        """A plain IMAP session logged in as `user` (its password from the passwd file)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            conn.login(user, self._password(user))
            yield conn
        finally:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> int:
        """File `raw` as a delivery agent would; `flags` like "(\\Flagged)". The new UID."""
        with self.session(user) as conn:
            typ, data = conn.append(_quote(folder), flags, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND refused: {data!r}")
            # [APPENDUID <uidvalidity> <uid>] (UIDPLUS, which Dovecot has)
            text = data[0].decode() if data and isinstance(data[0], bytes) else ""
            if "APPENDUID" in text:
                return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
            return max(self._uids(conn, folder), default=0)

    def append_many(self, user: str, raws: list[bytes], folder: str = "INBOX") -> None:
        """A backlog, in one session."""
        with self.session(user) as conn:
            for raw in raws:
                typ, data = conn.append(_quote(folder), "", None, raw)
                if typ != "OK":
                    raise RuntimeError(f"APPEND refused: {data!r}")

    def create_folder(self, user: str, name: str) -> None:
        with self.session(user) as conn:
            conn.create(_quote(name))

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        with self.session(user) as conn:
            typ, _ = conn.select(_quote(folder), readonly=True)  # EXAMINE
            if typ != "OK":
                raise RuntimeError(f"no folder {folder}")
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            result: dict[int, frozenset[str]] = {}
            for item in data:
                if not isinstance(item, bytes):
                    continue
                text = item.decode()
                uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
                inner = text.split("FLAGS (", 1)[1].split(")", 1)[0]
                # \\Recent belongs to a session, not to the message: left out.
                result[uid] = frozenset(inner.split()) - {"\\Recent"}
            return result

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        with self.session(user) as conn:
            return self._uids(conn, folder)

    def _uids(self, conn: imaplib.IMAP4, folder: str) -> list[int]:
        conn.select(_quote(folder), readonly=True)
        typ, data = conn.uid("SEARCH", "ALL")
        return [int(n) for n in (data[0] or b"").split()] if typ == "OK" else []

    def uid_validity(self, user: str, folder: str = "INBOX") -> int:
        with self.session(user) as conn:
            _typ, data = conn.status(_quote(folder), "(UIDVALIDITY)")
            text = data[0].decode() if isinstance(data[0], bytes) else ""
            return int(text.split("UIDVALIDITY", 1)[1].split(")")[0])

    def set_uid_validity(self, user: str, value: int, folder: str = "INBOX") -> None:
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(value), folder)

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            [_binary("doveadm"), "-c", str(self.config_file), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    # --- config --------------------------------------------------------------------------

    def _config(self) -> str:
        return config_text(
            root=self.root,
            host=self.host,
            port=self.port,
            tls_port=self.tls_port,
            max_user_connections=self.max_user_connections,
        )

    def _tail(self) -> str:
        parts = []
        for path in (self.log_file, self.root / "dovecot.stderr"):
            if path.exists():
                parts.append(path.read_text(errors="replace")[-1500:])
        return "\n".join(parts)


@contextmanager
def running_dovecot(root: Path) -> Iterator[Dovecot]:
    server = Dovecot(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


_bumps = 0


def _bump() -> int:
    global _bumps
    _bumps += 1
    return _bumps


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when its parent dies (Linux)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _greets(port: int) -> bool:
    """Dovecot itself answers there (not only something listening: a port taken by another
    program listens too, while the Dovecot that wanted it has exited)."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as conn:
            return conn.recv(64).startswith(b"* OK")
    except OSError:
        return False


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client context trusting this server's certificate (for tests' own IMAP clients)."""
    return ssl.create_default_context(cafile=str(ca_file))
