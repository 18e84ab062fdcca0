"""Staff pages of disclosure notices: the list, drafting from the records (the draft's page is its preview),
publishing, withdrawing, postings, complaints and answers, and the compliance table of a county's year."""

from datetime import date, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from registry import permissions
from registry.counties.models import Unit, UnitKind
from registry.disclosure import documents, queries, services
from registry.disclosure.forms import AnswerForm, ComplaintForm, NoticeForm, PostingForm, PublishForm, WithdrawForm
from registry.disclosure.models import Complaint, Notice, NoticeState, NoticeType
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.pages import StreamPages
from registry.kernel.web import is_id, is_year, save
from registry.kernel.workflow import post_step
from registry.permissions import can, requires, visible_divisions, writable_counties

bp = Blueprint("disclosure", __name__, url_prefix="/disclosure")
pages = StreamPages(bp, gate=permissions, model=Notice, name="notice", label="公告公示", edit="disclosure.manage")

FILTER_KEYS = ("county", "year", "state", "type", "q")


# The notices in the user's scope, newest first (the query's own order).
pages.listing(
    filters=FILTER_KEYS,
    query=queries.staff_notices,
    header=lambda args, stmt: (None, {
        "counties": visible_divisions(current_user, UnitKind.COUNTY), "states": NoticeState, "types": NoticeType,
    }),
)  # fmt: skip


@bp.route("/new", methods=["GET", "POST"])
@requires("disclosure.manage")
def create():
    today = date.today()
    defaults = {"year": today.year, "window_start": today, "window_end": today + timedelta(days=9)}
    counties = writable_counties(current_user)
    if len(counties) == 1:  # a county office drafts its own county's notices
        defaults["county_id"] = counties[0].id
    form = NoticeForm(data=defaults if request.method == "GET" else None)
    form.county_id.choices = [BLANK] + [unit_choice(u) for u in counties]
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.create_notice(form.data, actor=current_user),
            "公告草稿已生成，请核对下面的预览后发布。",
            lambda notice: url_for(".detail", notice_id=notice.id),
        )
        if response:
            return response
    return render_template("disclosure/form.html", form=form)


def _notice(notice_id) -> Notice:
    return pages.get(notice_id)


def _detail(notice) -> dict:
    """A notice's page beyond the record and its history: its text as published (a draft's preview), the forms of
    publishing, withdrawing, postings and complaints."""
    snap = services.preview(notice)
    return {
        "h": documents.header(snap),
        "t": documents.table(snap),
        "may_manage": can(current_user, "disclosure.manage"),
        "publish_form": PublishForm(formdata=None, data={"version": notice.version_id}),
        "withdraw_form": WithdrawForm(formdata=None, data={"version": notice.version_id}),
        "posting_form": PostingForm(
            formdata=None, data={"posted_on": min(max(date.today(), notice.window_start), notice.window_end)}
        ),
        "complaint_form": ComplaintForm(formdata=None, data={"received_on": date.today()}),
        "answer_forms": {
            c.id: AnswerForm(
                formdata=None, data={"complaint_id": c.id, "answered_on": date.today(), "version": c.version_id}
            )
            for c in notice.complaints
            if c.is_open
        },
        "posted_days": queries.posted_days(notice),
    }


pages.detail(_detail)


def _step(form, call, success: str, notice: Notice):
    """Validate a form posted from the notice's page, run the service, commit once; a refusal is flashed."""
    return post_step(form, call, success, url_for(".detail", notice_id=notice.id))


@bp.route("/<int:notice_id>/publish", methods=["POST"])
@requires("disclosure.manage")
def publish(notice_id):
    notice = _notice(notice_id)
    form = PublishForm()
    return _step(
        form,
        lambda: services.publish(notice, actor=current_user, version=form.version.data),
        "公告已发布，公开页面和 PDF 已生成；其内容不再随记录变化。",
        notice,
    )


@bp.route("/<int:notice_id>/withdraw", methods=["POST"])
@requires("disclosure.manage")
def withdraw(notice_id):
    notice = _notice(notice_id)
    form = WithdrawForm()
    return _step(
        form,
        lambda: services.withdraw(notice, form.reason.data, actor=current_user, version=form.version.data),
        "公告已撤回，公开页面只显示撤回说明。",
        notice,
    )


@bp.route("/<int:notice_id>/postings", methods=["POST"])
@requires("disclosure.manage")
def add_posting(notice_id):
    notice = _notice(notice_id)
    form = PostingForm()
    return _step(form, lambda: services.add_posting(notice, form.data, actor=current_user), "张贴情况已登记。", notice)


@bp.route("/<int:notice_id>/complaints", methods=["POST"])
@requires("disclosure.manage")
def add_complaint(notice_id):
    notice = _notice(notice_id)
    form = ComplaintForm()
    return _step(
        form, lambda: services.add_complaint(notice, form.data, actor=current_user), "投诉反映已登记。", notice
    )


@bp.route("/<int:notice_id>/answer", methods=["POST"])
@requires("disclosure.manage")
def answer_complaint(notice_id):
    notice = _notice(notice_id)
    form = AnswerForm()
    complaint_id = form.complaint_id.data if form.complaint_id.validate(form) else None
    complaint = db.session.get(Complaint, complaint_id) if complaint_id else None
    if complaint is None or complaint.notice_id != notice.id:
        flash("该投诉记录不存在，请刷新页面后重试。", "danger")
        return redirect(url_for(".detail", notice_id=notice.id))
    return _step(
        form,
        lambda: services.answer_complaint(complaint, form.data, actor=current_user, version=form.version.data),
        "答复已登记。",
        notice,
    )


@bp.route("/compliance")
@requires("records.view")
def compliance():
    counties = visible_divisions(current_user, UnitKind.COUNTY)
    county_arg, year_arg = request.args.get("county", ""), request.args.get("year", "")
    year = int(year_arg) if is_year(year_arg) else date.today().year
    county = None
    if is_id(county_arg):
        county = next((c for c in counties if c.id == int(county_arg)), None)
        if county is None:
            abort(404)
    elif len(counties) == 1:
        county = counties[0]
    table = queries.compliance(county, year, current_user, date.today()) if county is not None else None
    return render_template(
        "disclosure/compliance.html", counties=counties, county=county, year=year, table=table, unit=Unit
    )
