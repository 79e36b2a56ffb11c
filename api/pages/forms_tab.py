"""Tickets > Sources > Forms: the embed code for the support form, a copy button, a preview."""

from __future__ import annotations

from html import escape

from starlette.responses import Response
from starlette.routing import Route

from api.deps import resources
from api.pages.web import Page, page


def embed_code(public_url: str, public_key: str) -> dict[str, str]:
    """The same code as `GET /api/v1/forms/embed` answers (a test holds the two together)."""
    base = public_url.rstrip("/")
    key = escape(public_key, quote=True)
    snippet = f'<script src="{base}/static/embed.js" data-deskclone-form="{key}" async></script>'
    iframe = (
        f'<iframe src="{base}/forms/{key}" title="Contact support" width="100%" height="720" '
        'style="border:0;max-width:640px" loading="lazy"></iframe>'
    )
    return {"snippet": snippet, "iframe": iframe, "form_url": f"{base}/forms/{key}"}


@page
async def forms(p: Page) -> Response:
    code = embed_code(resources(p.request).settings.public_url, p.agent.public_key)
    return p.render(
        "pages/forms.html",
        section="sources",
        tab="forms",
        code=code,
        public_key=p.agent.public_key,
    )


routes = [Route("/sources/forms", forms, methods=["GET"])]
