"""Many reports at once: one per unit for a quarter, rendered in worker processes, into a folder or a zip file.

WeasyPrint lays out one document on one core, and threads only fight over the GIL, so the batch uses processes.
Each worker builds its own app (and database connections) once and renders task after task; workers are
recycled after ``MAX_TASKS_PER_WORKER`` reports to keep memory flat.
"""

import os
import resource
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from flask import current_app

from registry.auth.models import User
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.permissions import report_pairings, report_scope_label
from registry.reports import workers
from registry.reports.documents import NOT_OF_RECORD_SUFFIX, preparer_of, report_pdf, report_stem
from registry.reports.queries import quarter_figures
from registry.reports.workers import MAX_TASKS_PER_WORKER, init_batch_worker, worker_factory


@dataclass(frozen=True)
class Task:
    unit_id: int
    quarter: str
    #: The user whose scope the report follows (an East liaison's reports count only their pairings), or None
    #: for the office's own report of every record.
    user_id: int | None
    folder: str
    #: A render of a quarter that has a version of record (the caller knows; this package knows nothing of the
    #: close): marked 非存档版 inside the document and in its file name, as the single download is.
    not_of_record: bool = False


@dataclass(frozen=True)
class Outcome:
    unit_id: int
    filename: str
    seconds: float
    peak_rss_mb: float
    error: str = ""


def render_task(task: Task, app=None) -> Outcome:
    """Render one report to ``task.folder``; errors are returned, not raised, so one bad unit stops nothing."""

    app = app or workers._app
    started = time.perf_counter()
    filename = f"unit-{task.unit_id}.pdf"
    try:
        with app.app_context():
            unit = db.session.get(Unit, task.unit_id)
            if unit is None:
                raise LookupError(f"单位 {task.unit_id} 不存在")
            quarter = Quarter.parse(task.quarter)
            user = db.session.get(User, task.user_id) if task.user_id else None
            if user is None:
                figures, preparer = quarter_figures(unit, quarter), None
            else:
                figures = quarter_figures(unit, quarter, report_pairings(user), report_scope_label(user))
                preparer = preparer_of(user)
            body = report_pdf(figures, preparer, not_of_record=task.not_of_record)
            stem = report_stem(unit.code or str(unit.id), unit.name, quarter)
            filename = stem + (NOT_OF_RECORD_SUFFIX if task.not_of_record else "") + ".pdf"
            (Path(task.folder) / filename).write_bytes(body)
            db.session.remove()
    except Exception as exc:  # noqa: BLE001 - reported per unit; the batch goes on
        return Outcome(task.unit_id, filename, time.perf_counter() - started, _peak_rss_mb(), f"{exc}")
    return Outcome(task.unit_id, filename, time.perf_counter() - started, _peak_rss_mb())


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def render_many(
    tasks: list[Task],
    *,
    workers: int,
    config: dict,
    app=None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Render every task; ``workers`` = 1 renders in this process (with ``app``), more uses a process pool."""
    outcomes = []
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            outcome = render_task(task, app)
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
        return outcomes
    # spawn, not fork: a forked child would share the parent's open database connections.
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=init_batch_worker,
        initargs=(worker_factory(app or current_app), config, os.getpid()),
        max_tasks_per_child=MAX_TASKS_PER_WORKER,
    ) as pool:
        futures = {pool.submit(render_task, task): task for task in tasks}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died (killed, crashed, failed to start)
                outcome = Outcome(futures[future].unit_id, "", 0.0, 0.0, f"工作进程异常退出：{exc!r}")
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes


def write_output(folder: str, files: Iterable[str], out: Path) -> Path:
    """Move the rendered files to ``out``: a folder, or a zip file when ``out`` ends in .zip."""
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        try:
            # PDFs are compressed already; storing them is as small and much faster.
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
                for name in sorted(files):
                    archive.write(os.path.join(folder, name), arcname=name)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.move(os.path.join(folder, name), out / name)
    return out


def scratch_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="registry-reports-")
