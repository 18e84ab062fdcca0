"""Security headers and caching (registry/security.py) on every response type, and pages the CSP can run.

The GET endpoints come from the authorization matrix's rules, which ``test_every_endpoint_has_a_rule`` keeps
complete over the URL map: a new page is checked here without anyone having to list it.
"""

import csv
import io
import re
from html.parser import HTMLParser

import pytest
from flask import Response

from registry import create_app
from registry.permissions import public
from registry.security import CONTENT_SECURITY_POLICY, STRICT_TRANSPORT_SECURITY
from tests.conftest import login, make_test_config
from tests.test_authorization_matrix import RULES, rule_url

EXPECTED = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

GET_ENDPOINTS = sorted(endpoint for endpoint, rule in RULES.items() if rule.method == "GET")


def assert_secure(response, *, cached=False, what=""):
    """Every header on every response; ``no-store`` on all but a successful static file."""
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, f"{what}: {name} = {response.headers.get(name)!r}"
    assert response.headers.get("Permissions-Policy", "").startswith("camera=()"), what
    assert "Strict-Transport-Security" not in response.headers, what
    if cached:
        assert "no-store" not in response.headers.get("Cache-Control", ""), what
        assert "Set-Cookie" not in response.headers, what
    else:
        assert response.headers.get("Cache-Control") == "no-store", f"{what}: {response.headers.get('Cache-Control')}"


def test_the_policy_is_the_documented_one():
    assert CONTENT_SECURITY_POLICY == EXPECTED["Content-Security-Policy"]


@pytest.fixture
def targets(app, world):
    """A target for Zhaojue, so the 完成率 bars of the county and agreement pages are drawn."""
    import sqlalchemy as sa

    from registry.agreements.models import Agreement, Indicator
    from registry.agreements.services import set_targets
    from registry.counties.models import Unit
    from registry.kernel.extensions import db

    with app.app_context():
        indicator = db.session.scalar(sa.select(Indicator).where(Indicator.code == "enterprises"))
        set_targets(db.session.get(Agreement, world.agreement_zc), db.session.get(Unit, world.zhaojue),
                    {indicator.id: 4}, actor=None)  # fmt: skip
        db.session.commit()


def _pages(app, world, client, endpoint):
    """Each URL of a GET endpoint (record A and record B) with its response."""
    rule = RULES[endpoint]
    for which in (0, 1) if rule.params else (0,):
        url = rule_url(app, endpoint, rule, world, which)
        yield url, client.get(url)


@pytest.mark.parametrize("endpoint", GET_ENDPOINTS)
def test_every_page_as_admin_has_the_headers(app, read_world, endpoint):
    """Administrators see every page: each one's headers, and on HTML pages no code the CSP would refuse (the same
    responses; ``test_no_page_has_inline_script_or_style`` looks as province staff)."""
    client = read_world.client("admin")
    for url, response in _pages(app, read_world.ids, client, endpoint):
        assert response.status_code < 500, url
        assert_secure(response, what=url)
        if response.mimetype == "text/html":
            assert inline_code(response.get_data(as_text=True)) == [], url


# --- pages the Content-Security-Policy can run ------------------------------------------------------------------


class InlineCodeFinder(HTMLParser):
    """Collects what ``script-src 'self'; style-src 'self'`` would refuse in a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not attributes.get("src"):
                self.problems.append("<script> without src")
        if tag == "style":
            self.problems.append("<style> block")
        for name, value in attrs:
            if name == "style":
                self.problems.append(f'<{tag} style="{value}">')
            elif name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            elif (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"inline script: {data.strip()[:60]}")


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


def test_the_finder_sees_every_kind_of_inline_code():
    page = (
        '<script>alert(1)</script><script src="/static/js/app.js"></script><style>p{}</style>'
        '<p style="color:red" onclick="x()"><a href="javascript:void(0)">x</a></p>'
        '<svg><rect style="fill:red"/></svg>'
    )
    assert inline_code(page) == [
        "<script> without src",
        "inline script: alert(1)",
        "<style> block",
        '<p style="color:red">',
        "<p onclick=…>",
        "<a href=javascript:void(0)>",
        '<rect style="fill:red">',
    ]
    assert inline_code('<script src="/static/js/app.js" defer></script><svg><rect fill="#fff"/></svg>') == []


def test_no_page_has_inline_script_or_style(app, world, targets, as_user):
    """As province staff, who get forms administrators lack (the narrative), on a world with targets (the progress
    bars); administrators' pages are looked at by ``test_every_page_as_admin_has_the_headers``."""
    client = as_user("province")
    seen = set()
    for endpoint in GET_ENDPOINTS:
        for url, response in _pages(app, world, client, endpoint):
            if response.mimetype == "text/html":
                assert inline_code(response.get_data(as_text=True)) == [], url
                seen.add(endpoint)
    # The pages with the moved inline code really were looked at, with the code's replacement in them.
    county = client.get(f"/units/{world.zhaojue}?year=2024").get_data(as_text=True)
    assert 'class="year-input"' in county
    assert re.search(r'<progress class="progress-bar" max="100" value="25(\.0+)?"', county)
    dashboard = client.get(f"/reports/{world.zhaojue}/2024Q2").get_data(as_text=True)
    assert dashboard.count('class="chart-svg"') == 3
    assert {"counties.detail", "agreements.detail", "reports.dashboard", "projects.detail"} <= seen


def test_error_login_and_import_pages_have_no_inline_code(app, world, as_user, client):
    page = client.get("/login")
    assert page.status_code == 200 and inline_code(page.get_data(as_text=True)) == []
    admin = as_user("admin")
    missing = admin.get("/no-such-page")
    assert missing.status_code == 404
    text = missing.get_data(as_text=True)
    assert inline_code(text) == [] and "data-history-back" in text
    result = _bad_import(admin)
    assert inline_code(result.get_data(as_text=True)) == []


# --- every response type ----------------------------------------------------------------------------------------


def _bad_import(client):
    from registry.placements.transfer import HEADERS

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    writer.writerow(["沙马拉则" if h == "姓名" else "不是日期" if h == "就业开始" else "" for h in HEADERS])
    data = {"file": (io.BytesIO(buffer.getvalue().encode("utf-8-sig")), "bad.csv")}
    return client.post("/placements/import", data=data, content_type="multipart/form-data")


def test_login_page_and_redirects(client, world):
    page = client.get("/login")
    assert page.status_code == 200
    assert_secure(page, what="login page")
    to_login = client.get("/projects/")
    assert to_login.status_code == 302 and to_login.headers["Location"].startswith("/login")
    assert_secure(to_login, what="redirect to login")
    signed_in = login(client, "admin")
    assert signed_in.status_code == 302 and "Set-Cookie" in signed_in.headers
    assert_secure(signed_in, what="login redirect")
    assert_secure(client.get("/healthz"), what="healthz")


def test_error_responses(app, world, as_user):
    admin, reader = as_user("admin"), as_user("reader")
    cases = {
        403: reader.get("/admin/users/"),
        404: admin.get("/no-such-page"),
        405: admin.get("/logout"),
        409: admin.post(f"/indicator-entries/{world.entry_a}/delete", data={"version": 999}),
    }
    for status, response in cases.items():
        assert response.status_code == status, (status, response.status_code)
        assert response.mimetype == "text/html"
        assert_secure(response, what=str(status))


def _dispose(app):
    """Close the connections of an extra app made for one test (its database is the suite's)."""
    from registry.kernel.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_a_server_error(database_url):
    """A route that raises answers the 500 page, with the headers too."""
    app = create_app(make_test_config(database_url) | {"PROPAGATE_EXCEPTIONS": False})

    @app.route("/boom")
    @public
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    _dispose(app)
    assert response.status_code == 500 and "系统错误" in response.get_data(as_text=True)
    assert_secure(response, what="500")


def test_static_files_keep_their_caching(client, world):
    anonymous = client.get("/static/css/app.css")
    anonymous.close()
    assert anonymous.status_code == 200
    assert_secure(anonymous, cached=True, what="static, anonymous")
    login(client, "admin")
    # A signed-in page refreshes the session cookie and is never stored; the stylesheet it loads is cacheable.
    page = client.get("/")
    assert "Set-Cookie" in page.headers
    assert_secure(page, what="index")
    for path in ("/static/css/app.css", "/static/js/app.js"):
        response = client.get(path)
        response.close()
        assert response.status_code == 200
        assert_secure(response, cached=True, what=path)
    # A missing static file is the error page, which names the signed-in user: not stored either.
    missing = client.get("/static/css/none.css")
    assert missing.status_code == 404
    assert_secure(missing, what="static 404")


def test_downloads(app, world, as_user):
    admin = as_user("admin")
    xlsx = admin.get("/projects/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert_secure(xlsx, what="xlsx")
    exported = admin.get("/placements/export.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert_secure(exported, what="csv")
    for path in ("/placements/template.xlsx", "/projects/funds/template.xlsx", "/indicator-entries/template.xlsx"):
        template = admin.get(path)
        assert template.status_code == 200
        assert_secure(template, what=path)
    funds = admin.get("/projects/funds/export.csv")
    assert funds.status_code == 200 and funds.mimetype == "text/csv"
    assert_secure(funds, what="funds csv")
    pdf = admin.get(f"/reports/{world.zhaojue}/2024Q2.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert_secure(pdf, what="pdf")


def test_streamed_import_page(world, as_user):
    response = _bad_import(as_user("admin"))
    assert response.is_streamed and response.status_code == 200
    assert_secure(response, what="import")
    assert "未导入" in response.get_data(as_text=True)


def test_hsts_only_in_production(app, database_url, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    production = create_app(make_test_config(database_url) | {"PRODUCTION": True})
    production_client = production.test_client()
    for path in ("/login", "/static/css/app.css", "/no-such-page"):
        response = production_client.get(path, base_url="https://registry.example")
        response.close()
        assert response.headers["Strict-Transport-Security"] == STRICT_TRANSPORT_SECURITY, path
        assert response.headers["Content-Security-Policy"] == EXPECTED["Content-Security-Policy"], path
    _dispose(production)


def test_a_view_cannot_lose_the_headers(app):
    """The hook overwrites what a view sets itself (an export's own Cache-Control, a laxer policy)."""
    from registry.security import apply_headers

    with app.test_request_context("/projects/"):
        response = Response("x", headers={"Cache-Control": "public, max-age=600", "X-Frame-Options": "SAMEORIGIN"})
        apply_headers(app, response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_public_disclosure_pages_have_the_headers_and_may_be_cached(app, world, client):
    """The public notices (PUBLIC in the matrix, no login): every header, no inline code, and ``public`` caching
    without a session cookie; anything else on the site stays ``no-store``."""
    import sqlalchemy as sa

    from registry.disclosure.models import Notice
    from registry.disclosure.services import publish
    from registry.kernel.extensions import db

    with app.app_context():
        notice = publish(db.session.get(Notice, world.notice_a), actor=None)
        db.session.commit()
        number = notice.public_no
        assert db.session.scalar(sa.select(sa.func.count(Notice.id))) == 2
    urls = ("/gongshi/", "/gongshi/?county=513431&year=2024&q=车间", f"/gongshi/{number}", f"/gongshi/{number}.pdf")
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_secure(response, cached=True, what=url)
        assert response.headers["Cache-Control"].startswith("public, max-age="), url
        if response.mimetype == "text/html":
            assert inline_code(response.get_data(as_text=True)) == [], url
    assert_secure(client.get("/gongshi/nosuchnotice"), what="missing notice")
