"""The header block as mail servers really store it, mended before the parser reads it.

Python's parser ends the headers at the first line that is not a header: a stray line of text
in the middle of the block (a broken script, a bad relay) makes every header after it part of
the body, so the sender or the Message-ID is lost. The IMAP servers themselves (Dovecot, for
one) end the block only at the blank line. We read it as they do:

- a stray line with header lines after it, before the blank line, is left out (and said so);
- stray lines with no header after them start the body: that is a mail without the blank
  separator line, which the parser already reads that way;
- `Name  :` with whitespace before the colon, obsolete syntax RFC 5322 §4.5 says to accept,
  is read as `Name:` (the parser would drop it, or take `From  :` for an mbox envelope line).

Well-formed mail (nearly all of it) is recognised by looking at the start of each header line
and handed back as the very same object: the hot path pays a few byte searches and one short
match per header line.
"""

from __future__ import annotations

import re

# A line the parser reads as a header: a field, or a folded continuation of one.
_HEADER_START = re.compile(rb"[\x21-\x39\x3b-\x7e]++:|[ \t]")
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]++:")
_OBSOLETE_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]++)[ \t]+:")
_LINE = re.compile(rb"([^\r\n]*+)(\r\n|\r|\n|\Z)")
# Stray lines quoted in a defect are cut to this many characters.
_SHOWN = 80


def mend_header_block(raw: bytes) -> tuple[bytes, tuple[str, ...]]:
    """`raw` with its header block mended, and what was left out, in words for people.

    Well-formed mail comes back as the same object; nothing after the header block changes.
    """
    for number, line in enumerate(raw[: header_end(raw)].splitlines()):
        if not (_HEADER_START.match(line) or (number == 0 and _is_envelope(line))):
            return _mend(raw)
    return raw, ()


def header_end(raw: bytes) -> int:
    """Where the first empty line (the end of the header block) starts, or the length.

    Lines end in CRLF, LF or a lone CR, as the parser reads them; an empty line always holds
    one of the pairs below, and the first pair found is where it starts. The pair the first
    line ending suggests is looked for first, so the others are looked for only in the
    headers, not through a whole attachment."""
    if raw[:1] in (b"\r", b"\n"):
        return 0
    newline = raw.find(b"\n", 0, 4096)
    crlf = newline > 0 and raw[newline - 1] == 0x0D
    end = len(raw)
    for pair in (b"\n\r", b"\n\n", b"\r\r") if crlf else (b"\n\n", b"\n\r", b"\r\r"):
        found = raw.find(pair, 0, end)
        if found >= 0:
            end = found + 1
    return end


def _is_envelope(line: bytes) -> bool:
    """An mbox envelope line ("From sender date"), which the parser keeps apart; `From  :`
    is the obsolete form of a From field, not one."""
    return line.startswith(b"From ") and _OBSOLETE_FIELD.match(line) is None


def _mend(raw: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Read the lines of the header block one by one, up to the blank line."""
    kept: list[bytes] = []
    stray: list[bytes] = []  # stray lines not yet known to be inside the block
    stray_start = 0
    left_out: list[bytes] = []
    position = 0
    while position < len(raw):
        line = _LINE.match(raw, position)
        if line is None:  # cannot happen: the pattern matches the empty string
            break
        text, newline = line.group(1), line.group(2)
        if not text:  # the blank line: the block ends
            break
        if text[:1] in (b" ", b"\t"):
            if not stray:  # a folded line after a stray one goes with it
                kept.append(line.group(0))
        elif position == 0 and _is_envelope(text):
            kept.append(line.group(0))
        elif (field := _field(text)) is not None:
            left_out += stray
            stray = []
            kept.append(field + newline)
        else:
            if not stray:
                stray_start = position
            stray.append(text)
        position = line.end()
        if not newline:
            break
    if stray:
        # No header after them: they start the body of a mail without the blank line.
        position = stray_start
    return b"".join(kept) + raw[position:], _describe(left_out)


def _field(line: bytes) -> bytes | None:
    """The line as a header field, or None when it is none."""
    if _FIELD.match(line):
        return line
    obsolete = _OBSOLETE_FIELD.match(line)
    if obsolete is None:
        return None
    return obsolete.group(1) + b":" + line[obsolete.end() :]


def _describe(left_out: list[bytes]) -> tuple[str, ...]:
    if not left_out:
        return ()
    first = left_out[0].decode("utf-8", errors="replace").replace("\x00", "")[:_SHOWN]
    if len(left_out) == 1:
        return (f"a line in the header block is not a header and was left out: {first!r}",)
    return (
        f"{len(left_out)} lines in the header block are not headers and were left out "
        f"(the first: {first!r})",
    )
