"""Trimming the quoted previous message from a reply, so a ticket shows only what is new.

Clients quote in three ways: "> " prefixed lines under an "On <date>, <name> wrote:" line
(Gmail, Apple Mail, Thunderbird, in many languages), an Outlook "-----Original Message-----"
line, or an Outlook header block ("From: ... Sent: ...") above the unquoted old message.
Forwarded messages are left alone: there the quoted part is the content.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE

# "On <date>, <name> wrote:" and its translations; the middle part is bounded so a whole
# paragraph ending in "wrote:" is not taken for one.
_ATTRIBUTIONS = [
    re.compile(pattern, _FLAGS)
    for pattern in (
        r"^\s*on\b.{0,300}\bwrote\s*:\s*$",
        r"^\s*am\b.{0,300}\bschrieb\b.{0,200}:\s*$",
        r"^\s*le\b.{0,300}\ba\s+écrit\s*:\s*$",
        r"^\s*el\b.{0,300}\bescribió\s*:\s*$",
        r"^\s*il\b.{0,300}\bha\s+scritto\s*:\s*$",
        r"^\s*op\b.{0,300}\bschreef\b.{0,200}:\s*$",
        r"^\s*(em|no)\b.{0,300}\bescreveu\s*:\s*$",
        r"^\s*(den|på)\b.{0,300}\bskrev\b.{0,200}:\s*$",
        r"^\s*w\s+dniu\b.{0,300}\b(pisze|napisał\(a\)|napisał|napisała)\s*:\s*$",
    )
]
# Any language: "<date> <name> <address>:" (Gmail in Japanese, Chinese, Korean...). Only
# trusted when quoted lines follow.
_ADDRESS_ATTRIBUTION = re.compile(r"^.{0,200}\d.{0,200}<[^<>\s@]+@[^<>\s]+>\s*:\s*$")
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(original message|original-nachricht|ursprüngliche nachricht|"
    r"message d'origine|message original|mensaje original|messaggio originale|"
    r"oorspronkelijk bericht|mensagem original|originalmeddelande|oprindelig meddelelse|"
    r"opprinnelig melding)\s*-{2,}\s*$",
    _FLAGS,
)
_HEADER_FROM = re.compile(r"^\s*\*?(from|von|de|da|van|od|från|fra)\s*\*?\s*:\s*\*?\s*\S", _FLAGS)
_HEADER_SENT = re.compile(
    r"^\s*\*?(sent|date|gesendet|datum|envoyé|enviado|enviado el|inviato|data|verzonden|"
    r"wysłano|skickat|sendt)\s*\*?\s*:",
    _FLAGS,
)
_RULE_LINE = re.compile(r"^\s*(_{8,}|-{8,})\s*$")
_FORWARD_MARKER = re.compile(
    r"(forwarded message|begin forwarded message|weitergeleitete nachricht|"
    r"message transféré|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|"
    r"mensagem encaminhada)",
    _FLAGS,
)


def trim_quoted_reply(text: str) -> str:
    """The reply without the message it quotes; the original text if nothing would be left."""
    lines = text.split("\n")
    kept: list[str] = []
    trimmed = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _starts_outlook_quote(lines, index):
            if kept and _RULE_LINE.match(kept[-1]):
                kept.pop()  # Outlook's "________" line above the header block
            trimmed = True
            break
        attribution = _attribution_length(lines, index)
        if attribution:
            trimmed = True
            following = _next_non_blank(lines, index + attribution)
            if following is None or not _is_quoted(lines[following]):
                break  # top-posted reply: everything below is the old message
            index += attribution
            continue
        if _is_quoted(line):
            trimmed = True
        else:
            kept.append(line)
        index += 1
    if not trimmed:
        return text
    result = _squeeze_blank_lines(kept).strip("\n").rstrip()
    return result if result.strip() else text


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _next_non_blank(lines: list[str], start: int) -> int | None:
    return next((i for i in range(start, len(lines)) if lines[i].strip()), None)


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines (0, 1 or 2) the attribution starting at `index` spans."""
    line = lines[index].strip()
    if not line or _is_quoted(line) or len(line) > 500:
        return 0
    if _is_attribution(line, lines, index + 1):
        return 1
    # Gmail wraps a long attribution over two lines.
    if index + 1 < len(lines) and lines[index + 1].strip():
        joined = f"{line} {lines[index + 1].strip()}"
        if _is_attribution(joined, lines, index + 2):
            return 2
    return 0


def _is_attribution(line: str, lines: list[str], after: int) -> bool:
    following = _next_non_blank(lines, after)
    quoted_below = following is not None and _is_quoted(lines[following])
    if any(pattern.match(line) for pattern in _ATTRIBUTIONS):
        # "On Monday, Bob wrote: ..." in running text has neither a date nor an address.
        return quoted_below or any(ch.isdigit() for ch in line) or "@" in line
    return quoted_below and bool(_ADDRESS_ATTRIBUTION.match(line))


def _starts_outlook_quote(lines: list[str], index: int) -> bool:
    line = lines[index]
    if _ORIGINAL_MESSAGE.match(line):
        return True
    if not _HEADER_FROM.match(line):
        return False
    # A header block is "From:" with "Sent:"/"Date:" within the next few lines.
    if not any(_HEADER_SENT.match(following) for following in lines[index + 1 : index + 5]):
        return False
    return not _is_forward(lines, index)


def _is_forward(lines: list[str], index: int) -> bool:
    above = [line for line in lines[max(0, index - 4) : index] if line.strip()]
    return any(_FORWARD_MARKER.search(line) for line in above[-2:])


def _squeeze_blank_lines(lines: list[str]) -> str:
    squeezed: list[str] = []
    for line in lines:
        if not line.strip() and squeezed and not squeezed[-1].strip():
            continue
        squeezed.append(line)
    return "\n".join(squeezed)
