from __future__ import annotations

import pytest

from domain.html_text import html_to_text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("Line<br>next<br/>last", "Line\nnext\nlast"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<ul><li>x</li><li>y</li></ul>", "- x\n- y"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<h1>Title</h1>text", "Title\n\ntext"),
        ("a<hr>b", "a\n---\nb"),
        ("<pre>  keep\n    indent</pre>", "  keep\n    indent"),
        ("many     spaces\n\n and\tlines", "many spaces and lines"),
    ],
)
def test_html_to_text_turns_blocks_into_lines(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert('x')</script>visible",
        "<style>p{color:red}</style>visible",
        "<head><title>t</title><meta charset=x></head><body>visible</body>",
        "<noscript>enable js</noscript>visible",
        "<!-- a comment -->visible",
        "<!--[if gte mso 9]><xml><o:x/></xml><![endif]-->visible",
    ],
)
def test_html_to_text_drops_what_a_reader_never_sees(html: str) -> None:
    assert html_to_text(html) == "visible"


def test_html_to_text_decodes_entities() -> None:
    text = "&lt;b&gt; &amp; &quot;q&quot; &euro;5 &#8364; &#x20AC; caf&eacute;&nbsp;!"
    assert html_to_text(text) == '<b> & "q" €5 € € café !'


def test_html_to_text_quotes_blockquotes_like_plain_replies() -> None:
    html = (
        "<div>Thanks!</div><div class=gmail_quote>On Mon, Ann wrote:<blockquote>"
        "<p>first</p><blockquote>older</blockquote><p>second</p></blockquote></div>"
    )
    assert html_to_text(html) == ("Thanks!\nOn Mon, Ann wrote:\n> first\n>\n> > older\n> second")


def test_html_to_text_keeps_outlook_paragraphs_tight_and_its_blank_lines() -> None:
    html = (
        '<p class="MsoNormal">Hi,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        '<p class="MsoNormal">line one<o:p></o:p></p><p class="MsoNormal">line two</p>'
    )
    assert html_to_text(html) == "Hi,\n\nline one\nline two"


@pytest.mark.parametrize("html", ["", "<p></p>", "<br><br>", "<div> &nbsp; </div>", "<script>"])
def test_html_to_text_gives_empty_text_for_empty_documents(html: str) -> None:
    assert html_to_text(html) == ""


@pytest.mark.parametrize(
    "html", ["<p", "</b></i></blockquote></pre>", "<a href='x", "<<>>", "&#99999999;", "<![CDATA[x"]
)
def test_html_to_text_never_raises_on_broken_markup(html: str) -> None:
    assert isinstance(html_to_text(html), str)
