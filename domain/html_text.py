"""HTML mail bodies turned into readable plain text for support staff.

Block elements become line breaks, scripts and styles disappear, entities are decoded and
`<blockquote>` lines get a "> " prefix, so the quote trimmer treats HTML replies like plain
ones (Chatwoot's html_parser does the same).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# HTML bigger than this is cut before conversion: a support message never needs more, and
# html.parser's cost on hostile markup grows with the input.
MAX_HTML_CHARS = 2_000_000

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
# Content of these is never shown to a reader.
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template", "xml"})
_CELL_TAGS = frozenset({"td", "th"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Collapsible HTML whitespace; a no-break space is kept until the end, so an "empty"
# paragraph holding only &nbsp; still makes the blank line its author saw.
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_MAX_DEPTH = 200


class _Line:
    __slots__ = ("depth", "pieces", "preformatted")

    def __init__(self, depth: int, preformatted: bool) -> None:
        self.depth = depth
        self.preformatted = preformatted
        self.pieces: list[str] = []

    def is_empty(self) -> bool:
        return not "".join(self.pieces).strip(" ")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[_Line] = [_Line(0, False)]
        self._hidden: list[str] = []
        self._quote_depth = 0
        self._pre_depth = 0
        # Per open <p>: whether it ends with a blank line. Outlook writes every line as
        # <p class=MsoNormal> with no margin, and blank lines as empty paragraphs.
        self._paragraph_gaps: list[bool] = []

    def _new_line(self) -> None:
        self.lines.append(_Line(self._quote_depth, self._pre_depth > 0))

    def _break(self) -> None:
        """Start a new line unless the current one is still empty."""
        if self.lines[-1].is_empty():
            self.lines[-1].depth = self._quote_depth
            self.lines[-1].preformatted = self._pre_depth > 0
        else:
            self._new_line()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden.append(tag)
            return
        if self._hidden:
            return
        if tag == "br":
            self._new_line()
        elif tag in _CELL_TAGS:
            self.lines[-1].pieces.append(" ")
        elif tag in _BLOCK_TAGS:
            if tag == "blockquote":
                self._quote_depth = min(self._quote_depth + 1, _MAX_DEPTH)
            elif tag == "pre":
                self._pre_depth += 1
            elif tag == "p":
                classes = next((value or "" for name, value in attrs if name == "class"), "")
                self._paragraph_gaps.append("msonormal" not in classes.lower())
            self._break()
            if tag == "li":
                self.lines[-1].pieces.append("- ")
            elif tag == "hr":
                self.lines[-1].pieces.append("---")
                self._new_line()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>, <img/>: none of them hides content, so never push a hidden level.
        if tag not in _HIDDEN_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            if tag in self._hidden:
                # Drop back to the matching open tag (unclosed inner ones end with it).
                while self._hidden and self._hidden.pop() != tag:
                    pass
            return
        if self._hidden or tag not in _BLOCK_TAGS:
            return
        if tag == "blockquote" and self._quote_depth:
            self._quote_depth -= 1
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
        self._break()
        if tag == "p" and (self._paragraph_gaps.pop() if self._paragraph_gaps else True):
            # A paragraph ends with a blank line, as readers expect.
            self._new_line()
        elif tag in _HEADINGS:
            self._new_line()

    def handle_data(self, data: str) -> None:
        if self._hidden or not data:
            return
        if self._pre_depth:
            first, *rest = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            self.lines[-1].pieces.append(first)
            for line in rest:
                self._new_line()
                self.lines[-1].pieces.append(line)
            return
        self.lines[-1].pieces.append(_SPACES.sub(" ", data))


def html_to_text(html: str) -> str:
    """Readable text of an HTML document or fragment; never raises."""
    parser = _TextExtractor()
    try:
        parser.feed(html[:MAX_HTML_CHARS])
        parser.close()
    except (AssertionError, ValueError, IndexError):  # pragma: no cover - html.parser is lax
        pass
    # (depth, text) for text lines, (depth, None) for one blank line between them.
    entries: list[tuple[int, str | None]] = []
    for line in parser.lines:
        text = "".join(line.pieces).replace("\u00a0", " ").rstrip()
        if not text.strip():
            if entries and entries[-1][1] is not None:
                entries.append((line.depth, None))
            continue
        if not line.preformatted:
            # Leading space here is markup indentation, not layout.
            text = text.lstrip()
        entries.append((line.depth, text))
    if entries and entries[-1][1] is None:
        entries.pop()
    out: list[str] = []
    for index, (depth, maybe_text) in enumerate(entries):
        if maybe_text is None:
            # A blank line belongs to the shallower of its neighbours.
            blank_depth = min(entries[index - 1][0], entries[index + 1][0])
            out.append(("> " * blank_depth).rstrip())
        else:
            out.append("> " * depth + maybe_text)
    return "\n".join(out)
