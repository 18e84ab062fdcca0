"""Agreement pages: the year's agreements, targets and their allocation, progress; indicators and entries. An
agreement's create and edit and the two imports (targets, entries) are the stream kit's pages."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from registry import permissions
from registry.agreements import queries, ranking, services
from registry.agreements.calculators import takes_entries
from registry.agreements.forms import AgreementForm, EntryForm, IndicatorForm, target_form
from registry.agreements.models import Agreement, Indicator, IndicatorEntry, Measure
from registry.agreements.transfer import (
    ENTRY_HEADERS,
    ENTRY_RULES,
    TARGET_HEADERS,
    TARGET_RULES,
    entry_columns,
    entry_rows,
    import_entries_steps,
    import_targets_steps,
    target_columns,
    target_rows,
)
from registry.counties.models import Unit
from registry.kernel.audit.queries import history_of
from registry.kernel.exports import csv_bytes, download, xlsx_bytes
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, choice, posted_version, unit_choice
from registry.kernel.money import MoneyError, parse_wan
from registry.kernel.pages import StreamPages
from registry.kernel.services import ServiceError
from registry.kernel.web import attach_error, is_year, paginate, save
from registry.pairings.models import Programme
from registry.permissions import (
    get_visible_or_404,
    may_write,
    programme_filter,
    requires,
    scope_filter,
    writable_counties,
)
from registry.projects.queries import attachable_pairings

bp = Blueprint("agreements", __name__)
pages = StreamPages(
    bp,
    gate=permissions,
    model=Agreement,
    name="agreement",
    label="年度协议",
    edit="agreements.manage",
    root="/agreements",
    where=lambda user: programme_filter(user, Agreement.programme_id),
)


def _cutoff(year: int) -> tuple[date, str | None]:
    """The ?cutoff= date (default: today, or the year's end for past years) and an error if it was unreadable."""
    default = min(date.today(), date(year, 12, 31))
    text = request.args.get("cutoff", "").strip()
    if not text:
        return default, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return default, "截止日期格式应为 YYYY-MM-DD，已按默认日期统计。"


def sichuan() -> Unit:
    unit = queries.sichuan()
    if unit is None:
        abort(404)
    return unit


@bp.route("/agreements/")
@requires("records.view")
def index():
    year = request.args.get("year", "").strip()
    stmt = queries.visible_agreements(current_user, int(year) if is_year(year) else None)
    page = paginate(stmt.order_by(Agreement.year.desc(), Agreement.id), args={"year": year})
    counts = queries.allocation_counts([a.id for a in page.items])
    return render_template("agreements/index.html", page=page, year=year, counts=counts)


@bp.route("/agreements/<int:agreement_id>")
@requires("records.view")
def detail(agreement_id):
    """Province targets and progress, and each county's allocation (limited to the user's scope)."""
    agreement = pages.get(agreement_id)
    province = sichuan()
    cutoff, cutoff_error = _cutoff(agreement.year)
    rows = services.progress(agreement, province, cutoff)
    allocated = services.allocation_summary(agreement, province)
    indicators = services.active_indicators()
    county_targets: dict[int, dict[int, int]] = {}
    for target in agreement.targets:
        county_targets.setdefault(target.unit_id, {})[target.indicator_id] = target.value
    allocation_units = queries.allocation_units(county_targets.keys(), province, current_user)
    return render_template(
        "agreements/detail.html",
        agreement=agreement,
        province=province,
        rows=rows,
        cutoff=cutoff,
        cutoff_error=cutoff_error,
        allocated=allocated,
        indicators=indicators,
        allocation_units=allocation_units,
        county_targets=county_targets,
        history=history_of(agreement),
        money=Measure.MONEY,
        ranking=ranking.for_user(agreement, current_user, cutoff),
        unit_link=_unit_link(agreement.year),
    )


def _ranking_args(agreement):
    """The ranking page's and export's arguments: cut-off (with its error), level and sort key."""
    cutoff, cutoff_error = _cutoff(agreement.year)
    level = request.args.get("level", "county")
    return cutoff, cutoff_error, level if level in ranking.LEVELS else "county", request.args.get("sort", "behind")


@bp.route("/agreements/<int:agreement_id>/ranking")
@requires("records.view")
def ranking_page(agreement_id):
    """进度排名: a row per county (or prefecture) in the user's scope, 完成率 against 序时进度, sortable."""
    agreement = pages.get(agreement_id)
    cutoff, cutoff_error, level, sort = _ranking_args(agreement)
    result = ranking.for_user(agreement, current_user, cutoff, level)
    return render_template(
        "agreements/ranking.html", agreement=agreement, r=result, rows=result.sorted(sort), sort=sort,
        cutoff_error=cutoff_error, may_rank_prefectures=ranking.may_rank_prefectures(current_user),
        unit_link=_unit_link(agreement.year),
    )  # fmt: skip


def _unit_link(year: int):
    return lambda row: url_for("counties.detail", unit_id=row.unit_id, year=year)


@bp.route("/agreements/<int:agreement_id>/ranking.xlsx")
@requires("records.view")
def ranking_export(agreement_id):
    """The ranking as XLSX, same rows (and order) and columns as the page."""
    agreement = pages.get(agreement_id)
    cutoff, _, level, sort = _ranking_args(agreement)
    result = ranking.for_user(agreement, current_user, cutoff, level)
    headers, rows = ranking.xlsx_table(result, result.sorted(sort))
    body = xlsx_bytes(headers, rows, title="进度排名", widths=[6, 16, 16])
    return download(body, f"{agreement.title}-进度排名-截至{result.cutoff}", "xlsx")


def _programme_choices(form):
    form.programme_id.choices = [BLANK] + [
        choice(p.id, p.name) for p in db.session.scalars(sa.select(Programme).order_by(Programme.name))
    ]


pages.forms(
    AgreementForm,
    choices=_programme_choices,
    initial=lambda: {"year": date.today().year},
    create=services.create_agreement,
    update=services.update_agreement,
    created="协议已创建，请填写省级目标并分解到县。",
    saved="协议已保存。",
    # Only the province office and administrators manage agreements, and they see every programme.
    check_write=False,
)


@bp.route("/agreements/<int:agreement_id>/targets/<int:unit_id>", methods=["GET", "POST"])
@requires("agreements.manage")
def targets(agreement_id, unit_id):
    """Set the targets of the province or of one county in this agreement."""
    agreement = db.get_or_404(Agreement, agreement_id)
    unit = db.get_or_404(Unit, unit_id)
    if not services.target_unit_ok(unit):
        abort(404)
    indicators = services.active_indicators()
    current = {t.indicator_id: t.value for t in agreement.targets if t.unit_id == unit.id}
    form = target_form(indicators, current, formdata=request.form if request.method == "POST" else None)
    if form.validate_on_submit():
        values = {i.id: form[f"t{i.id}"].data for i in indicators}
        response = save(
            form,
            lambda: services.set_targets(agreement, unit, values, actor=current_user),
            f"{unit.name}的目标已保存。",
            url_for(".detail", agreement_id=agreement.id),
        )
        if response:
            return response
    counties = queries.target_units()
    return render_template(
        "agreements/targets.html", agreement=agreement, unit=unit, form=form, indicators=indicators, counties=counties
    )


@bp.route("/indicators/")
@requires("records.view")
def indicators():
    rows = queries.indicators()
    return render_template("agreements/indicators.html", rows=rows)


def _parent_choices(form, exclude=None):
    form.parent_id.choices = [choice("", "（无）")] + [
        choice(i.id, i.name) for i in queries.top_indicators() if i.id != exclude
    ]


@bp.route("/indicators/new", methods=["GET", "POST"])
@requires("indicators.manage")
def create_indicator():
    form = IndicatorForm()
    _parent_choices(form)
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.create_indicator(form.data, actor=current_user),
            "指标已添加；其完成情况按“指标完成登记”统计。",
            url_for(".indicators"),
        )
        if response:
            return response
    return render_template("agreements/indicator_form.html", form=form, indicator=None)


@bp.route("/indicators/<int:indicator_id>/edit", methods=["GET", "POST"])
@requires("indicators.manage")
def edit_indicator(indicator_id):
    indicator = db.get_or_404(Indicator, indicator_id)
    form = IndicatorForm(obj=indicator, data={"version": indicator.version_id} if request.method == "GET" else None)
    _parent_choices(form, exclude=indicator.id)
    if indicator.is_builtin:
        form.code.data, form.measure.data = indicator.code, indicator.measure
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_indicator(indicator, form.data, actor=current_user, version=form.version.data),
            "指标已保存。",
            url_for(".indicators"),
        )
        if response:
            return response
    return render_template(
        "agreements/indicator_form.html", form=form, indicator=indicator, history=history_of(indicator)
    )


@bp.route("/indicator-entries/")
@requires("records.view")
def entries():
    stmt = queries.visible_entries(current_user)
    page = paginate(stmt, args={})
    return render_template("agreements/entries.html", page=page, money=Measure.MONEY)


def _entry_choices(form):
    form.indicator_id.choices = [BLANK] + [
        choice(i.id, i.name) for i in services.active_indicators() if takes_entries(i)
    ]
    form.county_id.choices = [BLANK] + [unit_choice(u) for u in writable_counties(current_user)]
    pairings = attachable_pairings(current_user)
    form.pairing_id.choices = [BLANK] + [
        choice(
            p.id, f"{p.east_unit.name} ↔ {p.west_unit.name}（{p.valid_from} 至 {p.valid_to or '今'}）", p.programme.name
        )
        for p in pairings
    ]


@bp.route("/indicator-entries/new", methods=["GET", "POST"])
@requires("entries.manage")
def create_entry():
    form = EntryForm()
    _entry_choices(form)
    if form.validate_on_submit():
        data = dict(form.data)
        indicator = db.session.get(Indicator, data["indicator_id"])
        try:
            if indicator is not None and indicator.measure is Measure.MONEY:
                data["value"] = parse_wan(data["value"])
            else:
                text = str(data["value"])
                # ASCII digits only (int() would take ² or ١), and no more than a BIGINT holds.
                data["value"] = int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None
                if data["value"] is None:
                    raise ServiceError("数量指标的数值须为正整数。", "value")
            services.create_entry(data, actor=current_user)
        except MoneyError as exc:
            attach_error(form, ServiceError(str(exc), "value"))
        except ServiceError as exc:
            attach_error(form, exc)
        else:
            db.session.commit()
            flash("已登记。", "success")
            return redirect(url_for(".entries"))
    return render_template("agreements/entry_form.html", form=form)


@bp.route("/indicator-entries/<int:entry_id>/delete", methods=["POST"])
@requires("entries.manage")
def delete_entry(entry_id):
    entry = get_visible_or_404(IndicatorEntry, entry_id, scope_filter(current_user, IndicatorEntry))
    if not may_write(current_user, entry):
        abort(403)
    services.delete_entry(entry, actor=current_user, version=posted_version())
    db.session.commit()
    flash("已删除。", "success")
    return redirect(url_for(".entries"))


# ---- spreadsheets: targets and allocations, indicator entries ----------------------------------------------------


def _spreadsheet(kind, headers, rows, name, widths):
    filename = f"{name}-{date.today().isoformat()}"
    if kind == "csv":
        return download(csv_bytes(headers, rows), filename, "csv")
    return download(xlsx_bytes(headers, rows, title=name, widths=widths), filename, "xlsx")


@bp.route("/agreements/targets/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export_targets(kind):
    """Every target and allocation of the agreements the user sees; re-importing the file changes nothing."""
    return _spreadsheet(kind, TARGET_HEADERS, target_rows(current_user), "协议目标", [6, 20, 10, 16, 28, 14])


pages.importing(
    steps=import_targets_steps,
    columns=target_columns,
    rules=TARGET_RULES,
    title="导入协议目标与分解",
    label="协议目标",
    path="/targets",
    endpoints=("targets_template", "import_targets"),
)


@bp.route("/indicator-entries/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export_entries(kind):
    """The indicator entries the user sees; re-importing the file adds nothing."""
    widths = [24, 10, 12, 16, 11, 12, 24, 20, 30]
    return _spreadsheet(kind, ENTRY_HEADERS, entry_rows(current_user), "指标完成登记", widths)


pages.importing(
    steps=import_entries_steps,
    columns=entry_columns,
    rules=ENTRY_RULES,
    title="导入指标完成登记",
    label="指标完成登记",
    back_label="指标完成登记",
    root="/indicator-entries",
    endpoints=("entries_template", "import_entries"),
    permission="entries.manage",
    back=".entries",
)
