"""Evidence pages: a record's files (list and upload), download, delete. HTTP only; the services decide."""

import io

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from registry.evidence import services
from registry.evidence.files import ALLOWED_TEXT
from registry.evidence.forms import DeleteForm, UploadForm
from registry.evidence.kinds import KINDS, Kind, kind_of
from registry.evidence.models import Attachment
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.web import safe_next
from registry.permissions import can, declared_scope, get_visible_or_404, requires

bp = Blueprint("evidence", __name__, url_prefix="/evidence")

#: Room for the multipart headers and the other fields around the file.
FORM_OVERHEAD = 64 * 1024


def _record(record_type: str, record_id: int):
    """(kind, record) if the type takes evidence and the user may see the record; 404 otherwise."""
    kind = kind_of(record_type)
    if kind is None:
        abort(404)
    return kind, get_visible_or_404(kind.model, record_id, kind.visible(current_user))


def _writer(record_type: str) -> None:
    """403 unless the role may write records of this type at all (scope is the service's question)."""
    kind = kind_of(record_type)
    if kind is None:
        abort(404)
    permission = declared_scope(kind.scoped_model).write
    if permission and not can(current_user, permission):
        abort(403)


def _attachment(kind: Kind, record, attachment_id: int) -> Attachment:
    found = db.session.scalar(
        sa.select(Attachment).where(
            Attachment.id == attachment_id, Attachment.record_type == kind.name, Attachment.record_id == record.id
        )
    )
    if found is None:
        abort(404)
    return found


def _back(record_type, record_id):
    return (
        safe_next(request.form.get("next"))
        if request.form.get("next")
        else url_for("evidence.index", record_type=record_type, record_id=record_id)
    )


@bp.route("/<record_type>/<int:record_id>")
@requires("records.view")
def index(record_type, record_id):
    kind, record = _record(record_type, record_id)
    return render_template("evidence/index.html", kind=kind, record=record, scoped=kind.scoped(record))


@bp.route("/<record_type>/<int:record_id>/upload", methods=["POST"])
@requires("records.view")
def upload(record_type, record_id):
    # Refuse an oversized body from its declared length, before a byte of it is read; a body without one is cut
    # while streaming (request limit) and counted again by the service (EVIDENCE_MAX_BYTES).
    limit = current_app.config["EVIDENCE_MAX_BYTES"] + FORM_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    request.max_content_length = min(limit, current_app.config["MAX_CONTENT_LENGTH"] or limit)
    _writer(record_type)
    kind, record = _record(record_type, record_id)
    form = UploadForm()
    back = _back(record_type, record_id)
    if not form.validate_on_submit():
        flash("表单已过期，请重新上传。", "danger")
        return redirect(back)
    file = request.files.get("file")
    if file is None or not file.filename:
        flash("请选择要上传的文件。", "danger")
        return redirect(back)
    try:
        attachment = services.upload(kind, record, file.stream, file.filename, actor=current_user)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(back)
    db.session.commit()
    flash(f"已上传附件 {attachment.filename}。", "success")
    return redirect(back)


@bp.route("/<record_type>/<int:record_id>/<int:attachment_id>")
@requires("records.view")
def download(record_type, record_id, attachment_id):
    kind, record = _record(record_type, record_id)
    attachment = _attachment(kind, record, attachment_id)
    data = services.read(attachment, kind, record, actor=current_user)
    if kind.personal:
        db.session.commit()
    response = send_file(
        io.BytesIO(data),
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.filename,
        max_age=0,
    )
    # The app's headers (registry/security.py) add nosniff, the CSP and no-store to this response as to every one.
    return response


@bp.route("/<record_type>/<int:record_id>/<int:attachment_id>/delete", methods=["POST"])
@requires("records.view")
def delete(record_type, record_id, attachment_id):
    _writer(record_type)
    kind, record = _record(record_type, record_id)
    attachment = _attachment(kind, record, attachment_id)
    back = _back(record_type, record_id)
    if not DeleteForm().validate_on_submit():
        flash("表单已过期，请重试。", "danger")
        return redirect(back)
    name = attachment.filename
    try:
        services.delete(kind, record, attachment, actor=current_user)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(back)
    db.session.commit()
    flash(f"已删除附件 {name}。", "success")
    return redirect(back)


@bp.app_template_global()
def evidence_of(record, user=None):
    """What a record's evidence panel shows: its files, whether the user may add or remove them, the forms."""
    kind = KINDS.get(getattr(record, "__tablename__", ""))
    if kind is None:
        raise LookupError(f"{type(record).__name__} does not take evidence files (see registry/evidence/kinds.py)")
    user = user or current_user
    return {
        "kind": kind,
        "record": record,
        "files": services.attachments_of(kind, record.id),
        "can_write": services.may_attach(kind, record, user),
        "upload_form": UploadForm(),
        "delete_form": DeleteForm(),
        "allowed": ALLOWED_TEXT,
        "max_mb": current_app.config["EVIDENCE_MAX_BYTES"] // (1024 * 1024),
    }


@bp.app_template_global()
def evidence_counts(records) -> dict[int, int]:
    """{record id: number of files} of a list page's records, in one grouped query."""
    records = list(records)
    if not records:
        return {}
    return services.counts(records[0].__tablename__, [r.id for r in records])
