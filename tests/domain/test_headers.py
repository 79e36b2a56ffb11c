"""Header and charset decoding: RFC 2047 words, raw 8-bit bytes, addresses, ids."""

from __future__ import annotations

import pytest

from domain.charsets import codec_name, decode_bytes
from domain.headers import decode_header_value, is_address, message_ids, parse_addresses


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9_ol=C3=A9?=", "café olé"),
        ("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=", "éé"),  # space between words is dropped
        ("=?utf-8?q?a?= plain =?utf-8?q?b?=", "a plain b"),
        ("=?iso-8859-1?q?=E9t=E9?=", "été"),
        ("=?windows-1252?q?=93quoted=94?=", "“quoted”"),
        ("=?iso-8859-1?q?=93Outlook=94?=", "“Outlook”"),  # Outlook's mislabelled cp1252
        ("=?utf-8*en?q?lang?=", "lang"),
        ("=?UTF-8?B?4oCT?=", "\u2013"),  # en dash
        ("=?UTF-8?B?4g==?= =?UTF-8?B?gJM=?=", "\u2013"),  # one character split over two words
        ("=?x-unknown?q?ok?=", "ok"),
        ("=?utf-8?b?bad base64?=", "=?utf-8?b?bad base64?="),
        ("  folded\r\n   value  ", "folded value"),
        ("Fejl p\udcc3\udca5 fakturaen", "Fejl på fakturaen"),  # raw UTF-8 bytes
        ("caf\udce9", "café"),  # raw latin-1 byte
        ("nul\x00byte", "nulbyte"),
    ],
)
def test_decode_header_value_decodes_every_encoding(value: str, expected: str) -> None:
    assert decode_header_value(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ann <ANN@X.example>", [("Ann", "ann@x.example")]),
        (
            '"Doe, John" <j@x.example>, k@y.example',
            [("Doe, John", "j@x.example"), ("", "k@y.example")],
        ),
        ("'Bob Smith' <bob@x.example>", [("Bob Smith", "bob@x.example")]),
        ("=?utf-8?q?J=C3=B6rg?= <j@x.example>", [("Jörg", "j@x.example")]),
        ("undisclosed-recipients:;", []),
        ("", []),
        # A bare local part is no address: a reply to it would go nowhere.
        ("MAILER-DAEMON", []),
    ],
)
def test_parse_addresses_gives_names_and_lowercased_addresses(
    value: str, expected: list[tuple[str, str]]
) -> None:
    assert parse_addresses(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The address without angle brackets after a name (some webmail and scripts).
        ("Big Bug bb@bug.example", [("Big Bug", "bb@bug.example")]),
        ('"Bug, Big" BB@bug.example', [("Bug, Big", "bb@bug.example")]),
        # Several addresses without commas: each one, in order.
        ("a@x.example b@x.example", [("", "a@x.example"), ("", "b@x.example")]),
        (
            "a@x.example\tb@y.example c@z.example",
            [("", "a@x.example"), ("", "b@y.example"), ("", "c@z.example")],
        ),
        (
            "Ann <ann@x.example>, Big Bug bb@bug.example",
            [("Ann", "ann@x.example"), ("Big Bug", "bb@bug.example")],
        ),
        # Comments (RFC 5322 CFWS) inside and around addresses.
        ("bb@bug.example (Big Bug)", [("Big Bug", "bb@bug.example")]),
        ("Big (the bug) Bug <bb@bug.example>", [("Big Bug (the bug)", "bb@bug.example")]),
        ("Big Bug <bb@bug.example> (work)", [("Big Bug", "bb@bug.example")]),
        ("<bb@(c)bug.example>", [("c", "bb@bug.example")]),
        ("Big Bug <bb @ bug.example>", [("Big Bug", "bb@bug.example")]),
        # An obsolete source route is dropped.
        ("<@relay.example:bb@bug.example>", [("", "bb@bug.example")]),
        # Never an address without a local part or a domain.
        ("@example.com", []),
        ("<@example.com>", []),
        ("user@", []),
        ("Joe <joe>", []),
        ("a@b@c.example", []),
        ("=?utf-8?q?a@b?=", []),
        ("a@.example", []),
        ('""@x.example', []),
        ("@example.com, Ann ann@x.example", [("Ann", "ann@x.example")]),
    ],
)
def test_parse_addresses_reads_every_shape_servers_store(
    value: str, expected: list[tuple[str, str]]
) -> None:
    assert parse_addresses(value) == expected


@pytest.mark.parametrize(
    "address",
    ["a@x.example", "first.last+tag@sub.x.example", "o'brien@x.example", "a@[192.0.2.1]",
     "jörg@bücher.example", "a..b.@docomo.example", "root@localhost", '"quoted"@x.example'],
)  # fmt: skip
def test_is_address_accepts_a_local_part_and_a_domain(address: str) -> None:
    assert is_address(address)


@pytest.mark.parametrize(
    "address",
    ["", "@x.example", "a@", "a", "a@@x.example", "a@b@x.example", "a b@x.example",
     "<a@x.example>", "a@x..example", "a@.x.example", ".@x.example", '""@x.example',
     "a@x.example?=", "a@x,example"],
)  # fmt: skip
def test_is_address_refuses_anything_else(address: str) -> None:
    assert not is_address(address)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@x> <b@x>", ["a@x", "b@x"]),
        ("<a@x>,<a@x>\r\n <c@x>", ["a@x", "c@x"]),
        ("junk before <a@x> junk after", ["a@x"]),
        ("bare@x", ["bare@x"]),
        ("", []),
    ],
)
def test_message_ids_are_unbracketed_ordered_and_unique(value: str, expected: list[str]) -> None:
    assert message_ids(value) == expected


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("UTF-8", "utf_8"),
        ('"iso-8859-1"', "iso8859_1"),
        ("ks_c_5601-1987", "cp949"),
        ("gb2312", "gb18030"),
        ("x-bogus", None),
        ("base64", None),
        ("unicode_escape", None),
        ("", None),
        (None, None),
    ],
)
def test_codec_name_maps_mail_labels_and_refuses_non_charsets(
    charset: str | None, expected: str | None
) -> None:
    assert codec_name(charset) == expected


@pytest.mark.parametrize(
    ("data", "charset", "text", "has_problem"),
    [
        ("ünïcödé".encode(), "utf-8", "ünïcödé", False),
        ("ünïcödé".encode(), "us-ascii", "ünïcödé", False),  # mislabelled but valid UTF-8
        ("blåbær".encode(), "iso-8859-1", "blåbær", False),
        ("“q” €".encode("cp1252"), "utf-8", "“q” €", True),
        ("“q” €".encode("cp1252"), None, "“q” €", True),
        ("ok ü".encode(), "x-nonsense", "ok ü", True),
        ("日本".encode("cp932") + b"\x80", "shift_jis", "日本\x80", False),
        (b"\x81\x8d", "windows-1252", "\x81\x8d", True),
    ],
)
def test_decode_bytes_falls_back_without_failing(
    data: bytes, charset: str | None, text: str, has_problem: bool
) -> None:
    decoded, problem = decode_bytes(data, charset)
    assert decoded == text
    assert (problem is not None) == has_problem
