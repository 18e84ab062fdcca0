"""Long imports in the background: above ``IMPORT_BACKGROUND_BYTES`` an upload is checked and written by a task.

The task runs the stream's own importer (the ``import_*_steps`` generator the page and the command line use):
every row goes through the stream's services inside the import's SAVEPOINT, and the task commits only when no
row failed. The job's outcome is set in that same commit, so a consumer killed mid-import leaves nothing written
and the sweeper then marks the job failed.
"""

import uuid

from flask import current_app, redirect, url_for

from registry.agreements.transfer import import_entries_steps, import_targets_steps
from registry.assets.transfer import import_assets_steps
from registry.auth.models import User
from registry.exchanges.transfer import import_exchanges_steps
from registry.kernel.database import writing
from registry.kernel.exports import xlsx_bytes
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.transfer import release_write_lock, run_steps
from registry.kernel.transfer.reader import read_table
from registry.permissions import can
from registry.placements.transfer import import_placements_steps
from registry.problems.transfer import import_problems_steps
from registry.projects.transfer import import_projects_steps, import_transactions_steps
from registry.purchases.transfer import import_purchases_steps
from registry.tasks import jobs
from registry.tasks.models import Job, JobKind
from registry.tasks.queue import QueueUnavailable, app_task, enqueue
from registry.tasks.reports import warm_figures

#: stream -> (its importer, the permission it needs, what it imports): the one registry of importers, read by the
#: background task and by ``flask transfer import <stream>``.
IMPORTERS = {
    "placements": (import_placements_steps, "placements.edit", "劳务协作"),
    "purchases": (import_purchases_steps, "purchases.edit", "消费帮扶"),
    "exchanges": (import_exchanges_steps, "exchanges.edit", "人才交流"),
    "problems": (import_problems_steps, "problems.edit", "整改问题"),
    "assets": (import_assets_steps, "projects.edit", "项目资产"),
    "projects": (import_projects_steps, "projects.edit", "帮扶项目"),
    "funds": (import_transactions_steps, "projects.edit", "项目资金记录"),
    "targets": (import_targets_steps, "agreements.manage", "协议目标"),
    "entries": (import_entries_steps, "entries.manage", "指标完成登记"),
}


def stream_of(steps_function) -> str | None:
    return next((name for name, (fn, _, _) in IMPORTERS.items() if fn is steps_function), None)


def background_import(data: bytes, filename: str, steps_function, *, user, page: dict):
    """The import page's answer above the threshold: a job, then its page; None to import in the request instead
    (an importer this module does not know, or the queue is down: the page keeps working)."""
    stream = stream_of(steps_function)
    if stream is None:
        return None
    label = IMPORTERS[stream][2]
    upload = f"import-{uuid.uuid4().hex}.upload"
    params = {"stream": stream, "filename": filename, "upload": upload, "back": page.get("back", "")}
    job = jobs.new_job(JobKind.IMPORT, f"导入{label}：{filename}", uuid.uuid4().hex, params, user)
    (jobs.folder() / upload).write_bytes(data)
    db.session.commit()
    try:
        enqueue(import_file, job.id)
    except QueueUnavailable as exc:
        current_app.logger.warning("queue unavailable, importing in the request: %s", exc)
        db.session.delete(job)
        db.session.commit()
        (jobs.folder() / upload).unlink(missing_ok=True)
        return None
    return redirect(url_for("tasks.job", job_id=job.id))


@app_task("registry.imports.import_file")
def import_file(job_id: int) -> None:
    # BEGIN IMMEDIATE on SQLite: the import checks rows against what it read, so it takes the write lock first.
    with writing():
        run(job_id)
    # The dashboards the import changed are made again now, not when the first office opens them.
    try:
        enqueue(warm_figures)
    except QueueUnavailable:
        pass


def run(job_id: int) -> None:
    job = jobs.claim(job_id)
    if job is None:
        return
    params = dict(job.params)
    source = jobs.folder() / params["upload"]
    try:
        steps_function, permission, _label = IMPORTERS[params["stream"]]
        user = db.session.get(User, job.requested_by_id) if job.requested_by_id else None
        if user is None or not user.is_active or not can(user, permission):
            raise ServiceError("提交导入的用户已不存在、已停用或已无权导入。")
        release_write_lock()
        headers, rows = read_table(source, params["filename"])
        every = float(current_app.config["TASKS_HEARTBEAT_SECONDS"])
        with jobs.Heartbeat(job_id, every):
            result = run_steps(
                steps_function(headers, rows, user=user, filename=params["filename"]),
                lambda done: jobs.live(job_id, done),
            )
    except ServiceError as exc:
        db.session.rollback()
        job = db.session.get(Job, job_id)
        jobs.fail(job, f"未导入：{exc}")
        db.session.commit()
        source.unlink(missing_ok=True)
        return
    except Exception as exc:  # noqa: BLE001 - nothing was committed; the job says so
        db.session.rollback()
        jobs.attempt_failed(job_id, f"{exc}（未写入任何数据）", retry=False)
        source.unlink(missing_ok=True)
        return
    job = db.session.get(Job, job_id)
    job.total = job.done = result.rows
    if result.errors:
        db.session.rollback()
        job = db.session.get(Job, job_id)
        job.total = job.done = result.rows
        table = [[e.row, e.column, e.value, e.reason] for e in result.errors]
        report = xlsx_bytes(["行号", "列", "内容", "原因"], table, title="导入错误", widths=[8, 14, 24, 60])
        name = f"job-{job_id}-errors.xlsx"
        (jobs.folder() / name).write_bytes(report)
        jobs.fail(job, f"未导入：{len(result.errors)} 处错误（共 {result.rows} 行），请按错误清单修改后重新导入。")
        job.result_file = name
        job.download_name = f"导入错误-{params['filename'].rsplit('.', 1)[0]}.xlsx"
        job.errors = [
            {"unit": f"第 {e.row} 行 {e.column}", "error": f"{e.reason}（{e.value}）"} for e in result.errors[:50]
        ]
    else:
        # The import's rows and the job's outcome commit together: both or neither.
        message = f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}。"
        # What was read differently from the template is said here as on the page (the first 20 notes).
        more = len(result.notes) - 20
        notes = "".join(result.notes[:20]) + (f"另有 {more} 条说明。" if more > 0 else "")
        jobs.finish(job, message=message + notes)
    db.session.commit()
    source.unlink(missing_ok=True)
