"""Quarterly pages: the choice of quarter and unit, the dashboard (季度看板), the PDF report, the narrative."""

from datetime import date

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_login import current_user

from registry.counties.models import Unit
from registry.kernel.errors import render_error
from registry.kernel.exports import download
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.web import attach_error, save
from registry.permissions import can, report_pairings, report_visible, requires, unit_in_scope
from registry.reports import cache, services
from registry.reports.documents import chart_set, report_stem, rounding_note, short_code, signing_unit
from registry.reports.forms import NarrativeForm
from registry.reports.queries import narrative_row, paired_counties, summary_units
from registry.reports.services import FIRST_YEAR, latest_quarter, parse_quarter
from registry.reports.workers import RenderTimeout

bp = Blueprint("reports", __name__, url_prefix="/reports")
# The cover of a report of record (templates/closing/_record.html) prints these, not the certificate's fields.
bp.add_app_template_filter(signing_unit, "signing_unit")
bp.add_app_template_filter(short_code, "short_code")
# Tables whose rows, rounded each on its own, do not add up to their total say so in the caption.
bp.add_app_template_global(rounding_note, "rounding_note")


def _unit_and_quarter(unit_id: int, quarter_text: str):
    """The unit and quarter of a report URL, or an error response; out of scope is 404 like a missing record."""
    try:
        quarter = parse_quarter(quarter_text)
    except ValueError as exc:
        return None, None, render_error(404, str(exc))
    unit = db.session.get(Unit, unit_id)
    if not report_visible(current_user, unit, quarter):
        abort(404)
    return unit, quarter, None


@bp.route("/")
@requires("records.view")
def index():
    """Choose a quarter; the province, prefectures and paired counties the user may report on."""
    text = request.args.get("quarter", "").strip()
    error = None
    quarter = latest_quarter()
    if text:
        try:
            quarter = parse_quarter(text)
        except ValueError as exc:
            error = str(exc)
    pairings = report_pairings(current_user)
    summary = summary_units()
    sichuan = summary[0] if summary else None
    units = [u for u in summary if report_visible(current_user, u, quarter)]
    counties = []
    if sichuan is not None:
        counties = paired_counties(sichuan, quarter, pairings)
        if pairings is None:  # a liaison's are limited by their pairings already; the others by their scope
            counties = [c for c in counties if report_visible(current_user, c, quarter)]
    return render_template(
        "reports/index.html", quarter=quarter, error=error, units=units, counties=counties,
        latest=latest_quarter(),
    )  # fmt: skip


@bp.route("/<int:unit_id>/<quarter_text>")
@requires("records.view")
def dashboard(unit_id, quarter_text):
    """季度看板: the same figures as the PDF, with charts, links to the records and the narrative form."""
    unit, quarter, error = _unit_and_quarter(unit_id, quarter_text)
    if error:
        return error
    figures = cache.figures(unit, quarter, current_user)
    form = None
    if can_narrate(unit):
        narrative = _narrative_row(unit, quarter)
        # Version 0 stands for "none written yet", so two first saves cannot silently overwrite each other.
        form = NarrativeForm(obj=narrative, data={"version": narrative.version_id if narrative else 0})
    return _dashboard(figures, form)


def mark_not_of_record() -> None:
    """Called before ``pdf`` answers (the close's request hook: a quarter with a version of record, rendered live):
    the render it serves is then marked 非存档版 inside the document. This package knows nothing of the close."""
    g.report_not_of_record = True


@bp.route("/<int:unit_id>/<quarter_text>.pdf")
@requires("records.view")
def pdf(unit_id, quarter_text):
    """The quarterly report as PDF, from the same figures as the dashboard."""
    unit, quarter, error = _unit_and_quarter(unit_id, quarter_text)
    if error:
        return error
    try:
        # Rendered by a pool of processes: this worker only waits, and its other threads go on serving.
        body = cache.pdf(unit, quarter, current_user, not_of_record=g.get("report_not_of_record", False))
    except RenderTimeout:
        return render_error(503, "报告生成时间过长，请稍后再试。")
    return download(body, report_stem(unit.code or str(unit.id), unit.name, quarter), "pdf", inline=True)


@bp.route("/<int:unit_id>/<quarter_text>/narrative", methods=["POST"])
@requires("reports.narrate")
def narrative(unit_id, quarter_text):
    """Save 亮点 / 问题 / 下步打算 of one unit's quarter (audited)."""
    unit, quarter, error = _unit_and_quarter(unit_id, quarter_text)
    if error:
        return error
    if not can_narrate(unit):
        abort(403)
    form = NarrativeForm()
    target = url_for(".dashboard", unit_id=unit.id, quarter_text=str(quarter)) + "#narrative"
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.save_narrative(unit, quarter, form.data, actor=current_user, version=form.version.data),
            "工作情况说明已保存。",
            target,
        )
        if response:
            return response
    figures = cache.figures(unit, quarter, current_user)
    if not form.errors and not form.form_errors:
        attach_error(form, ValueError("表单无效，请检查后重试。"))
    return _dashboard(figures, form), 400


def _dashboard(figures, form):
    quarter = figures.quarter
    return render_template(
        "reports/dashboard.html", f=figures, charts=chart_set(figures), form=form,
        previous=_shift(quarter, -1), following=_shift(quarter, 1),
        project_link=lambda p: url_for("projects.detail", project_id=p.id),
        county_link=lambda c: url_for(".dashboard", unit_id=c.id, quarter_text=str(quarter)),
    )  # fmt: skip


def can_narrate(unit: Unit) -> bool:
    return can(current_user, "reports.narrate") and unit_in_scope(current_user, unit)


def _narrative_row(unit: Unit, quarter: Quarter):
    return narrative_row(unit.id, quarter)


def _shift(quarter: Quarter, step: int) -> Quarter | None:
    index = quarter.year * 4 + quarter.number - 1 + step
    shifted = Quarter.of(index // 4, index % 4 + 1)
    if shifted.year < FIRST_YEAR or shifted.start > date.today():
        return None
    return shifted


@bp.route("/go")
@requires("records.view")
def go():
    """The quarter form on a county page posts here: redirect to that unit's dashboard."""
    unit_id = request.args.get("unit", type=int)
    text = request.args.get("quarter", "").strip()
    if unit_id is None:
        return redirect(url_for(".index", quarter=text))
    return redirect(url_for(".dashboard", unit_id=unit_id, quarter_text=text or str(latest_quarter())))
