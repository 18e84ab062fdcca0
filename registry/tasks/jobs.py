"""Job rows: creating (or sharing) a job, claiming it in a worker, progress, the outcome, and the sweeper that
finds runs whose process died.

huey removes a task from the queue before running it (at most once), so a consumer killed mid-task loses it
silently. The job row is what survives: a run claims its row (``claim``), beats while it works, and finishes it.
``sweep`` (periodic, and at every consumer start) finds rows still "running" whose process is gone (same host,
pid dead) or silent for ``TASKS_STALE_SECONDS``: an idempotent job (a report batch) is queued again until
``MAX_ATTEMPTS``, anything else is marked failed with the reason. A job is never left running forever.
"""

import hashlib
import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.tasks.models import Job, JobKind, JobState, job_users
from registry.tasks.queue import kv_peek, kv_put, this_worker

log = logging.getLogger(__name__)

#: Runs of one job at most (the first and two retries), whether a run raised or its process died.
MAX_ATTEMPTS = 3


def folder() -> Path:
    """Where job files live (uploads waiting for their import, result ZIPs, error workbooks)."""
    path = Path(current_app.config.get("TASKS_FOLDER") or os.path.join(current_app.instance_path, "jobs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def shared_job(key: str) -> Job | None:
    """A job of the same work that is queued, running or done with its result still kept.

    The caller makes the job (``new_job``) in the same transaction when there is none, so two requests for the same
    work must not both find none: on PostgreSQL the first takes a transaction-level advisory lock on the key, and
    the second waits for it here until the first has committed its job, then finds it (SQLite's requests queue on
    the write lock at BEGIN already)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # A 60-bit number from the key's hash (advisory locks take a signed 64-bit key).
        number = int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(number)))
    return db.session.scalar(
        sa.select(Job)
        .where(Job.key == key, Job.state.in_((JobState.QUEUED, JobState.RUNNING, JobState.DONE)))
        .order_by(Job.id.desc())
        .limit(1)
    )


def new_job(kind: JobKind, title: str, key: str, params: dict, user, total: int = 0) -> Job:
    job = Job(kind=kind, title=title, key=key, params=params, requested_by_id=user.id, total=total)
    job.users.append(user)
    db.session.add(job)
    db.session.flush()
    return job


def share(job: Job, user) -> None:
    if user not in job.users:
        job.users.append(user)


def visible_jobs(user):
    return (
        sa.select(Job)
        .join(job_users, job_users.c.job_id == Job.id)
        .where(job_users.c.user_id == user.id)
        .order_by(Job.id.desc())
    )


# ---- in a worker -----------------------------------------------------------------------------------------------


def claim(job_id: int) -> Job | None:
    """Take a queued job for this process (one UPDATE, so two deliveries of the same job cannot both run it)."""
    now = utcnow()
    claimed = db.session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.state == JobState.QUEUED)
        .values(
            state=JobState.RUNNING,
            worker=this_worker(),
            attempts=Job.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            message="",
        )  # fmt: skip
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        return None
    return db.session.get(Job, job_id)


def progress(job_id: int, **values) -> None:
    """Record progress (``done``, ``total``, ``current``, ``errors``) of a run in its own short transaction.

    Its first statement is the UPDATE, so on SQLite it waits for the write lock like any writer instead of
    failing on a stale read snapshot; callers keep the counters, which only grow. Never used inside an import's
    transaction (see ``live``).
    """
    if "current" in values:
        values["current"] = values["current"][:200]
    with db.engine.begin() as conn:
        conn.execute(sa.update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow(), **values))


def live(job_id: int, done: int) -> None:
    """Progress of a run that holds a write transaction (an import): kept in the queue's storage, not the database,
    which the import's transaction must not commit early and SQLite's write lock would not let another write."""
    kv_put(f"job:{job_id}:live", {"done": done, "at": datetime.now(UTC).timestamp()})


def live_progress(job_id: int) -> dict | None:
    return kv_peek(f"job:{job_id}:live")


def finish(job: Job, *, message: str, result_file: str = "", download_name: str = "") -> None:
    """Mark the job done (the caller commits, with whatever the job wrote, in one transaction)."""
    job.state = JobState.DONE
    job.message = message
    job.result_file = result_file
    job.download_name = download_name
    job.finished_at = utcnow()
    job.current = ""
    if job.total:
        job.done = job.total


def fail(job: Job, message: str) -> None:
    job.state = JobState.FAILED
    job.message = message[:2000]
    job.finished_at = utcnow()
    job.current = ""


def attempt_failed(job_id: int, reason: str, *, retry: bool) -> bool:
    """After a run raised: queue the job for huey's retry, or mark it failed; True when it will be retried."""
    db.session.rollback()
    job = db.session.get(Job, job_id)
    if job is None:
        return False
    if retry and job.attempts < MAX_ATTEMPTS:
        job.state = JobState.QUEUED
        job.message = f"第 {job.attempts} 次运行出错：{reason}；稍后自动重试。"
        db.session.commit()
        return True
    fail(job, f"后台任务失败（已尝试 {job.attempts} 次）：{reason}")
    db.session.commit()
    return False


class Heartbeat:
    """Beats every few seconds in a thread while a run works, in the queue's storage (see ``live``)."""

    def __init__(self, job_id: int, every: float):
        self.job_id, self.every = job_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"job-{job_id}-heartbeat")

    def _run(self):
        while True:
            kv_put(f"job:{self.job_id}:beat", datetime.now(UTC).timestamp())
            if self._stop.wait(self.every):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


# ---- the sweeper -----------------------------------------------------------------------------------------------


def _process_gone(worker: str) -> bool:
    """True if ``worker`` ("host:pid") ran on this host and that process no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _last_sign_of_life(job: Job) -> datetime | None:
    times = [t for t in (job.heartbeat_at, job.started_at) if t is not None]
    for key in (f"job:{job.id}:beat", f"job:{job.id}:live"):
        value = kv_peek(key)
        if isinstance(value, dict):
            value = value.get("at")
        if isinstance(value, int | float):
            times.append(datetime.fromtimestamp(value, UTC))
    return max(times) if times else None


def sweep(requeue) -> list[int]:
    """Settle running jobs whose run is dead; ``requeue(job)`` puts an idempotent one back on the queue.

    Returns the ids of the jobs settled. Each is changed by a conditional UPDATE, so two sweepers (two consumers
    starting at once) never both re-queue one job.
    """
    stale = timedelta(seconds=float(current_app.config["TASKS_STALE_SECONDS"]))
    now = utcnow()
    settled = []
    for job in db.session.scalars(sa.select(Job).where(Job.state == JobState.RUNNING)).all():
        gone = _process_gone(job.worker)
        last = _last_sign_of_life(job)
        if not gone and last is not None and now - last < stale:
            continue
        why = "后台任务进程已退出" if gone else f"后台任务超过 {int(stale.total_seconds())} 秒没有进展"
        again = job.kind is JobKind.REPORTS and job.attempts < MAX_ATTEMPTS
        values = (
            {"state": JobState.QUEUED, "message": f"{why}，已重新排队（第 {job.attempts} 次运行未完成）。"}
            if again
            else {
                "state": JobState.FAILED,
                "finished_at": now,
                "current": "",
                "message": f"{why}，任务未完成"
                + ("，没有写入任何数据。请重新导入。" if job.kind is JobKind.IMPORT else "。请重新提交。"),
            }
        )
        changed = db.session.execute(
            sa.update(Job)
            .where(Job.id == job.id, Job.state == JobState.RUNNING, Job.worker == job.worker)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if changed:
            settled.append(job.id)
            log.warning("job %s: %s (%s)", job.id, values["message"], job.worker)
            if again:
                requeue(db.session.get(Job, job.id))
    return settled


def expire() -> int:
    """Delete finished jobs older than TASKS_KEEP_DAYS, with their files; returns how many."""
    cutoff = utcnow() - timedelta(days=float(current_app.config["TASKS_KEEP_DAYS"]))
    old = db.session.scalars(
        sa.select(Job).where(Job.created_at < cutoff, Job.state.in_((JobState.DONE, JobState.FAILED)))
    ).all()
    base = folder()
    for job in old:
        for name in (job.result_file, job.params.get("upload", ""), job.params.get("errors_file", "")):
            if name:
                (base / name).unlink(missing_ok=True)
        db.session.delete(job)
    db.session.commit()
    return len(old)
