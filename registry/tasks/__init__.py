"""Background work on a task queue (huey): report batches, long imports, reminders, backups, and the sweeper.

Tasks are defined once, in this package; the queue's storage is chosen by configuration (``queue.py``: SQLite in
``instance/`` by default, Redis with ``REDIS_URL``). Run a consumer with ``flask tasks consumer``; ``make run``
starts one next to the web server. What a user sees of a job lives in the ``jobs`` table (``jobs.py``).
"""

from datetime import UTC, datetime

from flask import current_app, url_for
from huey import crontab

from registry.assets import reminders as asset_reminders
from registry.auth.services import county_staff
from registry.disclosure import figures as disclosure_figures
from registry.findings.reminders import overdue_problems
from registry.findings.services import run_checks
from registry.kernel import transfer
from registry.kernel.database import refresh_planner_statistics, writing
from registry.kernel.extensions import db
from registry.placements import months as placement_month_rows
from registry.tasks import backup, exports, imports, jobs, reminders, reports, routing  # noqa: F401 - routing: hooks
from registry.tasks.queue import (
    app_periodic_task,
    configure,
    current_app_for_tasks,
    forked,
    huey,
    kv_put,
    this_worker,
)

CONSUMER_BEAT = "consumer:beat"


# Disclosure notices: windows about to end, and projects of the year no published notice lists yet.
@reminders.reminder
def disclosure_windows_ending(today):
    return (reminders.Due(*due) for due in disclosure_figures.windows_ending(today))


@reminders.reminder
def disclosure_undisclosed_projects(today):
    return (reminders.Due(*due) for due in disclosure_figures.undisclosed_projects(today))


def _county_staff_reminders(check):
    """A module's check yielding (county id, key, title, endpoint, url args) as reminders to that county's office
    staff (active county users scoped to it)."""

    def run(today):
        due = list(check(today))
        if not due:
            return
        staff = county_staff()
        with current_app.test_request_context():
            for county_id, key, title, endpoint, args in due:
                for user_id in staff.get(county_id, ()):
                    yield reminders.Due(user_id, key, title, url_for(endpoint, **args))

    return run


# Project assets: yearly 管护 checks overdue; projects accepted whose assets are not registered yet.
reminders.reminder(_county_staff_reminders(asset_reminders.overdue_checks))
reminders.reminder(_county_staff_reminders(asset_reminders.awaiting_registration))


def init_app(app):
    """Configure the queue for ``app``, its commands and views' helpers, and the import page's hook."""
    from registry.tasks import commands, views  # deferred: the views and commands need the app being built

    configure(app)
    app.register_blueprint(views.bp)
    commands.init_app(app)
    # The import pages (kernel: transfer.forms) call this above IMPORT_BACKGROUND_BYTES, without knowing tasks.
    app.extensions["registry.background_import"] = imports.background_import
    # The list export pages (streams) call this to hand a large export to a job (tasks/exports.py).
    app.extensions["registry.background_export"] = exports.background_export

    @app.context_processor
    def _tasks_helpers():
        return {"unread_notifications": views.unread_notifications, "may_batch": reports.may_batch}


def requeue(job) -> None:
    """Put a report batch back on the queue (the sweeper's answer to a run whose process died)."""
    reports.start(job)


def beat() -> None:
    """Tell the web pages a consumer is alive (they say 后台任务暂不可用 when none has been for a while)."""
    kv_put(CONSUMER_BEAT, {"at": datetime.now(UTC).timestamp(), "worker": this_worker()})


@huey.on_startup()
def _consumer_started():
    app = current_app_for_tasks()
    with app.app_context():
        # A forked worker (-k process) must not reuse the parent's database connections; threads share the pool.
        if forked():
            db.engine.dispose(close=False)
        beat()
        jobs.sweep(requeue)
        recover_imports()
        db.session.remove()


@app_periodic_task(crontab(minute="*"), name="registry.sweep")
def sweep_jobs():
    beat()
    jobs.sweep(requeue)
    recover_imports()


def recover_imports() -> None:
    """Undo the chunked imports whose process died mid-way: a killed consumer or web worker leaves
    nothing written (registry.kernel.transfer.recover_imports)."""
    try:
        with writing():
            transfer.recover_imports(float(current_app.config["TASKS_STALE_SECONDS"]), jobs._process_gone)
    except Exception:  # noqa: BLE001 - tried again at the next sweep
        db.session.rollback()
        current_app.logger.exception("undoing an abandoned import failed")


@app_periodic_task(crontab(minute="7"), name="registry.expire_jobs")
def expire_jobs():
    jobs.expire()


# Crontabs are matched in UTC: 16:00 UTC is 00:00 China time, 17:00 UTC is 01:00, 18:00 UTC is 02:00.
# People in work per month: placements still in work are counted up to each county's span (the end of the year the
# rows were built in); on the first night of a year the spans move on (a no-op on every other night).
@app_periodic_task(crontab(minute="5", hour="16"), name="registry.placement_months")
def placement_months():
    with writing():
        placement_month_rows.extend_spans()
        db.session.commit()


# The province's and the prefectures' dashboards made ahead of the morning (after the checks, which write proposals).
@app_periodic_task(crontab(minute="50", hour="16"), name="registry.warm_figures_nightly")
def warm_figures_nightly():
    reports.warm_figures.call_local()


# 整改台账: the data checks every night (before the reminders), and overdue problems among the reminders.
@app_periodic_task(crontab(minute="30", hour="16"), name="registry.problem_checks")
def problem_checks():
    with writing():
        run_checks(actor=None)
        db.session.commit()


def _problem_link(problem_id: int) -> str:
    with current_app.test_request_context():
        return url_for("problems.detail", problem_id=problem_id)


reminders.reminder(lambda today: (reminders.Due(*due) for due in overdue_problems(today, _problem_link)))


@app_periodic_task(crontab(minute="0", hour="17"), name="registry.notify")
def notify():
    with writing():
        reminders.notify()


# 01:50 China time: the planner statistics of every table, after the night's checks and reminders have written and
# before the backup (registry.kernel.database.refresh_statistics; imports refresh the tables they wrote themselves).
@app_periodic_task(crontab(minute="50", hour="17"), name="registry.statistics")
def nightly_statistics():
    refresh_planner_statistics(db.session)


@app_periodic_task(crontab(minute="0", hour="18"), name="registry.backup")
def nightly_backup():
    if current_app_for_tasks().config.get("BACKUP_SCHEDULE"):
        backup.take()
