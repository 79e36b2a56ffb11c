from __future__ import annotations

import re

from tests.api.conftest import Api
from tests.api.test_form import FORM, ticket_count


async def test_form_page_is_accessible_html(api: Api) -> None:
    page = await api.client.get(f"/forms/{api.agent.public_key}")
    assert page.status_code == 200
    html = page.text
    for field in ("name", "email", "subject", "description"):
        assert f'<label for="f-{field}">' in html
        assert f'id="f-{field}" name="{field}"' in html
    assert 'name="submission_id"' in html and 'name="website"' in html
    assert '<html lang="en">' in html


async def test_form_page_for_an_unknown_key_is_404_html(api: Api) -> None:
    page = await api.client.get("/forms/pk_nobody")
    assert page.status_code == 404 and "does not exist" in page.text


async def test_posting_the_page_without_javascript_makes_a_ticket(api: Api) -> None:
    page = await api.client.get(f"/forms/{api.agent.public_key}")
    submission_id = re.search(r'name="submission_id" value="([^"]+)"', page.text)
    assert submission_id is not None
    data = {**FORM, "submission_id": submission_id.group(1), "website": ""}
    done = await api.client.post(f"/forms/{api.agent.public_key}", data=data)
    twice = await api.client.post(f"/forms/{api.agent.public_key}", data=data)
    assert done.status_code == 201
    number = re.search(r"We got it: #(\d+)", done.text)
    assert number is not None
    assert f"#{number.group(1)}" in twice.text
    assert ticket_count(api) == 1


async def test_posting_the_page_with_errors_shows_them_inline_and_keeps_input(api: Api) -> None:
    data = {**FORM, "email": "nope", "subject": "", "website": ""}
    page = await api.client.post(f"/forms/{api.agent.public_key}", data=data)
    assert page.status_code == 422
    assert 'id="e-email"' in page.text and 'id="e-subject"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert "Smoke is coming out of tray 2." in page.text  # what they typed is not lost
    assert ticket_count(api) == 0


async def test_posted_values_are_escaped(api: Api) -> None:
    data = {**FORM, "email": "<script>alert(1)</script>", "website": ""}
    page = await api.client.post(f"/forms/{api.agent.public_key}", data=data)
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
