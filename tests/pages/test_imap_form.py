"""The IMAP connect form's rules: presets, defaults, checks, and where a refusal is shown."""

from __future__ import annotations

from api.pages.imap_form import PRESETS_BY_KEY, REFUSAL_FIELDS, ImapForm


def typed(**fields: str) -> ImapForm:
    return ImapForm.typed(lambda name: fields.get(name, ""))


def test_a_preset_fills_the_server_fields_left_empty() -> None:
    form = typed(preset="fastmail", address="help@acme.example", port="", security="")
    assert (form.host, form.port, form.security) == ("imap.fastmail.com", "993", "tls")
    connection = form.check("app-password")
    assert connection is not None
    assert connection.host == "imap.fastmail.com" and connection.port == 993


def test_what_was_typed_wins_over_the_preset() -> None:
    form = typed(preset="zoho", host="mail.acme.example", port="143", security="starttls")
    assert (form.host, form.port, form.security) == ("mail.acme.example", "143", "starttls")


def test_every_preset_named_in_the_issue_is_there() -> None:
    expected = {
        "fastmail": "imap.fastmail.com",
        "zoho": "imap.zoho.com",
        "icloud": "imap.mail.me.com",
        "yahoo": "imap.mail.yahoo.com",
        "gmx": "imap.gmx.com",
        "outlook_imap": "outlook.office365.com",
        "other": "",
    }
    assert {key: p.host for key, p in PRESETS_BY_KEY.items()} == expected
    assert all(p.port == 993 and p.security == "tls" for p in PRESETS_BY_KEY.values())


def test_the_username_defaults_to_the_address_and_the_folder_to_inbox() -> None:
    form = typed(address=" Help@Acme.example ", host="IMAP.acme.example", port="993")
    connection = form.check("secret")
    assert connection is not None
    assert connection.username == connection.address
    assert connection.folder == "INBOX" and connection.host == "imap.acme.example"
    assert connection.server() == {
        "host": "imap.acme.example",
        "port": 993,
        "security": "tls",
        "username": "Help@acme.example",  # as typed: a server may tell case apart
        "folder": "INBOX",
    }


def test_each_wrong_field_gets_its_own_sentence() -> None:
    form = typed(address="not an address", host="imaps://x.example", port="70000", security="ssl")
    assert form.check("") is None
    assert set(form.errors) == {"address", "host", "port", "security", "password"}
    assert "no imap://" in form.errors["host"]
    assert form.security == "tls"  # an unknown choice is not shown back as selected
    assert form.error_id("address") == "imap-address-error" and form.error_id("folder") is None


def test_a_refused_login_is_shown_at_the_password_and_marks_the_username() -> None:
    form = typed(address="help@acme.example", host="imap.acme.example")
    form.refused("imap_auth_failed", "The server refused this username and password.")
    assert form.errors == {"password": "The server refused this username and password."}
    assert form.error_id("username") == "imap-password-error"
    assert form.failed


def test_each_refusal_code_concerns_the_fields_the_brief_names() -> None:
    where = {code: fields[0] for code, fields in REFUSAL_FIELDS.items()}
    assert where == {
        "imap_auth_failed": "password",
        "imap_unreachable": "host",
        "imap_tls_failed": "security",
        "imap_plaintext_refused": "security",
        "imap_folder_missing": "folder",
    }
    form = typed()
    form.refused("imap_something_new", "Something else went wrong.")
    assert form.errors == {"host": "Something else went wrong."}


def test_the_first_refused_field_in_form_order_gets_the_keyboard() -> None:
    form = typed(address="help@acme.example", host="", port="993")
    assert form.check("") is None
    assert form.first_error == "host"
    clean = typed()
    assert clean.first_error is None


def test_an_address_at_a_known_hosts_domain_needs_no_server_typed() -> None:
    form = typed(preset="other", address="help@iCloud.com", port="", security="")
    assert (form.preset, form.host, form.port) == ("icloud", "imap.mail.me.com", "993")
    assert typed(preset="other", address="help@hotmail.com").host == "outlook.office365.com"
    # A typed server, or a domain nobody knows, is left as it is.
    assert typed(preset="other", address="help@icloud.com", host="mail.acme.example").host == (
        "mail.acme.example"
    )
    unknown = typed(preset="other", address="help@acme.example")
    assert (unknown.preset, unknown.host) == ("other", "")
