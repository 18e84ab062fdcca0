"""Report batches from the web: one job renders a quarter's reports of chosen units into one ZIP.

The engine is the command line's (``reports.batch``): the same tasks, the same worker processes, the same files.
An approved quarter's report is its version of record, not rendered (``closing.batch``), and 说明.txt says which.
A batch is idempotent (it writes only its own ZIP, atomically), so a run whose consumer died is simply run again.
"""

from datetime import date

import sqlalchemy as sa
from flask import current_app

from registry.closing import batch as of_record
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel import versions
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.roles import Role
from registry.permissions import report_pairings, report_visible
from registry.reports import batch, cache
from registry.reports.documents import preparer_of
from registry.reports.queries import paired_counties
from registry.reports.services import latest_quarter
from registry.reports.workers import worker_config
from registry.tasks import jobs
from registry.tasks.models import Job, JobKind
from registry.tasks.queue import app_task, enqueue

#: Who may ask for a batch from the web (their reports follow their scope, as on the reports page).
BATCH_ROLES = frozenset({Role.PROVINCE, Role.PREFECTURE, Role.LIAISON})


def may_batch(user) -> bool:
    return getattr(user, "is_authenticated", False) and user.role in BATCH_ROLES


def all_counties(user, quarter: Quarter) -> list[Unit]:
    """The paired counties of the quarter that ``user`` may report on: '全部' on the reports page."""
    sichuan = db.session.scalar(
        sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind == UnitKind.PROVINCE).order_by(Unit.code).limit(1)
    )
    if sichuan is None:
        return []
    return [c for c in paired_counties(sichuan, quarter, report_pairings(user)) if report_visible(user, c, quarter)]


def request_batch(user, quarter: Quarter, units: list[Unit], *, everything: bool) -> tuple[Job, bool]:
    """The job rendering ``units``' reports as ``user`` would print them: a new one (True), or the same batch
    another user asked for and that is queued, running or done on the current data (False)."""
    scope = cache.scope_for(user)
    preparer = preparer_of(user)
    ids = [u.id for u in units]
    cutoff = min(quarter.end, date.today())
    key = jobs.job_key("reports", str(quarter), sorted(ids), scope.key, preparer, cutoff, units_version(units))
    existing = jobs.shared_job(key)
    if existing is not None:
        jobs.share(existing, user)
        return existing, False
    what = "全部结对县" if everything else (units[0].name if len(units) == 1 else f"{len(units)}个单位")
    title = f"{quarter.label}季度报告（{what}）"
    params = {
        "quarter": str(quarter),
        "units": ids,
        "user": user.id,
        "scope": scope.key,
        "download_name": f"{quarter.label}东西部协作季度报告-{what}.zip",
    }
    return jobs.new_job(JobKind.REPORTS, title, key, params, user, total=len(ids)), True


def units_version(units: list[Unit]) -> str:
    """The version of what a batch of ``units`` reads, as the report cache keys each unit's figures and PDFs
    (``cache.unit_version``): the digest of the data versions of the units, those within and above them, and
    ``GLOBAL``. A batch is reused exactly while nothing under its units changed (a write in another county leaves
    it be; a quarter approved or unlocked is a write of its unit)."""
    related: set[int] = set()
    for unit in units:
        related.update(cache.related_units(unit))
    return versions.digest(related)


def start(job: Job) -> None:
    """Queue a committed job (raises QueueUnavailable)."""
    enqueue(render_batch, job.id)


@app_task("registry.reports.render_batch", retries=jobs.MAX_ATTEMPTS - 1, retry_delay=1)
def render_batch(job_id: int) -> None:
    run(job_id)


def run(job_id: int) -> None:
    job = jobs.claim(job_id)
    if job is None:
        return  # done, failed, or being run by another delivery of the same job
    try:
        _render(job)
    except Exception as exc:  # noqa: BLE001 - recorded on the job; huey retries while attempts remain
        if jobs.attempt_failed(job_id, f"{exc}" or type(exc).__name__, retry=True):
            raise


def _render(job: Job) -> None:
    job_id, params = job.id, dict(job.params)
    quarter = Quarter.parse(params["quarter"])
    names = dict(db.session.execute(sa.select(Unit.id, Unit.name).where(Unit.id.in_(params["units"]))).all())
    app = current_app._get_current_object()
    workers = int(app.config.get("TASKS_REPORT_WORKERS") or 1)
    config = worker_config(app)
    errors: list[dict] = []
    every = float(app.config["TASKS_HEARTBEAT_SECONDS"])
    with jobs.Heartbeat(job_id, every), batch.scratch_folder() as scratch:
        tasks = [batch.Task(unit_id, str(quarter), params["user"], scratch) for unit_id in params["units"]]
        # An approved quarter's report is its version of record (the stored signed PDF), as the single download
        # gives it; only the others are rendered.
        plan = of_record.plan(tasks)
        db.session.commit()  # ends the read: the run holds no transaction while it renders
        pending = [task.unit_id for task in plan.render]
        done = len(plan.stored)

        def now_rendering() -> str:
            return "、".join(names.get(i, str(i)) for i in pending[:workers])

        jobs.progress(job_id, done=done, total=len(tasks), errors=[], current=now_rendering())

        def on_done(outcome: batch.Outcome) -> None:
            nonlocal done
            done += 1
            if outcome.unit_id in pending:
                pending.remove(outcome.unit_id)
            if outcome.error:
                errors.append({"unit": names.get(outcome.unit_id, str(outcome.unit_id)), "error": outcome.error})
            jobs.progress(job_id, done=done, current=now_rendering(), errors=list(errors))

        outcomes = plan.stored + batch.render_many(plan.render, workers=workers, config=config, app=app,
                                                   on_done=on_done)  # fmt: skip
        job = db.session.get(Job, job_id)
        if errors:
            # Like the command line: a batch with failures offers no ZIP, which would easily be taken for all.
            jobs.fail(job, f"{len(errors)} 份报告生成失败（见下），未生成压缩包。")
            db.session.commit()
            return
        name = f"job-{job_id}.zip"
        # Written as name.part and renamed: a ZIP is complete or absent, whenever the process dies.
        notes = of_record.write_notes(scratch, quarter, outcomes, plan.entries)
        batch.write_output(scratch, [o.filename for o in outcomes] + notes, jobs.folder() / name)
    jobs.finish(job, message=_finished(plan, outcomes), result_file=name,
                download_name=params["download_name"])  # fmt: skip
    db.session.commit()


def _finished(plan, outcomes) -> str:
    stored = len(plan.stored)
    if not stored:
        return f"已生成 {len(outcomes)} 份报告。"
    parts = f"已审定存档版 {stored} 份，实时生成 {len(outcomes) - stored} 份"
    return f"已生成 {len(outcomes)} 份报告：{parts}（见压缩包内{of_record.NOTES}）。"


@app_task("registry.warm_figures")
def warm_figures() -> None:
    """The province's and every prefecture's figures of the last quarter, made ahead of the first viewer (after an
    import, and every night); a no-op for the units whose cached figures are still current."""
    units = db.session.scalars(
        sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind.in_([UnitKind.PROVINCE, UnitKind.PREFECTURE]))
        .order_by(Unit.code)
    ).all()  # fmt: skip
    cache.warm(units, latest_quarter())
