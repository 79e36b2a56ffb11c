"""The pages a support team uses (CONTRACT.md §2 "Pages"): sign-in, Sources, Forms, Tickets.

Server-rendered HTML over the same store and workflow controls as the JSON API; every form
works without JavaScript, which only adds live status and conveniences.
"""

from __future__ import annotations

from api.pages import auth, forms_tab, live, sources, tickets, webhooks_tab
from api.pages.not_found import page_or_json_http_exception
from api.pages.security import SecurityHeaders
from api.pages.session import PagesState

routes = [
    *auth.routes,
    *forms_tab.routes,
    *webhooks_tab.routes,
    *sources.routes,
    *tickets.routes,
    *live.routes,
]

__all__ = ["PagesState", "SecurityHeaders", "page_or_json_http_exception", "routes"]
