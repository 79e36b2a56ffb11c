"""Turning the bytes of a mail part or header into text, whatever charset it claims.

Mail in the wild lies about its charset (Outlook labels windows-1252 as iso-8859-1, old
clients label UTF-8 as us-ascii, some invent names), so decoding never fails: it tries the
declared charset, then UTF-8, then windows-1252 (a superset of latin-1) and says what it did.
"""

from __future__ import annotations

import codecs

# Names seen in real mail that Python does not know, or knows only as a narrower charset.
_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-sjis": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode20utf8": "utf-8",
    "utf8": "utf-8",
    "cp-850": "cp850",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
}

# Text codecs that decode something other than a charset (escape sequences, domain names):
# a hostile message must not be able to pick them.
_NOT_CHARSETS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "charmap"}
)

# Charsets that accept every byte, so a wrong label never fails: if their bytes also happen to
# be valid UTF-8 with non-ASCII characters, the label is almost certainly wrong.
_SINGLE_BYTE_WESTERN = frozenset({"ascii", "iso8859_1", "iso8859_15", "cp1252"})


def codec_name(charset: str | None) -> str | None:
    """The Python codec for a mail charset label, or None when unknown or unusable."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    # RFC 2231 lets a charset carry a language: "utf-8*en".
    label = label.split("*", 1)[0]
    if not label or len(label) > 40:
        return None
    label = _ALIASES.get(label, label)
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return None
    name = name.replace("-", "_")
    if name in _NOT_CHARSETS:
        return None
    try:
        "".encode(name)
    except LookupError:  # bytes-to-bytes codecs such as base64 or zlib
        return None
    return name


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode `data`; return the text and, when the declared charset did not fit, why."""
    name = codec_name(charset)
    if name is not None:
        if name in _SINGLE_BYTE_WESTERN and _is_non_ascii_utf8(data):
            return data.decode("utf-8"), None
        if name == "iso8859_1":
            # Outlook labels windows-1252 text (curly quotes, euro sign) as iso-8859-1;
            # browsers read that label as windows-1252 too (WHATWG Encoding).
            return data.decode("latin-1").translate(_CP1252_OVER_LATIN1), None
        try:
            return data.decode(name), None
        except (UnicodeError, LookupError):
            pass
    if name is None and charset and charset.strip():
        problem = f"unknown charset {_show(charset)}"
    elif name is not None:
        problem = f"the text does not match its charset {_show(charset or '')}"
    else:
        problem = ""
    if name != "utf_8":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return text, f"{problem}; decoded as UTF-8" if problem else None
    if name is not None and name != "utf_8" and name not in _SINGLE_BYTE_WESTERN:
        # A known multi-byte charset with a few bad bytes: keep the rest readable.
        return data.decode(name, errors="replace"), f"{problem}; bad bytes were replaced"
    text = data.decode("utf-8", errors=_CP1252_FOR_BAD_UTF8)
    how = "decoded as UTF-8, reading the bytes that are not UTF-8 as windows-1252"
    return text, f"{problem}; {how}" if problem else f"8-bit text without a charset {how}"


def _is_non_ascii_utf8(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _cp1252_over_latin1() -> dict[int, str]:
    # windows-1252 differs from latin-1 only in 0x80-0x9F (curly quotes, euro sign...) and
    # leaves five of those bytes undefined; keeping latin-1 there makes the decode total.
    table: dict[int, str] = {}
    for byte in range(0x80, 0xA0):
        try:
            table[byte] = bytes([byte]).decode("cp1252")
        except UnicodeDecodeError:
            continue
    return table


_CP1252_OVER_LATIN1 = _cp1252_over_latin1()


def _cp1252_for_bad_utf8(error: UnicodeError) -> tuple[str, int]:
    # Mail that mixes UTF-8 with windows-1252 (a quoted Outlook reply, a plug-in's
    # signature) stays readable in both parts; windows-1252 never fails.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = bytes(error.object[error.start : error.end])
    return bad.decode("latin-1").translate(_CP1252_OVER_LATIN1), error.end


# An error handler is how the codec machinery lets us decode byte by byte without a
# Python loop; the name is ours alone, so registering it at import is harmless.
_CP1252_FOR_BAD_UTF8 = "deskclone.cp1252_for_bad_utf8"
codecs.register_error(_CP1252_FOR_BAD_UTF8, _cp1252_for_bad_utf8)


def _show(charset: str) -> str:
    cleaned = "".join(ch for ch in charset if ch.isprintable())[:40]
    return repr(cleaned)
