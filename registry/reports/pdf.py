"""PDF rendering: a Jinja template's HTML through WeasyPrint, fetching nothing but files under ``static/``."""

import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app

#: The stylesheet of every report, under static/.
REPORT_CSS = "css/report.css"


def _weasyprint():
    # Imported on first use: Pango is loaded then, not when the app starts (pages work without it).
    import weasyprint
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import URLFetcher

    return weasyprint, FontConfiguration, URLFetcher


class BlockedURL(ValueError):
    """A report asked for something outside static/ (logged by WeasyPrint, the resource is skipped)."""


def static_only_fetcher(static_dir: str, seen: list | None = None):
    """A WeasyPrint URL fetcher that serves files under ``static_dir`` and refuses everything else.

    No http(s), ftp or data URLs; file URLs only when their real path (symlinks resolved) is inside
    ``static_dir``. ``seen``, if given, collects every URL asked for (tests use it).
    """
    _, _, URLFetcher = _weasyprint()
    root = os.path.realpath(static_dir)

    class StaticOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if seen is not None:
                seen.append(url)
            parts = urlsplit(url)
            if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
                raise BlockedURL(f"报告不读取外部地址：{url[:200]}")
            path = os.path.realpath(unquote(parts.path))
            if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
                raise BlockedURL(f"报告只读取 static/ 下的文件：{url[:200]}")
            return super().fetch(url, headers)

    return StaticOnlyFetcher(allowed_protocols={"file"}, allow_redirects=False)


_local = threading.local()


def _resources(static_dir: str):
    """One FontConfiguration and the parsed report stylesheet per thread, kept between reports.

    Parsing CSS is the costly part of a small render; per thread, because WeasyPrint's font configuration is
    not documented as safe to share between threads (the development server and threaded WSGI servers).
    """
    cache = _local.__dict__.setdefault("resources", {})
    if static_dir not in cache:
        weasyprint, FontConfiguration, _ = _weasyprint()
        fonts = FontConfiguration()
        css = weasyprint.CSS(
            filename=str(Path(static_dir) / REPORT_CSS),
            font_config=fonts,
            url_fetcher=static_only_fetcher(static_dir),
        )
        cache[static_dir] = (fonts, css)
    return cache[static_dir]


def render_pdf(html: str, *, static_dir: str | None = None, seen: list | None = None) -> bytes:
    """Lay out ``html`` (a rendered report template) as PDF bytes, with the report stylesheet."""
    weasyprint, _, _ = _weasyprint()
    static_dir = static_dir or current_app.static_folder
    fonts, css = _resources(static_dir)
    document = weasyprint.HTML(
        string=html,
        base_url=Path(static_dir).as_uri() + "/",
        url_fetcher=static_only_fetcher(static_dir, seen),
    )
    return document.write_pdf(stylesheets=[css], font_config=fonts)


def subsetting_path() -> str:
    """Which font subsetter WeasyPrint uses here: HarfBuzz (fast) or fontTools (many times slower for CJK)."""
    from weasyprint.text.ffi import harfbuzz, harfbuzz_subset

    if harfbuzz_subset is not None and harfbuzz.hb_version_atleast(4, 1, 0):
        return "harfbuzz-subset"
    return "fontTools（缺少 libharfbuzz-subset0，CJK 字体子集化会慢很多）"
