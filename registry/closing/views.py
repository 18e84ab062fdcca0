"""Closing pages and steps: the steps of a quarterly report (POST, from the dashboard's panel), the stored versions
(download, changes), and the public verification page a printed copy's QR code points to."""

import hmac
import re
import unicodedata
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from registry.closing import services, todos  # noqa: F401 - todos registers the close's to-do source
from registry.closing.forms import AnswerForm, ConfirmForm, DecideUnlockForm, StepForm, UnlockForm, VerifyForm
from registry.closing.models import WORKFLOW, ReportState, ReportVersion
from registry.closing.panel import overview, panel
from registry.closing.record import MAX_UPLOAD, compare, sha256
from registry.counties.models import Unit
from registry.kernel.database import reading
from registry.kernel.errors import render_error
from registry.kernel.exports import download
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError
from registry.kernel.workflow import post_step
from registry.permissions import can, confirmable_pairings, public, report_visible, requires
from registry.reports.documents import NOT_OF_RECORD_SUFFIX, SHORT_CODE_DIGITS, report_stem
from registry.reports.services import parse_quarter
from registry.reports.views import mark_not_of_record

bp = Blueprint("closing", __name__, url_prefix="/closing")


def _unit_and_quarter(unit_id: int, quarter_text: str):
    """The unit and quarter of the URL; 404 for a malformed quarter or a unit the user may not report on."""
    try:
        quarter = parse_quarter(quarter_text)
    except ValueError:
        abort(404)
    unit = db.session.get(Unit, unit_id)
    if not report_visible(current_user, unit, quarter):
        abort(404)
    return unit, quarter


def _dashboard(unit, quarter):
    return url_for("reports.dashboard", unit_id=unit.id, quarter_text=str(quarter)) + "#closing"


def _run(form, unit, quarter, call, success: str):
    """Validate, run the step, commit once; a refused step is flashed and nothing is written."""
    return post_step(form, call, success, _dashboard(unit, quarter), stale="该报表已被他人处理，请刷新后重试。")


def _allowed(step: str, unit):
    """403 unless the user is one who takes this step of the unit's reports (the workflow's predicate)."""
    if not WORKFLOW[step].may(current_user, unit):
        abort(403)


@bp.route("/<int:unit_id>/<quarter_text>/submit", methods=["POST"])
@requires("reports.submit")
def submit(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    _allowed("submit", unit)
    return _run(StepForm(), unit, quarter, lambda: services.submit(unit, quarter, actor=current_user), "报表已提交。")


@bp.route("/<int:unit_id>/<quarter_text>/review", methods=["POST"])
@requires("reports.review")
def review(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    _allowed("review", unit)
    form = StepForm()
    passed = form.decision.data != "return"
    return _run(
        form, unit, quarter,
        lambda: services.review(unit, quarter, passed=passed, comment=form.comment.data, actor=current_user),
        "已审核通过，报送省协作办审定。" if passed else "已退回，并附意见。",
    )  # fmt: skip


@bp.route("/<int:unit_id>/<quarter_text>/approve", methods=["POST"])
@requires("reports.approve")
def approve(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    _allowed("approve", unit)
    form = StepForm()
    passed = form.decision.data != "return"
    prepared = None
    if passed and form.validate_on_submit():
        # Render and sign (seconds) outside the write transaction: on SQLite the request's BEGIN IMMEDIATE would
        # keep every other writer waiting meanwhile ("database is locked" past the busy timeout). The approval
        # itself is then a short transaction that stores the prepared version.
        db.session.rollback()  # nothing written yet: ends the transaction the login's read began
        try:
            with reading():
                prepared = services.prepare_approval(unit, quarter, comment=form.comment.data,
                                                     override=form.override.data, actor=current_user)  # fmt: skip
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(_dashboard(unit, quarter))
        db.session.rollback()
    return _run(
        form, unit, quarter,
        lambda: services.approve(unit, quarter, passed=passed, comment=form.comment.data,
                                 override=form.override.data, actor=current_user, prepared=prepared),
        "已审定：报告已存档并签名，该季度数据已锁定。" if passed else "已退回，并附意见。",
    )  # fmt: skip


@bp.route("/<int:unit_id>/<quarter_text>/confirm", methods=["POST"])
@requires("reports.confirm")
def confirm(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    if not confirmable_pairings(current_user, unit, quarter):
        abort(403)
    form = ConfirmForm()
    disputed = form.decision.data == "dispute"
    return _run(
        form, unit, quarter,
        lambda: services.confirm(unit, quarter, form.pairing_id.data, disputed=disputed,
                                 figures=form.disputed_figures.data, reason=form.reason.data, actor=current_user),
        "已提出异议，县和市(州)将答复。" if disputed else "已确认本季度数据。",
    )  # fmt: skip


@bp.route("/<int:unit_id>/<quarter_text>/answer", methods=["POST"])
@requires("reports.answer")
def answer(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    _allowed("answer", unit)
    form = AnswerForm()
    return _run(
        form, unit, quarter,
        lambda: services.answer(unit, quarter, form.confirmation_id.data, form.answer.data, actor=current_user),
        "已答复异议。",
    )  # fmt: skip


@bp.route("/<int:unit_id>/<quarter_text>/unlock", methods=["POST"])
@requires("reports.unlock")
def request_unlock(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    _allowed("request_unlock", unit)
    form = UnlockForm()
    return _run(
        form, unit, quarter, lambda: services.request_unlock(unit, quarter, form.reason.data, actor=current_user),
        "解锁申请已提交，等待省协作办审批。",
    )  # fmt: skip


@bp.route("/<int:unit_id>/<quarter_text>/unlock/decide", methods=["POST"])
@requires("reports.approve")
def decide_unlock(unit_id, quarter_text):
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    _allowed("grant_unlock", unit)
    form = DecideUnlockForm()
    grant = form.decision.data != "refuse"
    return _run(
        form, unit, quarter,
        lambda: services.decide_unlock(unit, quarter, form.request_id.data, grant=grant, note=form.note.data,
                                       actor=current_user),
        "已同意解锁：该季度退回填报，可更正后重新提交。" if grant else "已不同意解锁。",
    )  # fmt: skip


def _version(unit, quarter, number) -> ReportVersion:
    report = services.report_of(unit, quarter)
    version = next((v for v in report.versions if v.number == number), None) if report is not None else None
    if version is None:
        abort(404)
    return version


@bp.route("/<int:unit_id>/<quarter_text>/v<int:number>.pdf")
@requires("records.view")
def version_pdf(unit_id, quarter_text, number):
    """Version n of the report of record, the stored signed bytes exactly as approved."""
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    version = _version(unit, quarter, number)
    stem = report_stem(unit.code or str(unit.id), unit.name, quarter) + f"-已审定版本{number}"
    return download(version.pdf, stem, "pdf", inline=True)


@bp.route("/<int:unit_id>/<quarter_text>/v<int:number>/changes")
@requires("records.view")
def changes(unit_id, quarter_text, number):
    """What changed, cell by cell, from version n-1 to version n."""
    unit, quarter = _unit_and_quarter(unit_id, quarter_text)
    version = _version(unit, quarter, number)
    previous = _version(unit, quarter, number - 1) if number > 1 else None
    rows = compare(previous.figures_json, version.figures_json) if previous else []
    return render_template(
        "closing/changes.html", unit=unit, quarter=quarter, version=version, previous=previous, rows=rows
    )


#: What a reader may type besides the hex digits: spaces, dashes of every width, zero-width marks a copy brings.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_\u00b7\u200b-\u200d\ufeff]+")
_HEX = re.compile(r"[0-9a-f]+")


def _typed_check(typed: str, figures_sha256: str) -> tuple[str, str]:
    """(result, what was checked) for a typed or scanned code: the printed 核验码 (the fingerprint's first 12 hex
    digits, with or without dashes and spaces, any case, full-width too) or the whole 64-digit fingerprint.
    Anything else is ``malformed``: an answer, never an error, whatever was typed."""
    if len(typed) > 200:
        return "malformed", ""
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", typed)).lower()
    if not _HEX.fullmatch(text) or len(text) not in (SHORT_CODE_DIGITS, 64):
        return "malformed", ""
    kind = "fingerprint" if len(text) == 64 else "code"
    stored = figures_sha256[: len(text)]
    # Compared in constant time; both sides are ASCII hex here.
    return ("match" if hmac.compare_digest(text.encode(), stored.encode()) else "mismatch"), kind


@bp.route("/verify/<token>", methods=["GET", "POST"])
@public
def verify(token):
    """Public: does a printed or sent copy match the approved version? Shows the unit, quarter, version, approval
    date and whether the file, the fingerprint or the cover's 核验码 matches; never figures or names of people."""
    # A token is URL-safe base64 (43 characters); anything else (a NUL byte PostgreSQL refuses, a long or
    # non-ASCII string) is simply not one of ours.
    well_formed = len(token) <= 100 and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)
    version = db.session.scalar(sa.select(ReportVersion).where(ReportVersion.token == token)) if well_formed else None
    if version is None:
        return render_error(404, "没有找到该报告版本：二维码或链接可能有误，或该报告不是由本系统审定的。")
    form = VerifyForm()
    result = checked = None
    typed = request.args.get("h", "").strip()
    if typed:
        result, checked = _typed_check(typed, version.figures_sha256)
    if request.method == "POST" and form.validate_on_submit():
        upload = form.file.data
        data = upload.read(MAX_UPLOAD + 1) if upload else b""
        typed = (form.figures_hash.data or "").strip()
        if data:
            if len(data) > MAX_UPLOAD:
                form.file.errors = ["文件过大：已审定的报告不超过 20 MB。"]
            elif not data.startswith(b"%PDF"):
                form.file.errors = ["这不是 PDF 文件。"]
            else:
                checked = "file"
                result = "match" if hmac.compare_digest(sha256(data), version.pdf_sha256) else "mismatch"
        elif typed:
            result, checked = _typed_check(typed, version.figures_sha256)
        else:
            form.file.errors = ["请选择要核验的 PDF 文件，或输入报告封面上印的核验码。"]
    report = version.report
    status = 200 if result in (None, "match") else 422
    return render_template(
        "closing/verify.html", version=version, unit=report.unit, quarter=Quarter.of(report.year, report.quarter),
        form=form, result=result, checked=checked, latest=max(v.number for v in report.versions),
    ), status  # fmt: skip


# ---- the quarter's report download after approval ------------------------------------------------------------
# The reports composition knows nothing of closing (the layers), so its report download (reports.pdf: "下载季度报告
# （PDF）" on the dashboard, the reports list, the home page) is answered here once a version of record exists. While
# the quarter is approved, by that version: the signed bytes the verification page recognises; ``?live=1`` asks for
# a render of the figures as they are now. A render of a quarter that has a version of record (asked for live, or
# the quarter unlocked since) is 非存档版: marked inside the document and in its file name, as the batch does.

LIVE = "live"


def _quarter_of_request():
    """The unit and quarter of a reports.pdf request the user may read, or None (the view then answers)."""
    args = request.view_args or {}
    if not can(current_user, "records.view"):
        return None
    try:
        quarter = parse_quarter(args.get("quarter_text", ""))
    except ValueError:
        return None
    unit = db.session.get(Unit, args.get("unit_id"))
    if unit is None or not report_visible(current_user, unit, quarter):
        return None
    return unit, quarter


@bp.before_app_request
def _download_of_record():
    """After approval the quarter's report download is the version of record (a redirect to its stored PDF); any
    other render of a quarter with a stored version is marked 非存档版 (``g.not_of_record_stem`` names its file)."""
    if request.endpoint != "reports.pdf":
        return None
    found = _quarter_of_request()
    report = services.report_of(*found) if found else None
    if report is None or not report.versions:
        return None
    unit, quarter = found
    if report.state is ReportState.APPROVED and request.args.get(LIVE) != "1":
        number = report.versions[-1].number
        return redirect(url_for("closing.version_pdf", unit_id=unit.id, quarter_text=str(quarter), number=number))
    mark_not_of_record()
    g.not_of_record_stem = report_stem(unit.code or str(unit.id), unit.name, quarter) + NOT_OF_RECORD_SUFFIX
    return None


@bp.after_app_request
def _label_live_render(response):
    """The file name of a render marked 非存档版 before the view ran says so too."""
    stem = g.get("not_of_record_stem")
    if stem is None or response.status_code != 200 or response.mimetype != "application/pdf":
        return response
    ascii_name = stem.encode("ascii", "ignore").decode() or "report"
    response.headers["Content-Disposition"] = (
        f"inline; filename=\"{ascii_name}.pdf\"; filename*=UTF-8''{quote(stem)}.pdf"
    )
    return response


@bp.app_context_processor
def _closing_globals():
    """The dashboard's and the report list's closing panels fetch their data themselves (one include line each),
    so the reports composition does not need to know about closing."""
    return {"closing_panel": panel, "closing_overview": overview}
