"""HTTP security headers and caching rules on every response (OWASP ASVS 5.0 V3.4 browser security, V14.3 data
kept out of caches).

One ``after_request`` hook instead of flask-talisman: the policy here is a handful of fixed headers, and
Talisman (last release 2023) would also redirect to HTTPS and rewrite the session cookie settings, both of which
the ``PRODUCTION`` switch and the proxy in front already own.

Every template loads its script and styles from ``static/`` only: no inline ``<script>``, ``<style>``,
``style="…"`` attribute or ``on…=`` handler (tests/test_security_headers.py scans every page for them). The PDF
report template is exempt: WeasyPrint renders it on the server and no browser ever applies a CSP to it.
"""

from flask import request, session
from flask.sessions import SecureCookieSessionInterface

#: Everything from our own origin only; ``data:`` images for the odd inline icon. ``<svg>`` charts are part of
#: the page's markup, not a fetched resource, so they need no source of their own.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # For browsers that predate frame-ancestors.
    "X-Frame-Options": "DENY",
    # same-origin rather than strict-origin-when-cross-origin: our URLs carry search terms (names, evidence
    # numbers, parts of identity numbers) and record ids, and no other site has any use for our origin either;
    # within the site the full referrer stays available.
    "Referrer-Policy": "same-origin",
    # The registry uses none of these; a compromised page cannot ask for them either.
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Other sites may not embed our responses (a download full of personal data) as images or scripts.
    "Cross-Origin-Resource-Policy": "same-origin",
}

#: One year, subdomains included; sent only with PRODUCTION, which is the switch for "served over HTTPS".
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that a static file never refreshes the session cookie.

    A permanent session is re-sent on every response by default; on a stylesheet that would put a
    ``Set-Cookie`` on a cacheable response. The page that loads the stylesheet refreshes the cookie anyway.
    """

    def should_set_cookie(self, app, session) -> bool:
        if (request.endpoint == "static" or is_public_cacheable(app)) and not session.modified:
            return False
        return super().should_set_cookie(app, session)


def init_app(app):
    app.session_interface = SessionInterface()

    @app.after_request
    def secure_headers(response):
        return apply_headers(app, response)


def apply_headers(app, response):
    """Set the security headers and the caching rule on ``response`` (every status, every body type)."""
    response.headers.update(HEADERS)
    if app.config["PRODUCTION"]:
        response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    if not is_cacheable(app, response):
        # Pages behind the login show personal and official data; the login page carries a session-bound CSRF
        # token. Nothing but the static files may be kept by the browser or a proxy.
        response.headers["Cache-Control"] = "no-store"
    return response


def is_cacheable(app, response) -> bool:
    """Only a static file or a public page marked cacheable (the disclosure notices), served successfully without a
    session cookie, keeps its caching; the public page sets its own ``Cache-Control: public, max-age=…``.

    A static 404 is the error page, which shows the signed-in user's name in the header.
    """
    return (
        (request.endpoint == "static" or is_public_cacheable(app))
        and response.status_code < 400
        and not app.session_interface.should_set_cookie(app, session)
    )


def is_public_cacheable(app) -> bool:
    """The request's view is public and marked ``cache_public`` (it shows nothing of any session)."""
    view = app.view_functions.get(request.endpoint) if request.endpoint else None
    return bool(getattr(view, "is_public", False) and getattr(view, "cache_public", False))
