"""PDF rendering: a Jinja template's HTML through WeasyPrint, fetching nothing but files under ``static/``."""

import atexit
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


# ---- rendering outside the web worker -------------------------------------------------------------------------
#
# WeasyPrint holds a core for a second or more per report. Done in the web worker, that worker (or, with threads,
# the whole process through the GIL) answers nothing else meanwhile — /healthz included. So a request hands the
# rendering to a small pool of processes of its own and waits; with gunicorn's threaded workers (--threads) the
# other threads go on serving. The pool starts on the first PDF asked of a process (spawned, never forked: a
# forked child would share the parent's database connections) and is made anew in a forked or recycled worker.

_pools: dict = {}
_pools_lock = threading.Lock()
#: Renders running in this process by (figures, preparer): a second request for the same report waits for it.
_running: dict = {}


class RenderTimeout(RuntimeError):
    """The report took longer than REPORT_PDF_TIMEOUT seconds."""


def _worker_app_config(app) -> dict:
    # deferred: batch and documents import this module (render_pdf) at their top
    from registry.reports.batch import worker_config

    return worker_config(app)


def _pool(app):
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # deferred: batch and documents import this module (render_pdf) at their top
    # deferred: batch and documents import this module (render_pdf) at their top
    from registry.reports.batch import MAX_TASKS_PER_WORKER, worker_factory

    config = _worker_app_config(app)
    key = (os.getpid(), tuple(sorted(config.items())), app.config.get("REPORT_PDF_WORKERS", 2))
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = ProcessPoolExecutor(
                max_workers=key[2],
                mp_context=get_context("spawn"),
                initializer=_init_render_worker,
                initargs=(worker_factory(app), config),
                max_tasks_per_child=MAX_TASKS_PER_WORKER,
            )
            if not _pools:
                atexit.register(_shutdown)
            _pools[key] = pool
        return pool


def _shutdown() -> None:
    # Before the interpreter tears down the modules the executor's own clean-up needs.
    for pool in list(_pools.values()):
        pool.shutdown(wait=True, cancel_futures=True)
    _pools.clear()


#: Render processes run at a lower priority, so on a small server the web workers' short requests go first.
RENDER_NICENESS = 10


def _init_render_worker(factory, config: dict) -> None:
    # deferred: batch and documents import this module (render_pdf) at their top
    from registry.reports.batch import _init_worker

    try:
        os.nice(RENDER_NICENESS)
    except OSError:  # not permitted here: render at normal priority
        pass
    # A web worker killed outright (kill -9, out of memory) leaves its render processes waiting forever on a
    # queue nobody writes to; they leave when their parent does.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _init_worker(factory, config)


def _exit_with_parent(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _render_in_worker(figures, preparer: str | None, not_of_record: bool = False) -> bytes:
    """Runs in a pool process (its app built by ``batch._init_worker``): the report's HTML and PDF."""
    # deferred: batch and documents import this module (render_pdf) at their top
    from registry.reports import batch
    from registry.reports.documents import report_pdf  # deferred: as above

    with batch._app.app_context():
        return report_pdf(figures, preparer, not_of_record=not_of_record)


def render_report(figures, preparer: str | None = None, *, not_of_record: bool = False) -> bytes:
    """The PDF of ``figures`` (a ``QuarterFigures``), rendered by the process pool when REPORT_PDF_WORKERS > 0.

    Waits at most REPORT_PDF_TIMEOUT seconds (keep it below gunicorn's --timeout), then raises RenderTimeout.
    ``not_of_record`` marks it 非存档版 (``documents.report_html``).
    """
    from concurrent.futures import TimeoutError as FutureTimeout
    from concurrent.futures.process import BrokenProcessPool

    # deferred: batch and documents import this module (render_pdf) at their top
    from registry.reports.documents import report_pdf

    app = current_app._get_current_object()
    if int(app.config.get("REPORT_PDF_WORKERS", 2)) <= 0:
        return report_pdf(figures, preparer, not_of_record=not_of_record)
    timeout = float(app.config.get("REPORT_PDF_TIMEOUT", 100))
    key = (figures, preparer, not_of_record)
    with _pools_lock:
        future = _running.get(key)
    if future is None:
        try:
            future = _pool(app).submit(_render_in_worker, figures, preparer, not_of_record)
        except BrokenProcessPool:  # a render process was killed: start a new pool once
            _drop_pool(app)
            future = _pool(app).submit(_render_in_worker, figures, preparer, not_of_record)
        with _pools_lock:
            _running[key] = future
        future.add_done_callback(lambda f, key=key: _forget(key, f))
    try:
        return future.result(timeout=timeout)
    except FutureTimeout as exc:
        raise RenderTimeout(f"报告生成超过 {timeout:.0f} 秒") from exc
    except BrokenProcessPool:
        _drop_pool(app)
        raise


def _forget(key, future) -> None:
    with _pools_lock:
        if _running.get(key) is future:
            del _running[key]


def _drop_pool(app) -> None:
    with _pools_lock:
        for key in [k for k in _pools if k[0] == os.getpid()]:
            _pools.pop(key).shutdown(wait=False, cancel_futures=True)
