"""Upload, list, delete and count evidence files. Services never commit; the stored object follows the row:
an object written for an upload that is rolled back is removed, and a deleted attachment's object is removed
only once the deletion is committed (the audit event keeps its name, size and SHA-256; the bytes are not kept).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from registry.evidence.files import check_content, clean_name, read_limited
from registry.evidence.kinds import KINDS, Kind
from registry.evidence.models import Attachment
from registry.kernel.audit.services import record as audit
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA
from registry.kernel.services import ServiceError
from registry.kernel.storage import evidence_storage, new_key
from registry.permissions import (
    QuarterLockedError,
    authorize_step,
    authorize_write,
    check_locked_date,
    declared_scope,
    may_write,
)

FIELDS = ("record_type", "record_id", "filename", "content_type", "size_bytes", "sha256")
LOCKED = "附件计入季度报告，已锁定季度的记录不能再添加或删除附件。"


def authorize(kind: Kind, record, actor) -> None:
    """The record's write gate: its scope (the parent's for a record that follows one) and its locked quarter.

    A part that follows its parent and has a date of its own (a problem's progress entry, a fund transaction) is a
    step on the parent: its own date answers for the lock, not the parent's (a problem found in a locked quarter
    is still worked on, and proved, in later ones)."""
    scoped = kind.scoped(record)
    try:
        if kind.follows is not None and kind.date:
            authorize_step(actor, kind.scoped_model, scoped, getattr(record, kind.date))
            return
        authorize_write(actor, kind.scoped_model, scoped, before=scoped)
        if kind.date:
            county_id = getattr(scoped, declared_scope(kind.scoped_model).county)
            check_locked_date(county_id, getattr(record, kind.date))
    except QuarterLockedError as exc:
        raise QuarterLockedError(f"{exc} {LOCKED}") from exc


def may_attach(kind: Kind, record, user) -> bool:
    """Does the page offer upload and delete (the scope half of ``authorize``; a locked quarter is told on post)?"""
    return may_write(user, kind.scoped(record))


def attachments_of(kind: Kind, record_id: int) -> list[Attachment]:
    stmt = sa.select(Attachment).where(Attachment.record_type == kind.name, Attachment.record_id == record_id)
    return list(db.session.scalars(stmt.order_by(Attachment.uploaded_at, Attachment.id)))


def counts(record_type: str, ids) -> dict[int, int]:
    """{record id: number of files} for these records, in one grouped query (list pages: no query per row)."""
    ids = list(ids)
    if not ids:
        return {}
    stmt = (
        sa.select(Attachment.record_id, sa.func.count())
        .where(Attachment.record_type == record_type, Attachment.record_id.in_(ids))
        .group_by(Attachment.record_id)
    )
    return dict(db.session.execute(stmt).all())


def upload(kind: Kind, record, stream, original_name: str, *, actor) -> Attachment:
    """Check and store one file for ``record``. :raise ServiceError: refused (scope, lock, size, type)."""
    authorize(kind, record, actor)
    limit = current_app.config["EVIDENCE_MAX_BYTES"]
    checked = check_content(read_limited(stream, limit))
    if len(checked.data) > limit:  # a re-encoded image may grow
        raise ServiceError(f"文件超过 {limit // (1024 * 1024)} MB 的大小限制，未保存。", "file")
    attachment = Attachment(
        record_type=kind.name,
        record_id=record.id,
        storage_key=new_key(),
        filename=clean_name(original_name, checked.extension),
        content_type=checked.content_type,
        size_bytes=len(checked.data),
        sha256=checked.sha256,
        uploaded_by_id=getattr(actor, "id", None),
    )
    storage = evidence_storage()
    storage.put(attachment.storage_key, checked.data, checked.content_type)
    _pending(storage, "written").append(attachment.storage_key)
    db.session.add(attachment)
    db.session.flush()
    changes = {f: getattr(attachment, f) for f in FIELDS}
    summary = f"上传附件 {attachment.filename}（{kind.label} #{record.id}）"
    audit("create", attachment, actor=actor, changes=changes, summary=summary, context=kind.scoped(record))
    return attachment


def delete(kind: Kind, record, attachment: Attachment, *, actor) -> None:
    authorize(kind, record, actor)
    changes = {f: getattr(attachment, f) for f in FIELDS}
    summary = f"删除附件 {attachment.filename}（{kind.label} #{record.id}）"
    audit("delete", attachment, actor=actor, changes=changes, summary=summary, context=kind.scoped(record))
    _pending(evidence_storage(), "deleted").append(attachment.storage_key)
    db.session.delete(attachment)


def read(attachment: Attachment, kind: Kind, record, *, actor) -> bytes:
    """The file's bytes; a download of a record with personal data is audited (the caller commits)."""
    if kind.personal:
        summary = f"下载附件 {attachment.filename}（{kind.label} #{record.id}）"
        audit("download", attachment, actor=actor, summary=summary, context=kind.scoped(record))
    return evidence_storage().get(attachment.storage_key)


# ---- the stored object follows the transaction ----------------------------------------------------------------


def _pending(storage, what: str) -> list:
    info = db.session().info.setdefault("evidence", {"storage": storage, "written": [], "deleted": []})
    return info[what]


@sa.event.listens_for(Session, "before_flush")
def _records_deleted(session, flush_context, instances):
    """A registered record deleted (a fund transaction) takes its files with it: rows now, objects on commit, each
    one audited. The stream's own delete has already passed the gate and the quarter lock."""
    for obj in list(session.deleted):
        kind = KINDS.get(getattr(obj, "__tablename__", ""))
        if kind is None or type(obj) is not kind.model or obj.id is None:
            continue
        with session.no_autoflush:
            files = session.scalars(
                sa.select(Attachment).where(Attachment.record_type == kind.name, Attachment.record_id == obj.id)
            ).all()
        for attachment in files:
            summary = f"随{kind.label} #{obj.id} 删除附件 {attachment.filename}"
            changes = {f: getattr(attachment, f) for f in FIELDS}
            audit("delete", attachment, actor=None, changes=changes, summary=summary)
            _pending(evidence_storage(), "deleted").append(attachment.storage_key)
            session.delete(attachment)


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session):
    info = session.info.pop("evidence", None)
    if info:
        for key in info["deleted"]:
            info["storage"].delete(key)


@sa.event.listens_for(Session, "after_rollback")
def _after_rollback(session):
    info = session.info.pop("evidence", None)
    if info:
        for key in info["written"]:
            info["storage"].delete(key)


@dataclass(frozen=True)
class EvidenceRow:
    """One record type in a quarter's report: how many of its records are dated in the quarter, how many carried
    a file by the cut-off, and whether offices must attach one (``Kind.required``)."""

    name: str
    records: int
    with_files: int
    required: bool

    @property
    def missing(self) -> int:
        """Records of the quarter still without any file at the cut-off."""
        return self.records - self.with_files


def quarter_counts(start, end, unit_ids, pairing_ids=None, cutoff=None) -> tuple[EvidenceRow, ...]:
    """Per registered record type dated into quarters: how many records of the period, how many of them had
    evidence uploaded by the end of ``cutoff`` (China time; default ``end``), so a quarter's figures do not move
    with files uploaded later. Records count when located in ``unit_ids`` (ids, or a SELECT of them) and, for an
    East liaison's report, attached to ``pairing_ids``. A type without a date (a project) is left out; its dated
    parts (fund transactions) count. One query per type."""
    cutoff = cutoff or end
    # The end of the cut-off day where the offices are (uploaded_at is UTC).
    until = datetime.combine(cutoff + timedelta(days=1), time(), tzinfo=CHINA).astimezone(UTC)
    rows = []
    for kind in KINDS.values():
        scope = declared_scope(kind.scoped_model)
        parent = kind.scoped_model
        day_name = kind.date or (scope.date if kind.follows is None else "")
        if not day_name:
            continue
        model = kind.model
        stmt = sa.select(sa.func.count()).select_from(model)
        if kind.follows is not None:
            (column,) = sa.inspect(model).relationships[kind.follows].local_columns
            stmt = stmt.join(parent, getattr(model, column.key) == parent.id)
        day = getattr(model, day_name)
        stmt = stmt.where(day >= start, day <= end, getattr(parent, scope.county).in_(unit_ids))
        if pairing_ids is not None and scope.pairing:
            stmt = stmt.where(getattr(parent, scope.pairing).in_(pairing_ids))
        total = db.session.scalar(stmt)
        # Those with a file, counted from the files (a few thousand) rather than by asking for each of the period's
        # records whether one exists: a province's year of placements is ~200,000 rows (0.48 s on PostgreSQL).
        with_files = db.session.scalar(
            stmt.with_only_columns(sa.func.count(sa.distinct(Attachment.record_id))).join(
                Attachment,
                sa.and_(
                    Attachment.record_type == kind.name,
                    Attachment.record_id == model.id,
                    Attachment.uploaded_at < until,
                ),
            )  # fmt: skip
        )
        rows.append(EvidenceRow(kind.label, total, with_files, kind.required))
    return tuple(rows)
