from __future__ import annotations

import pytest

from domain.quotes import trim_quoted_reply

REPLY = "Thanks, that fixed it!\n\nJane\n-- \nJane Doe | Customer Inc."


@pytest.mark.parametrize(
    "quoted",
    [
        "On Mon, Mar 4, 2024 at 10:12 AM ACME <support@acme.example> wrote:\n\n> Hi\n> there",
        "On Mon, Mar 4, 2024 at 10:12 AM Very Long Support Team Name <\n"
        "support@acme.example> wrote:\n> Hi",
        "On Mon, Mar 4, 2024 at 10:12 AM ACME Support\n<support@acme.example> wrote:\n> Hi",
        "On 4 Mar 2024, at 10:12, ACME Support <support@acme.example> wrote:\n\n> Hi",
        "Am 04.03.2024 um 10:12 schrieb ACME Support <support@acme.example>:\n\n> Hallo",
        "Am Mo., 4. März 2024 um 10:12 Uhr schrieb ACME <support@acme.example>:\n> Hallo",
        "Le lun. 4 mars 2024 à 10:12, ACME Support <support@acme.example> a écrit :\n> Bonjour",
        "El lun, 4 mar 2024 a las 10:12, ACME (<support@acme.example>) escribió:\n> Hola",
        "Il giorno lun 4 mar 2024 alle ore 10:12 ACME <support@acme.example> ha scritto:\n> Ciao",
        "Op ma 4 mrt 2024 om 10:12 schreef ACME <support@acme.example>:\n> Hoi",
        "Em seg., 4 de mar. de 2024 às 10:12, ACME <support@acme.example> escreveu:\n> Olá",
        "Den mån 4 mars 2024 kl 10:12 skrev ACME <support@acme.example>:\n> Hej",
        "W dniu 4.03.2024 o 10:12, ACME <support@acme.example> pisze:\n> Cześć",
        "2024年3月4日(月) 10:12 ACME Support <support@acme.example>:\n\n> こんにちは",
        "-----Original Message-----\nFrom: ACME Support\nSent: Monday\n\nold text",
        "----- Original Message -----\nFrom: ACME\nTo: Jane\n\nold text",
        "-----Ursprüngliche Nachricht-----\nVon: ACME\nGesendet: Montag\n\nalter Text",
        "________________________________\nFrom: ACME Support <support@acme.example>\n"
        "Sent: Monday, March 4, 2024 10:12 AM\nTo: Jane\nSubject: Re: x\n\nold text",
        "From: ACME Support <support@acme.example>\nDate: Monday, 4 March 2024 at 10:12\n"
        "To: Jane\nSubject: x\n\nold text",
        "*From:* ACME Support <support@acme.example>\n*Sent:* Monday\n*To:* Jane\n\nold text",
        "De : ACME Support <support@acme.example>\nEnvoyé : lundi 4 mars 2024 10:12\n\nancien",
        "Von: ACME Support <support@acme.example>\nGesendet: Montag, 4. März 2024 10:12\n\nalt",
        "> plain quoted lines\n> without any attribution",
    ],
)
def test_trim_quoted_reply_removes_the_quoted_message(quoted: str) -> None:
    assert trim_quoted_reply(f"{REPLY}\n\n{quoted}\n") == REPLY


def test_trim_quoted_reply_keeps_answers_between_quotes() -> None:
    text = "On Mon, Mar 4, 2024 Ann <a@x.example> wrote:\n> Q1?\nA1.\n\n> Q2?\nA2.\n"
    assert trim_quoted_reply(text) == "A1.\n\nA2."


def test_trim_quoted_reply_keeps_a_bottom_posted_answer() -> None:
    text = "On Mon, Ann wrote:\n> Does it work?\n\nYes it does.\n"
    assert trim_quoted_reply(text) == "Yes it does."


@pytest.mark.parametrize(
    "text",
    [
        "Hello,\n\nthe report is attached.\n\nBob",
        "On Monday, Bob wrote: the fix is fine.\nThanks",
        "On the invoice my colleague wrote:\nplease check the total",
        "See below\n\n---------- Forwarded message ---------\nFrom: Ann <a@x.example>\n"
        "Date: Mon, Mar 4, 2024\nSubject: x\nTo: <b@x.example>\n\nforwarded text",
        "Begin forwarded message:\n\nFrom: Ann <a@x.example>\nSubject: x\n"
        "Date: 4 March 2024\n\nbody",
        "From: the accounting team, sent with love\nno header block here",
        "",
    ],
)
def test_trim_quoted_reply_leaves_text_without_a_quote_alone(text: str) -> None:
    assert trim_quoted_reply(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "> everything is quoted\n> here",
        "On Mon, Mar 4, 2024 at 10:12 AM Ann <a@x.example> wrote:\n> only a quote",
        "-----Original Message-----\nFrom: Ann\nSent: Monday\n\nold",
    ],
)
def test_trim_quoted_reply_never_returns_empty_for_text_with_content(text: str) -> None:
    assert trim_quoted_reply(text) == text


def test_trim_quoted_reply_collapses_blank_lines_left_by_removed_quotes() -> None:
    text = "Part one\n\n> q\n\nPart two\n\n> q2\n"
    assert trim_quoted_reply(text) == "Part one\n\nPart two"
