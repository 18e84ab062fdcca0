"""Large list exports in the background: above ``EXPORT_BACKGROUND_ROWS`` (50,000) rows a list's export is a job.

The page answers at once with the job's page (progress, then a download), so a full-province XLSX (a million
placements take minutes) never runs inside a web worker's timeout; smaller exports stay immediate. The task writes
the same file the page would have sent (the stream's ``export_batches`` through ``exports.write_table``) into the
jobs folder, counting its rows as it goes. A stream's export page asks through the app's extension
``registry.background_export`` (streams do not know the task queue), as the import pages do for big uploads.

The keyword search's index catch-up (``search.catch_up``, SQLite) runs here too, every minute.
"""

import uuid
from datetime import date

import sqlalchemy as sa
from flask import current_app, redirect, url_for
from huey import crontab

from registry.auth.models import User
from registry.exchanges import queries as exchange_queries
from registry.exchanges.transfer import HEADERS as EXCHANGE_HEADERS
from registry.kernel import exports, search
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.permissions import can
from registry.placements import queries as placement_queries
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.purchases import queries as purchase_queries
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from registry.tasks import jobs
from registry.tasks.models import Job, JobKind
from registry.tasks.queue import QueueUnavailable, app_periodic_task, app_task, enqueue

#: Rows above which a list export runs as a background job (configurable as EXPORT_BACKGROUND_ROWS).
BACKGROUND_ROWS = 50_000
#: Rows between two progress writes of a running export.
PROGRESS_ROWS = 20_000


def _placements(args, user, kind, full):
    stmt = placement_queries.filtered(args, user)
    return placement_queries.export_batches(stmt, kind, reveal=full)


def _purchases(args, user, kind, full):
    return purchase_queries.export_batches(purchase_queries.filtered(args, user), kind)


def _exchanges(args, user, kind, full):
    return exchange_queries.export_batches(exchange_queries.filtered(args, user)[0], kind)


#: stream -> (its label, headers, column widths, batches(args, user, kind, full)).
STREAMS = {
    "placements": ("劳务协作", PLACEMENT_HEADERS,
                   [8, 10, 20, 10, 10, 10, 10, 16, 10, 10, 24, 10, 10, 14, 12, 12, 12, 20], _placements),
    "purchases": ("消费帮扶", PURCHASE_HEADERS, None, _purchases),
    "exchanges": ("人才交流", EXCHANGE_HEADERS, None, _exchanges),
}  # fmt: skip


def threshold() -> int:
    return int(current_app.config.get("EXPORT_BACKGROUND_ROWS", BACKGROUND_ROWS))


def rows_over(stmt: sa.Select, limit: int) -> int | None:
    """How many rows ``stmt`` gives, counted only up to ``limit`` + 1: None when there are no more than ``limit``."""
    counted = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).limit(limit + 1).subquery()))
    return counted if counted > limit else None


def background_export(stream: str, kind: str, args: dict, stmt: sa.Select, *, user, full: bool = False):
    """The export page's answer above the threshold: a job, then its page; None to export in the request (a small
    list, or the queue is down: the page keeps working)."""
    limit = threshold()
    if rows_over(stmt, limit) is None:
        return None
    label = STREAMS[stream][0]
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    params = {"stream": stream, "kind": kind, "args": args, "full": full}
    job = jobs.new_job(JobKind.EXPORT, f"导出{label}（{total} 条，{kind.upper()}）", uuid.uuid4().hex, params, user,
                       total=total)  # fmt: skip
    db.session.commit()
    try:
        enqueue(export_file, job.id)
    except QueueUnavailable as exc:
        current_app.logger.warning("queue unavailable, exporting in the request: %s", exc)
        db.session.delete(job)
        db.session.commit()
        return None
    return redirect(url_for("tasks.job", job_id=job.id))


@app_task("registry.exports.export_file")
def export_file(job_id: int) -> None:
    run(job_id)


def run(job_id: int) -> None:
    job = jobs.claim(job_id)
    if job is None:
        return
    params = dict(job.params)
    stream, kind, full = params["stream"], params["kind"], params.get("full", False)
    label, headers, widths, batches = STREAMS[stream]
    name = f"job-{job_id}-export.{kind}"
    path = jobs.folder() / name
    try:
        user = db.session.get(User, job.requested_by_id) if job.requested_by_id else None
        if user is None or not user.is_active or not can(user, "records.view"):
            raise ServiceError("提交导出的用户已不存在、已停用或已无权查看。")
        if full and not can(user, "idnumbers.view"):
            raise ServiceError("提交导出的用户已无权导出完整身份证号。")
        reported = 0

        def on_batch(done: int) -> None:
            nonlocal reported
            if done - reported >= PROGRESS_ROWS:
                jobs.progress(job_id, done=done)
                reported = done

        every = float(current_app.config["TASKS_HEARTBEAT_SECONDS"])
        with jobs.Heartbeat(job_id, every):
            count = exports.write_table(
                path, kind, headers, batches(params["args"], user, kind, full), title=label, widths=widths,
                on_batch=on_batch,
            )  # fmt: skip
        db.session.rollback()  # the export's read transaction ends here
    except ServiceError as exc:
        db.session.rollback()
        path.unlink(missing_ok=True)
        job = db.session.get(Job, job_id)
        jobs.fail(job, f"未导出：{exc}")
        db.session.commit()
        return
    except Exception as exc:  # noqa: BLE001 - the file is removed; the job says why
        path.unlink(missing_ok=True)
        jobs.attempt_failed(job_id, str(exc), retry=False)
        return
    job = db.session.get(Job, job_id)
    job.total = count
    jobs.finish(job, message=f"已导出 {count} 条。", result_file=name,
                download_name=f"{label}-{date.today().isoformat()}.{kind}")  # fmt: skip
    db.session.commit()


@app_periodic_task(crontab(minute="*"), name="registry.search_catch_up")
def search_catch_up():
    """Index the records added since the last minute (SQLite's keyword index; nothing to do on PostgreSQL)."""
    search.catch_up()
