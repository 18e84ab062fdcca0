"""The task queue: one huey instance whose tasks are defined once, stored in SQLite or Redis by configuration.

``TASKS_QUEUE_URL`` chooses the storage: unset, ``REDIS_URL`` (when set) or else ``instance/huey.sqlite3`` (SQLite,
one file, nothing to install); ``redis://…`` for offices running several web hosts and consumers; ``sqlite:///path``
for another file; ``memory://`` keeps tasks in the process (tests that never run a consumer).

Tasks are written with ``app_task``: the body runs inside an application context of the app this process built
(the web app that enqueues, or the consumer's), and its database session is removed afterwards.
"""

import functools
import os
import socket

from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from redis import ConnectionPool

from registry.kernel.extensions import db


class AppHuey(Huey):
    """Huey whose storage is opened on first use: building an app (a report worker process, a command) that never
    touches the queue creates no file and no connection."""

    _storage = None
    _factory = None

    @property
    def storage(self):
        if self._storage is None and self._factory is not None:
            self._storage = self._factory()
        return self._storage

    @storage.setter
    def storage(self, value):
        self._storage = value


#: Results are not kept by huey: a job's state, progress and result file live in the ``jobs`` table.
huey = AppHuey("registry", results=False, store_none=False, utc=True, storage_class=MemoryStorage)

_state: dict = {"app": None}


class QueueUnavailable(RuntimeError):
    """The queue's storage could not be reached (Redis down, SQLite file unwritable)."""


def storage_for(app):
    """The huey storage the app's configuration asks for (see the module docstring)."""
    name = app.config["TASKS_QUEUE_NAME"]
    url = app.config.get("TASKS_QUEUE_URL") or app.config.get("REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        return SqliteStorage(name, filename=os.path.join(app.instance_path, "huey.sqlite3"))
    if url.startswith("memory:"):
        return MemoryStorage(name)
    if url.startswith("sqlite:///"):
        return SqliteStorage(name, filename=url[len("sqlite:///") :])
    if url.startswith(("redis://", "rediss://", "unix://")):
        # A short socket timeout: a web request that enqueues must not hang when Redis is down.
        pool = ConnectionPool.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        return RedisStorage(name, connection_pool=pool)
    raise ValueError(f"TASKS_QUEUE_URL 无法识别：{url}（应为 redis://…、sqlite:///… 或 memory://）")


def configure(app) -> None:
    """Point the queue at the app's storage; task bodies run in this app's context from now on."""
    huey.name = app.config["TASKS_QUEUE_NAME"]
    huey._factory = lambda: storage_for(app)
    huey.storage = None
    _state["app"] = app
    _state["pid"] = os.getpid()


def forked() -> bool:
    """True in a process forked from the one that configured the queue (a ``-k process`` worker)."""
    return _state.get("pid") not in (None, os.getpid())


def current_app_for_tasks():
    app = _state["app"]
    if app is None:
        raise RuntimeError("the task queue is not configured: build the app (create_app) first")
    return app


def app_task(name: str, **options):
    """``huey.task`` whose body runs in an application context; ``name`` keeps queued tasks valid across moves."""

    def decorator(fn):
        @functools.wraps(fn)
        def body(*args, **kwargs):
            with current_app_for_tasks().app_context():
                try:
                    return fn(*args, **kwargs)
                finally:
                    db.session.remove()

        return huey.task(name=name, **options)(body)

    return decorator


def app_periodic_task(validate_datetime, name: str):
    """``huey.periodic_task`` with the same application context."""

    def decorator(fn):
        @functools.wraps(fn)
        def body():
            with current_app_for_tasks().app_context():
                try:
                    return fn()
                finally:
                    db.session.remove()

        return huey.periodic_task(validate_datetime, name=name)(body)

    return decorator


def enqueue(task, *args) -> None:
    """Put ``task(*args)`` on the queue, or raise QueueUnavailable with the storage's error."""
    try:
        task(*args)
    except Exception as exc:  # noqa: BLE001 - any storage failure (connection refused, disk, locked) means the same
        raise QueueUnavailable(str(exc)) from exc


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def kv_put(key: str, value) -> None:
    """A small shared value (live import progress, heartbeats) in the queue's storage; best effort."""
    try:
        huey.put(key, value)
    except Exception:  # noqa: BLE001, S110 - progress display only; the job row stays the source of truth
        pass


def kv_peek(key: str):
    try:
        return huey.get(key, peek=True)
    except Exception:  # noqa: BLE001 - the queue is down: no live value
        return None
