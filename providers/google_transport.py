"""HTTP clients for Google endpoints that trust exactly the CA bundle the settings name.

This machine exports REQUESTS_CA_BUNDLE, SSL_CERT_FILE and HTTPLIB2_CA_CERTS;
each client library would silently prefer them over implicit settings
(research/providers.md §1.7, §3.3), so the bundle is always passed explicitly.
"""

from __future__ import annotations

import ssl

import httplib2  # type: ignore[import-untyped]
import httpx

from deskclone.settings import Settings


def httplib2_http(settings: Settings) -> httplib2.Http:
    """One connection pool for googleapiclient and google-auth refreshes; close it when done.

    Without a bundle httplib2 uses its default store (HTTPLIB2_CA_CERTS, else certifi),
    which is what trusting the system means for httplib2.
    """
    bundle = settings.provider_ca_bundle
    return httplib2.Http(
        ca_certs=str(bundle) if bundle is not None else None,
        timeout=settings.provider_timeout_seconds,
    )


def httpx_client(settings: Settings) -> httpx.Client:
    bundle = settings.provider_ca_bundle
    context = (
        ssl.create_default_context(cafile=str(bundle))
        if bundle is not None
        else ssl.create_default_context()
    )
    # trust_env=False: no proxy or CA variables from the environment, and no .netrc.
    return httpx.Client(
        verify=context,
        trust_env=False,
        timeout=settings.provider_timeout_seconds,
        follow_redirects=False,
    )
