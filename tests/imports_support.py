"""What the tests of long imports share: a CSV of template rows, a pause at an import's first chunk boundary
(``transfer.CHECKPOINT_HOOKS``, never a sleep), and a function run in a thread with its own app context."""

import csv
import io
import threading

from registry.kernel import transfer
from registry.kernel.extensions import db

WAIT = 60  # seconds a thread may take before the test gives up (never reached when it works)


def csv_bytes(headers, rows) -> bytes:
    """A UTF-8 CSV (with BOM) of ``rows`` ({column: text}; missing columns blank) under ``headers``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headers])
    return buffer.getvalue().encode("utf-8-sig")


class Paused:
    """A checkpoint hook that stops the import at its first chunk boundary until ``resume``."""

    def __init__(self, monkeypatch):
        self.reached = threading.Event()
        self.go_on = threading.Event()
        self.committed = None
        monkeypatch.setattr(transfer, "CHECKPOINT_HOOKS", [self])

    def __call__(self, batch):
        if not self.reached.is_set():
            self.committed = len(batch.created)
            self.reached.set()
            assert self.go_on.wait(WAIT), "the test never resumed the import"

    def resume(self):
        self.go_on.set()


def in_thread(app, work):
    """Run ``work()`` in a thread inside an app context: (thread, outcome) with outcome["value"] or ["error"]."""
    outcome = {}

    def run():
        with app.app_context():
            try:
                outcome["value"] = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                outcome["error"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome
