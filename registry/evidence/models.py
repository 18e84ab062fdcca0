"""One evidence file attached to one record: (record type, record id) -> a stored object."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import UTCDateTime, utcnow
from registry.kernel.extensions import db


class Attachment(db.Model):
    """Metadata of a stored evidence file. The bytes live in ``storage`` under ``storage_key`` (random, never
    derived from the uploaded name); ``filename`` is the sanitised original name, shown and offered on download
    only. No foreign key to the record: the type is generic (any registered table)."""

    __tablename__ = "attachments"
    __table_args__ = (
        sa.CheckConstraint("size_bytes > 0", name="size_positive"),
        sa.CheckConstraint("record_id > 0", name="record_id_positive"),
        sa.Index("ix_attachments_record", "record_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    record_type: Mapped[str] = mapped_column(sa.String(64))
    record_id: Mapped[int]
    storage_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    uploaded_by: Mapped["User | None"] = relationship()  # noqa: F821

    AUDIT_LABELS = {
        "record_type": "记录类型",
        "record_id": "记录编号",
        "filename": "文件名",
        "content_type": "文件类型",
        "size_bytes": "大小（字节）",
        "sha256": "SHA-256",
    }

    def __repr__(self):
        return f"<Attachment {self.id} {self.record_type}:{self.record_id} {self.filename}>"
