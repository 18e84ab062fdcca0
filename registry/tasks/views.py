"""Pages of background work: asking for a report batch, a job's page (live progress, outcome, download), the
user's jobs (我的任务) and notifications (通知)."""

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from registry.counties.models import Unit
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import local_datetime
from registry.kernel.web import paginate
from registry.permissions import can, report_visible, requires
from registry.reports import cache
from registry.reports.services import parse_quarter
from registry.tasks import jobs, reminders, reports
from registry.tasks.models import Job, JobKind, JobState, Notification, NotificationSetting
from registry.tasks.queue import QueueUnavailable, kv_peek

bp = Blueprint("tasks", __name__)

UNAVAILABLE = "后台任务暂不可用"
#: A consumer beats every minute (the sweeper); three missed beats and the pages say the queue is down.
CONSUMER_SILENT_SECONDS = 180


def unread_notifications() -> int:
    if not current_user.is_authenticated:
        return 0
    return reminders.unread_count(current_user)


def _job_or_404(job_id: int) -> Job:
    """A job the current user asked for (or shares); any other is missing."""
    job = db.session.get(Job, job_id)
    if job is None or current_user not in job.users:
        abort(404)
    return job


def queue_alive() -> bool:
    """Has a consumer beaten recently? False also when the queue's storage cannot be reached."""
    value = kv_peek("consumer:beat")
    if not isinstance(value, dict):
        return False
    return datetime.now(UTC).timestamp() - value.get("at", 0) < CONSUMER_SILENT_SECONDS


@bp.route("/reports/batch", methods=["POST"])
@requires("records.view")
def report_batch():
    """'生成全部报告' or the ticked units of the reports page: a job (new or shared), then its page."""
    if not reports.may_batch(current_user):
        abort(403)
    try:
        quarter = parse_quarter(request.form.get("quarter", "").strip())
    except ValueError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("reports.index"))
    back = url_for("reports.index", quarter=str(quarter))
    everything = request.form.get("all") == "1"
    if everything:
        units = reports.all_counties(current_user, quarter)
    else:
        ids = sorted({int(v) for v in request.form.getlist("unit") if v.isdigit()})
        units = [db.session.get(Unit, i) for i in ids]
        if any(not report_visible(current_user, u, quarter) for u in units):
            abort(404)
    if not units:
        flash("请勾选要生成报告的单位，或选择“生成全部报告”。" if not everything else
              f"{quarter.label}在您的范围内没有结对县。", "warning")  # fmt: skip
        return redirect(back)
    job, created = reports.request_batch(current_user, quarter, units, everything=everything)
    db.session.commit()
    if created:
        try:
            reports.start(job)
        except QueueUnavailable:
            jobs.fail(job, f"{UNAVAILABLE}，请稍后再试。")
            db.session.commit()
            flash(f"{UNAVAILABLE}，请稍后再试。", "danger")
            return redirect(back)
        flash(f"已开始在后台生成 {len(units)} 份报告，可离开本页，稍后在“我的任务”中下载。", "success")
    else:
        flash("同样的报告已在生成或已生成，已加入您的任务。", "info")
    return redirect(url_for(".job", job_id=job.id))


@bp.route("/jobs/")
@requires("records.view")
def index():
    """我的任务: the user's jobs, newest first."""
    page = paginate(jobs.visible_jobs(current_user), args=request.args.to_dict())
    return render_template("tasks/index.html", page=page, JobState=JobState)


def _status(job: Job) -> dict:
    live = jobs.live_progress(job.id) if job.kind is JobKind.IMPORT and job.state is JobState.RUNNING else None
    done = max(job.done, (live or {}).get("done", 0))
    waiting = job.state in (JobState.QUEUED, JobState.RUNNING)
    return {
        "id": job.id,
        "state": job.state.value,
        "state_label": job.state.label,
        "done": done,
        "total": job.total,
        "current": job.current,
        "errors": job.errors,
        "message": job.message,
        "attempts": job.attempts,
        "download": url_for(".download", job_id=job.id) if job.result_file else "",
        "download_name": job.download_name,
        "unavailable": UNAVAILABLE if waiting and not queue_alive() else "",
    }


@bp.route("/jobs/<int:job_id>")
@requires("records.view")
def job(job_id):
    job = _job_or_404(job_id)
    return render_template("tasks/job.html", job=job, status=_status(job), JobKind=JobKind,
                           created=local_datetime(job.created_at))  # fmt: skip


@bp.route("/jobs/<int:job_id>/status")
@requires("records.view")
def status(job_id):
    """The job page's live part, polled by static/js/tasks.js."""
    response = jsonify(_status(_job_or_404(job_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/jobs/<int:job_id>/download")
@requires("records.view")
def download(job_id):
    """The job's file: only to its users, and (a report batch) only while they may see every unit in it."""
    job = _job_or_404(job_id)
    if not job.result_file:
        abort(404)
    if job.kind is JobKind.REPORTS:
        quarter = parse_quarter(job.params["quarter"])
        if cache.scope_for(current_user).key != job.params.get("scope"):
            abort(404)
        for unit_id in job.params["units"]:
            if not report_visible(current_user, db.session.get(Unit, unit_id), quarter):
                abort(404)
    if job.kind is JobKind.EXPORT and job.params.get("full") and not can(current_user, "idnumbers.view"):
        abort(404)  # full identity numbers: only while the user may still see them
    path = jobs.folder() / job.result_file
    if not path.is_file():
        abort(404)
    mimetype = "application/zip" if path.suffix == ".zip" else None
    return send_file(path, as_attachment=True, download_name=job.download_name or path.name, mimetype=mimetype)


@bp.route("/notifications/")
@requires("records.view")
def notifications():
    stmt = sa.select(Notification).where(Notification.user_id == current_user.id).order_by(Notification.id.desc())
    page = paginate(stmt, args=request.args.to_dict())
    setting = db.session.get(NotificationSetting, current_user.id)
    return render_template("tasks/notifications.html", page=page, email=setting.email if setting else "")


@bp.route("/notifications/read", methods=["POST"])
@requires("records.view")
def mark_read():
    db.session.execute(
        sa.update(Notification)
        .where(Notification.user_id == current_user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    db.session.commit()
    return redirect(url_for(".notifications"))


@bp.route("/notifications/email", methods=["POST"])
@requires("records.view")
def set_email():
    """The address reminders are e-mailed to (when the office configured SMTP); empty stops them."""
    email = request.form.get("email", "").strip()
    if email and ("@" not in email or len(email) > 200 or any(c.isspace() for c in email)):
        flash("邮箱地址格式不正确。", "danger")
        return redirect(url_for(".notifications"))
    setting = db.session.get(NotificationSetting, current_user.id) or NotificationSetting(user_id=current_user.id)
    setting.email = email
    db.session.add(setting)
    db.session.commit()
    flash("通知邮箱已保存。" if email else "已停止邮件通知。", "success")
    return redirect(url_for(".notifications"))
