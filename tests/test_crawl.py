"""A crawl of the demo as each demo account and as an anonymous visitor: every page the product shows answers (#35).

Starting from the home page (and, anonymously, the public 公示 pages and the login page), the crawl follows every
same-site ``<a href>`` and submits every GET form with its default values (inputs' values, selected options; once
per named submit button), through Flask's test client. It fails on

- any 5xx (or an exception, which the test app propagates instead of answering 500),
- a link or form that answers 404 (or 405) to the account that was shown it,
- an HTML page without ``lang="zh-CN"`` or without a non-empty ``<title>``,
- a download (PDF, XLSX, ZIP, CSV) whose content type or first bytes are not what its name says.

It does not follow what changes state: POST forms (logout among them) and links to POST-only URLs are never
requested; external links are skipped.

To stay cheap (the demo worker of ``make test`` runs it on both engines) each account fetches a route once per set
of parameter names that carry a value: ``/projects/1`` and ``/projects/2`` are one page, so are ``?county=5`` and
``?county=6``, and ``?q=&county=`` is the plain list again. What does not depend on who asks is tried once for the
whole crawl (``Shared``), by the first account shown it: each value of ``sort`` (every header's order both ways, as
the sorted page's header offers the reverse), each GET form with its defaults, a later page of a list, and each
download (each value of an ``any(xlsx, csv)`` argument is its own route). The county office crawls first, so those
run on its small scope; a PDF (about a second) is rendered once a route, a county's report here
(tests/test_reconciliation.py renders a prefecture's and the province's and compares them cell by cell).
"""

import sys
import traceback
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import lxml.html
import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.routing.converters import AnyConverter

from registry import demo
from tests.conftest import login

#: Modules using the loaded demo run on one xdist worker (``--dist loadgroup``), which loads it once.
pytestmark = pytest.mark.xdist_group("demo")

#: Pages a crawl may fetch for one account; reaching it fails the test (the dedup would have stopped working).
MAX_PAGES = 600
ANONYMOUS = "anonymous"
#: The county office first: what the crawl tries once (sorts, downloads) it tries on the smallest scope, cheaply.
ACCOUNTS = [ANONYMOUS, "zhaojue", "guangdong", "zhejiang", "liangshan", "lingdao", "sheng", "admin"]
START = {ANONYMOUS: ["/", "/gongshi/", "/login"]}

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Download content type -> the bytes its body starts with (None: text, checked as UTF-8).
DOWNLOADS = {"application/pdf": b"%PDF", XLSX: b"PK", "application/zip": b"PK", "text/csv": None}
#: File extension -> the content type a download so named must have.
EXTENSIONS = {".pdf": "application/pdf", ".xlsx": XLSX, ".zip": "application/zip", ".csv": "text/csv"}
#: Never requested: logging out would end the crawl's session (it is a POST form anyway).
SKIP_ENDPOINTS = {"auth.logout"}
#: File downloads whose URL does not end in the file's extension.
DOWNLOAD_ENDPOINTS = {"tasks.download", "evidence.download"}


@dataclass
class Shared:
    """What the whole crawl tries once, whichever account is shown it first; the same code whoever asks:

    - each value of ``sort`` on a route, at most ``MAX_SORT_KEYS`` keys a route, both ways (tests/test_sorts.py
      tries every key of every table as every role);
    - the first page of a list and a later one;
    - each GET form, submitted with its defaults;
    - each download route (an export applies the list's filters and the scope's, which the list pages and the
      authorization matrix try for every role, then writes the same way for everyone; PDFs are the costly part)."""

    seen: set = field(default_factory=set)
    sorts: dict = field(default_factory=dict)


#: Sort keys tried on one route, each both ways, besides its default order: as many as the largest sort table has
#: (projects: 5); the ranking, one column per indicator (from data, each sorted by the same code), is sampled.
MAX_SORT_KEYS = 5


@dataclass
class Crawl:
    """One account's crawl: the queue of (URL, page that showed it), what was seen, and what went wrong."""

    app: object
    client: object
    who: str
    shared: Shared
    queue: deque = field(default_factory=deque)
    seen: set = field(default_factory=set)
    problems: list = field(default_factory=list)
    fetched: list = field(default_factory=list)

    def __post_init__(self):
        self.urls = self.app.url_map.bind("localhost")

    def run(self, start: list[str]) -> "Crawl":
        for url in start:
            self.offer(url, "(start)")
        while self.queue:
            url, shown_on = self.queue.popleft()
            if len(self.fetched) >= MAX_PAGES:
                self.problems.append(f"more than {MAX_PAGES} pages to visit: {url} (from {shown_on}) and more")
                break
            self.visit(url, shown_on)
        return self

    def offer(self, href: str, shown_on: str, form: bool = False) -> None:
        """Queue a link or form target unless external, state-changing or nothing new: a URL is fetched if its
        route and parameter names are new to this account, or its ``sort`` value or kind of ``page`` (the first,
        another) new to the crawl."""
        parts = urlsplit(urljoin(f"http://localhost{shown_on if shown_on.startswith('/') else '/'}", href))
        if parts.scheme not in ("http", "https") or parts.netloc not in ("localhost", ""):
            return
        query = parse_qsl(parts.query, keep_blank_values=True)
        url = parts.path + (f"?{urlencode(query)}" if query else "")
        try:
            rule, args = self.urls.match(parts.path, method="GET", return_rule=True)
        except RequestRedirect:
            mine, shared = {("redirect", parts.path)}, set()
        except NotFound:
            mine, shared = {("missing", parts.path)}, set()  # fetched: the 404 is reported with the page showing it
        except MethodNotAllowed:
            self.problems.append(f"{url}: a link to a URL that takes no GET (shown on {shown_on})")
            return
        else:
            if rule.endpoint in SKIP_ENDPOINTS:
                return
            route = (
                rule.endpoint,
                *sorted((k, v) for k, v in args.items() if isinstance(rule._converters[k], AnyConverter)),
            )
            # A link's parameters without a value filter nothing (``?q=&county=``): the plain page again. A GET form
            # is submitted with its defaults once for the whole crawl (how a view reads its arguments, an empty year
            # among them, is the same for everyone), a download fetched once a route.
            given = {k for k, v in query if v or form} - {"sort", "page"}
            names = (route, "form" if form else "link", tuple(sorted(given)))
            download = rule.endpoint in DOWNLOAD_ENDPOINTS or parts.path.lower().endswith(tuple(EXTENSIONS))
            if download:
                mine, shared = set(), {(route, "download")}
            else:
                mine, shared = (set(), {names}) if form else ({names}, set())
            if not download:  # a download's order is the list's, tried there
                sort = next((v for k, v in query if k == "sort"), "")
                key, tried = sort.removeprefix("-"), self.shared.sorts.setdefault(route, set())
                if not key or key in tried or len(tried) < MAX_SORT_KEYS:
                    tried |= {key} - {""}
                    shared.add((route, "sort", sort))
            shared |= {(route, "page", v == "1") for k, v in query if k == "page"}
        if mine <= self.seen and shared <= self.shared.seen:
            return
        self.seen |= mine
        self.shared.seen |= shared
        self.queue.append((url, shown_on))

    def visit(self, url: str, shown_on: str) -> None:
        self.fetched.append(url)
        try:
            response = self.client.get(url)
        except Exception:  # the test app propagates a view's exception instead of answering 500
            self.problems.append(f"{url}: exception (shown on {shown_on})\n{_traceback()}")
            return
        status = response.status_code
        if status >= 500 or status in (404, 405):
            self.problems.append(f"{url}: HTTP {status} (shown on {shown_on})")
        elif status in (301, 302, 303, 307, 308):
            self.offer(response.headers["Location"], url)
        elif status == 200:
            self.check(url, response)
        elif response.mimetype == "text/html":  # an error page (403, 409…) is a page too, whose links go nowhere new
            self.page(url, response.get_data(as_text=True), follow=False)

    def check(self, url: str, response) -> None:
        mimetype = response.mimetype
        disposition = response.headers.get("Content-Disposition", "")
        name = _filename(disposition) or urlsplit(url).path
        expected = next((t for ext, t in EXTENSIONS.items() if name.lower().endswith(ext)), None)
        if expected and mimetype != expected:
            self.problems.append(f"{url}: {mimetype}, but named {name!r} (expected {expected})")
        elif mimetype in DOWNLOADS:
            magic, body = DOWNLOADS[mimetype], response.get_data()
            if magic is not None and not body.startswith(magic):
                self.problems.append(f"{url}: {mimetype} starting {body[:8]!r}")
            elif magic is None:
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError:
                    self.problems.append(f"{url}: {mimetype} that is not UTF-8")
        elif mimetype == "text/html":
            self.page(url, response.get_data(as_text=True))

    def page(self, url: str, html: str, follow: bool = True) -> None:
        document = lxml.html.document_fromstring(html)
        title = (document.findtext(".//head/title") or "").strip()
        if document.get("lang") != "zh-CN" or not title:
            self.problems.append(f"{url}: lang={document.get('lang')!r}, title={title!r}")
        if not follow:
            return
        for href in document.xpath("//a/@href"):
            href = href.strip()
            if href and not href.startswith(("#", "mailto:", "javascript:", "tel:")):
                self.offer(href.split("#")[0], url)
        for form in document.forms:
            if (form.get("method") or "get").lower() != "get":
                continue
            action = urljoin(f"http://localhost{url}", form.get("action") or url)
            values = form.form_values()
            buttons = [
                (b.get("name"), b.get("value") or "")
                for b in form.xpath(".//button[not(@type) or @type='submit'][@name] | .//input[@type='submit'][@name]")
            ]
            for extra in [[b] for b in buttons] or [[]]:
                self.offer(f"{urlsplit(action).path}?{urlencode(values + extra)}", url, form=True)


def _traceback() -> str:
    """The frames of the application (not of Flask or SQLAlchemy) and the exception, for the failure message."""
    frames = [f for f in traceback.extract_tb(sys.exc_info()[2]) if "/site-packages/" not in f.filename]
    lines = traceback.format_list(frames[-6:]) + traceback.format_exception_only(sys.exc_info()[1])
    return "".join(lines)[-3000:]


def _filename(disposition: str) -> str:
    """The file name of a Content-Disposition header (``filename*=UTF-8''…`` or ``filename=…``)."""
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key in ("filename*", "filename"):
            return value.rsplit("'", 1)[-1].strip('"')
    return ""


@pytest.fixture(scope="module")
def crawls(demo_app):
    """Every account's crawl, in the order of ``ACCOUNTS`` (sharing what is tried once); PDFs are rendered in this
    process (the pool of processes is tests/test_report_cache.py's, and spawning it costs more than a render)."""
    demo_app.config["REPORT_PDF_WORKERS"] = 0
    shared, done = Shared(), {}
    for who in ACCOUNTS:
        client = demo_app.test_client()
        if who != ANONYMOUS:
            assert login(client, who, demo.DEMO_PASSWORD).status_code in (302, 303), who
        done[who] = Crawl(demo_app, client, who, shared).run(START.get(who, ["/"]))
    return done


@pytest.mark.parametrize("who", ACCOUNTS)
def test_every_link_and_get_form_answers(crawls, who):
    crawl = crawls[who]
    assert not crawl.problems, f"{who}: {len(crawl.problems)} problems\n" + "\n".join(crawl.problems)
    assert len(crawl.fetched) >= (3 if who == ANONYMOUS else 30), crawl.fetched


def test_every_demo_account_is_crawled():
    assert sorted(ACCOUNTS) == sorted([ANONYMOUS, *(username for username, *_ in demo.USERS)])
