"""Processes that render reports: one app per process, built by the factory the parent app was made by.

Two users: the web worker's small pool that renders a single PDF outside the request's process (``render_report``),
and the batch's pool (``batch.render_many``). Both spawn (never fork: a forked child would share the parent's
database connections), build their app once with ``_init_worker`` and are recycled after
``MAX_TASKS_PER_WORKER`` reports to keep memory flat. Above ``documents`` (what they render) and ``pdf`` (how),
below ``batch`` and ``cache``: nothing in this package imports upwards.
"""

import atexit
import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from flask import current_app

from registry.reports.documents import report_pdf

MAX_TASKS_PER_WORKER = 40

_app = None


def _init_worker(factory, config: dict):
    """Worker start-up: one app per process, with the parent's database and settings. ``factory`` is the app
    factory the parent app was built by (``worker_factory``), handed down rather than imported: the factory
    registers this package's blueprint, so reports must not import it."""
    global _app
    _app = factory(config)


#: Linux prctl(2) option: the signal a process gets when the thread that started it ends.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Make this worker process end when ``parent`` does, however it ends (SIGKILL included): on Linux the kernel
    sends SIGKILL at its death (``PR_SET_PDEATHSIG``); elsewhere a thread watches the parent. A consumer killed
    outright otherwise left its render workers running beside the next consumer."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)
    if not armed:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def init_batch_worker(factory, config: dict, parent: int):
    """A batch worker's start-up: bound to its parent's life, then its own app (``_init_worker``). The pool is made
    and its processes started by the thread that renders the batch and waits for it (``render_many``), which
    outlives them, so the parent-death signal (sent when that thread ends) never comes early."""
    die_with_parent(parent)
    _init_worker(factory, config)


def worker_factory(app):
    """The factory that built ``app`` (the app puts it in its extensions), for spawned workers to call."""
    return app.extensions["registry.create_app"]


def worker_config(app) -> dict:
    """What a worker process needs to build the same app: the database and the settings a report shows."""
    keys = ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "ORG_NAME", "ID_NUMBER_KEY")
    return {k: app.config[k] for k in keys if app.config.get(k) is not None} | {"SERVER_NAME": None}


# ---- one report outside the web worker -------------------------------------------------------------------------
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


def _pool(app):
    config = worker_config(app)
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
    try:
        os.nice(RENDER_NICENESS)
    except OSError:  # not permitted here: render at normal priority
        pass
    # A web worker killed outright (kill -9, out of memory) leaves its render processes waiting forever on a
    # queue nobody writes to; they leave when their parent does. Watched by a thread, not PR_SET_PDEATHSIG: the
    # pool is started by whichever request thread asked first, and the signal would come when that thread ends.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _init_worker(factory, config)


def _render_in_worker(figures, preparer: str | None, not_of_record: bool = False) -> bytes:
    """Runs in a pool process (its app built by ``_init_worker``): the report's HTML and PDF."""
    with _app.app_context():
        return report_pdf(figures, preparer, not_of_record=not_of_record)


def render_report(figures, preparer: str | None = None, *, not_of_record: bool = False) -> bytes:
    """The PDF of ``figures`` (a ``QuarterFigures``), rendered by the process pool when REPORT_PDF_WORKERS > 0.

    Waits at most REPORT_PDF_TIMEOUT seconds (keep it below gunicorn's --timeout), then raises RenderTimeout.
    ``not_of_record`` marks it 非存档版 (``documents.report_html``).
    """
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
