"""Background jobs (state, progress, result file) and the notifications the periodic tasks write.

huey delivers a task at most once and keeps nothing about a task in flight, so what a user sees of a job lives
here, in the application database: durable, the same on SQLite and PostgreSQL, and visible from every web host.
"""

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import UTCDateTime, enum_column, utcnow
from registry.kernel.extensions import db


class JobKind(StrEnum):
    REPORTS = "reports"
    IMPORT = "import"
    EXPORT = "export"

    @property
    def label(self) -> str:
        return {JobKind.REPORTS: "批量生成季度报告", JobKind.IMPORT: "导入", JobKind.EXPORT: "导出"}[self]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def label(self) -> str:
        return {
            JobState.QUEUED: "排队中",
            JobState.RUNNING: "进行中",
            JobState.DONE: "已完成",
            JobState.FAILED: "失败",
        }[self]


job_users = sa.Table(
    "job_users",
    db.metadata,
    sa.Column("job_id", sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Job(db.Model):
    """One background job: who asked for it, its parameters, state, progress, errors and result file."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(enum_column(JobKind, 20))
    title: Mapped[str] = mapped_column(sa.String(200))
    #: Two requests for the same work share the job (a digest of its parameters and the data version).
    key: Mapped[str] = mapped_column(sa.String(64), index=True)
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    state: Mapped[JobState] = mapped_column(enum_column(JobState, 10), default=JobState.QUEUED, index=True)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    #: What is being worked on now ("昭觉县").
    current: Mapped[str] = mapped_column(sa.String(200), default="")
    #: [{"unit": name, "error": text}] for report batches; row errors of an import go to an error workbook.
    errors: Mapped[list] = mapped_column(sa.JSON, default=list)
    #: The outcome in words, for the page (Chinese), and the reason of a failure.
    message: Mapped[str] = mapped_column(sa.Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    #: "host:pid" of the process running it, so a restarted consumer can tell a dead run from a live one.
    worker: Mapped[str] = mapped_column(sa.String(120), default="")
    #: File name under the jobs folder (TASKS_FOLDER) and the name the user downloads it under.
    result_file: Mapped[str] = mapped_column(sa.String(200), default="")
    download_name: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    users: Mapped[list["User"]] = relationship(secondary=job_users)  # noqa: F821

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.state is JobState.DONE else 0)

    def __repr__(self):
        return f"<Job {self.id} {self.kind} {self.state}>"


class Notification(db.Model):
    """A reminder to one user: something due or overdue, with a link to where it is done."""

    __tablename__ = "notifications"
    __table_args__ = (sa.UniqueConstraint("user_id", "key", name="uq_notifications_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: What it is about, once per user ("narrative:12:2024Q3"): a daily check never repeats a reminder.
    key: Mapped[str] = mapped_column(sa.String(120))
    title: Mapped[str] = mapped_column(sa.String(300))
    link: Mapped[str] = mapped_column(sa.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self):
        return f"<Notification {self.user_id} {self.key}>"


class NotificationSetting(db.Model):
    """Where a user wants reminders e-mailed (when the office configured SMTP); no row, no e-mail."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(200), default="")
