"""The audit event: who did what to which record, when, with each changed field's old and new value."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from registry.kernel.database import UTCDateTime, utcnow
from registry.kernel.extensions import db


class AuditEvent(db.Model):
    """Append-only; written by services in the same transaction as the change it describes."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_entity", "entity_type", "entity_id"),
        sa.Index("ix_audit_events_context", "context_type", "context_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    #: NULL for system actions (CLI, data loads).
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: Snapshot of the actor's name, so the log reads the same after a rename.
    actor_name: Mapped[str] = mapped_column(sa.String(100), default="系统")
    action: Mapped[str] = mapped_column(sa.String(30), index=True)
    #: Table name of the record, e.g. "pairings".
    entity_type: Mapped[str] = mapped_column(sa.String(50))
    entity_id: Mapped[int | None]
    #: The record this one belongs to (a fund transaction's project), so its page shows the event too.
    context_type: Mapped[str | None] = mapped_column(sa.String(50))
    context_id: Mapped[int | None]
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    #: {field: [old, new]} for updates; {field: value} snapshot for creates and deletes.
    changes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    ip: Mapped[str] = mapped_column(sa.String(64), default="")
    #: The import event this change was part of (each imported record has its own event, pointing here).
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("audit_events.id"), index=True)

    def __repr__(self):
        return f"<AuditEvent {self.id} {self.action} {self.entity_type}:{self.entity_id}>"
