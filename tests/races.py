"""Two requests at once, the second started while the first holds its transaction open at a chosen point."""

import threading
import time

import sqlalchemy as sa

from registry.kernel.extensions import db


def _waiting_on_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


def race(app, post, reached: threading.Event, go: threading.Event) -> None:
    """Run ``post("first")`` in a thread until it sets ``reached`` (its code then waits for ``go``), start
    ``post("second")``, wait until the second is held by the first (PostgreSQL: a lock not granted; SQLite: the
    write lock at BEGIN, which no view shows, so half a second), then let the first go and wait for both."""
    first = threading.Thread(target=post, args=("first",), name="first")
    first.start()
    assert reached.wait(30), "the first request never reached its pause"
    second = threading.Thread(target=post, args=("second",), name="second")
    second.start()
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "postgresql":
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(engine) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _waiting_on_a_lock(engine), "the second request never waited on the first"
        else:
            time.sleep(0.5)  # the second waits for the write lock at BEGIN (busy timeout 5 s)
    go.set()
    first.join(60)
    second.join(60)
