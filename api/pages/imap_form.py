"""The "Connect another mail server (IMAP)" form: presets for the common hosts, what was typed
checked and worded for the person who typed it, and a refused connection test put at the
field it concerns. The password is never kept: a re-rendered form asks for it again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import EmailStr, TypeAdapter, ValidationError

from providers.imap.server import SECURITIES, ImapServer, Security


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    host: str
    port: int
    security: str
    domains: tuple[str, ...] = ()  # addresses at these domains live on this host


# Each fills host, port and security; the person types the address and an app password.
PRESETS = (
    Preset(
        "fastmail", "Fastmail", "imap.fastmail.com", 993, "tls", ("fastmail.com", "fastmail.fm")
    ),
    Preset("zoho", "Zoho Mail", "imap.zoho.com", 993, "tls", ("zoho.com", "zohomail.com")),
    Preset(
        "icloud", "iCloud Mail", "imap.mail.me.com", 993, "tls", ("icloud.com", "me.com", "mac.com")
    ),
    Preset("yahoo", "Yahoo Mail", "imap.mail.yahoo.com", 993, "tls", ("yahoo.com", "ymail.com")),
    Preset("gmx", "GMX", "imap.gmx.com", 993, "tls", ("gmx.com", "gmx.us")),
    Preset(
        "outlook_imap",
        "Outlook.com (IMAP)",
        "outlook.office365.com",
        993,
        "tls",
        ("outlook.com", "hotmail.com", "live.com", "msn.com"),
    ),
    Preset("other", "Other mail server", "", 993, "tls"),
)
PRESETS_BY_KEY = {preset.key: preset for preset in PRESETS}
PRESETS_BY_DOMAIN = {domain: preset for preset in PRESETS for domain in preset.domains}
SECURITY: dict[Security, str] = {
    "tls": "TLS (usually port 993)",
    "starttls": "STARTTLS (usually port 143)",
    "none": "None: unencrypted (test servers only)",
}
FIELDS = ("address", "host", "port", "security", "username", "password", "folder")

# The fields a refused connection test concerns: its sentence goes under the first, and the
# others are marked too, pointing at that sentence.
REFUSAL_FIELDS = {
    "imap_auth_failed": ("password", "username"),
    "imap_unreachable": ("host", "port"),
    "imap_tls_failed": ("security", "port"),
    "imap_plaintext_refused": ("security",),
    "imap_folder_missing": ("folder",),
}

IMAP = "imap"  # the provider's name in the registry (providers/imap)
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


@dataclass(frozen=True)
class ImapConnection:
    """What the connection test needs, checked."""

    address: str
    host: str
    port: int
    security: Security
    username: str
    password: str
    folder: str

    def server(self) -> dict[str, str | int]:
        """What is stored in the clear beside the encrypted password (CONTRACT.md §7)."""
        return ImapServer(self.host, self.port, self.security, self.username, self.folder).as_dict()


@dataclass
class ImapForm:
    preset: str = "other"
    address: str = ""
    host: str = ""
    port: str = "993"
    security: str = "tls"
    username: str = ""
    folder: str = "INBOX"
    # field -> sentence shown under it; `marked`: field -> the field whose sentence explains it
    errors: dict[str, str] = field(default_factory=dict)
    marked: dict[str, str] = field(default_factory=dict)
    tested: bool = False  # the connection test ran (and was refused)

    @classmethod
    def typed(cls, get: Callable[[str], str]) -> ImapForm:
        """The form as posted. A preset, picked or known from the address's domain, fills
        the server when it was left empty (without JavaScript nothing fills it as you type)."""
        preset = PRESETS_BY_KEY.get(get("preset").strip(), PRESETS_BY_KEY["other"])
        address = get("address").strip()
        if preset.key == "other" and not get("host").strip():
            # An address at a known host's own domain needs no server typed.
            domain = address.rpartition("@")[2].lower()
            preset = PRESETS_BY_DOMAIN.get(domain, preset)
        form = cls(
            preset=preset.key,
            address=address,
            host=get("host").strip(),
            port=get("port").strip(),
            security=get("security").strip() or preset.security,
            username=get("username").strip(),
            folder=get("folder").strip() or "INBOX",
        )
        if preset.host and not form.host:
            form.host, form.port, form.security = preset.host, str(preset.port), preset.security
        if not form.port:
            form.port = str(preset.port)
        return form

    def check(self, password: str) -> ImapConnection | None:
        """The connection to test, or None with `errors` set."""
        try:
            address = _EMAIL.validate_python(self.address)
        except ValidationError:
            self.errors["address"] = (
                "Enter the mailbox's whole email address, like support@example.com."
            )
            address = ""
        host = self.host.lower()
        if not host:
            self.errors["host"] = "Enter the mail server's name, like imap.example.com."
        elif len(host) > 253 or any(c in "/:@" or c.isspace() for c in host):
            self.errors["host"] = (
                "Enter only the server's name, like imap.example.com: no imap:// and no port."
            )
        port = int(self.port) if self.port.isdigit() else 0
        if not 1 <= port <= 65535:
            self.errors["port"] = "Enter a port from 1 to 65535: usually 993 for TLS."
        security = next((s for s in SECURITIES if s == self.security), None)
        if security is None:
            self.errors["security"] = "Choose TLS, STARTTLS or None."
            self.security = "tls"
        if len(self.username) > 320:
            self.errors["username"] = "A username is at most 320 characters."
        if not password:
            self.errors["password"] = "Enter the mailbox's password or app password."
        elif len(password) > 1024:
            self.errors["password"] = "A password is at most 1024 characters."
        if len(self.folder) > 255:
            self.errors["folder"] = "A folder name is at most 255 characters."
        if self.errors or security is None:
            return None
        return ImapConnection(
            address=address,
            host=host,
            port=port,
            security=security,
            username=self.username or address,
            password=password,
            folder=self.folder,
        )

    def refused(self, code: str, message: str) -> None:
        """The connection test failed: its sentence at the field it concerns."""
        self.tested = True
        first, *others = REFUSAL_FIELDS.get(code, ("host",))
        self.errors[first] = message
        for other in others:
            self.marked.setdefault(other, first)

    def error_id(self, name: str) -> str | None:
        """The id of the sentence explaining this field, if one does."""
        if name in self.errors:
            return f"imap-{name}-error"
        if name in self.marked:
            return f"imap-{self.marked[name]}-error"
        return None

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def first_error(self) -> str | None:
        """The field the keyboard should be in when the form comes back refused."""
        return next((name for name in FIELDS if name in self.errors), None)
