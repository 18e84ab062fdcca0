"""Asset pages: the county 总账 (list, totals by class and owner level), the township/village 明细台账, the
re-pairing view, the asset page with its state changes and 管护 checks, the register form, spreadsheets."""

from datetime import date

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry import permissions
from registry.assets import commands, queries, services, todos  # noqa: F401 - todos registers its source
from registry.assets.forms import AssetForm, CheckForm, ConfirmForm, StateForm
from registry.assets.models import Asset, AssetClass, AssetSource, AssetState, OwnerLevel
from registry.assets.transfer import HEADERS, IMPORT_RULES, columns, export_rows, import_assets_steps
from registry.counties.models import Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.forms import choice, unit_choice
from registry.kernel.money import yuan
from registry.kernel.pages import StreamPages
from registry.kernel.services import facts
from registry.kernel.web import is_id, save, sort_clause
from registry.kernel.workflow import post_step
from registry.pairings.models import Programme
from registry.permissions import (
    can,
    may_write,
    requires,
    scope_filter,
    visible_divisions,
    writable_counties,
)

bp = Blueprint("assets", __name__, url_prefix="/assets", cli_group="assets")
pages = StreamPages(bp, gate=permissions, model=Asset, name="asset", label="项目资产", edit="projects.edit")


def _places(county_ids) -> list[Unit]:
    return db.session.scalars(
        db.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.county_id.in_(county_ids), Unit.kind.in_((UnitKind.TOWNSHIP, UnitKind.VILLAGE)))
        .order_by(Unit.name)
    ).all()


def _filters_context(args):
    counties = visible_divisions(current_user, UnitKind.COUNTY)
    townships = []
    if is_id(args.get("county")):
        townships = [u for u in _places([int(args["county"])]) if u.kind is UnitKind.TOWNSHIP]
    return {
        "counties": counties, "townships": townships, "classes": AssetClass, "levels": OwnerLevel,
        "states": AssetState, "programmes": db.session.scalars(db.select(Programme).order_by(Programme.id)).all(),
    }  # fmt: skip


def _checks_of(assets) -> dict:
    """Each listed asset's last 管护 check and whether it is overdue (read for the page's rows only)."""
    ids = [a.id for a in assets]
    overdue = set(db.session.scalars(queries.overdue(db.select(Asset.id).where(Asset.id.in_(ids)), date.today())))
    return {"last": queries.last_check_dates(ids), "overdue": overdue if ids else set()}


# The 总账: the filtered register with totals by class and owner level (万元).
pages.listing(
    filters=queries.FILTER_KEYS,
    query=queries.filtered,
    sorting=lambda: sort_clause(
        {
            "number": (Asset.number, Asset.id),
            "value": (Asset.original_value_fen, Asset.id),
            "completed": (Asset.completed_on, Asset.id),
        },
        "number",
    ),  # fmt: skip
    header=lambda args, stmt: (None, {"totals": queries.totals(stmt), **_filters_context(args)}),
    load=(joinedload(Asset.county),),
    rows=_checks_of,
)
pages.export(headers=HEADERS, rows=export_rows)


@bp.route("/ledger")
@requires("records.view")
def ledger():
    """The 明细台账 of a county's townships and villages (or of one township), with subtotals."""
    args = pages.args()
    stmt = queries.filtered(args, current_user).options(joinedload(Asset.county))
    return render_template(
        "assets/ledger.html", groups=queries.ledger(stmt), totals=queries.totals(queries.filtered(args, current_user)),
        args=args, **_filters_context(args),
    )  # fmt: skip


@bp.route("/repaired")
@requires("records.view")
def repaired():
    """Assets of programmes that ended (粤川, after the 2021 re-pairing) and who looks after their county now."""
    return render_template("assets/repaired.html", rows=queries.repaired(current_user))


def _detail(asset) -> dict:
    """The asset page beyond the record and its history: its source projects, the forms of its steps, its checks."""
    projects = {f["id"]: f for f in facts("project", ids=[s.project_id for s in asset.sources])}
    state_form = _state_choices(
        StateForm(formdata=None, data={"changed_on": date.today(), "version": asset.version_id}), asset
    )
    is_overdue = db.session.scalar(
        queries.overdue(db.select(Asset.id).where(Asset.id == asset.id), date.today())
    ) is not None  # fmt: skip
    return {
        "projects": projects, "state_form": state_form,
        "check_form": CheckForm(formdata=None, data={"checked_on": date.today()}),
        "confirm_form": ConfirmForm(formdata=None, data={"version": asset.version_id}), "is_overdue": is_overdue,
        "last": queries.last_check_dates([asset.id]).get(asset.id),
        "may_edit": can(current_user, "projects.edit") and may_write(current_user, asset),
    }  # fmt: skip


pages.detail(_detail)
pages.importing(steps=import_assets_steps, columns=columns, title="导入项目资产", rules=IMPORT_RULES)


def _state_choices(form, asset):
    """The states an asset may change to: every one but its current state."""
    form.to_state.choices = [choice(s.value, s.label) for s in AssetState if s is not asset.state]
    return form


def _choices(form, county_ids):
    places = _places(county_ids)
    form.township_id.choices = [choice("", "（不指定）")] + [unit_choice(u) for u in places
                                                               if u.kind is UnitKind.TOWNSHIP]  # fmt: skip
    form.village_id.choices = [choice("", "（不指定）")] + [unit_choice(u) for u in places
                                                              if u.kind is UnitKind.VILLAGE]  # fmt: skip


def _data(form) -> dict:
    data = dict(form.data)
    data["sources"] = services.parse_sources(form.sources.data)
    return data


def _prefilled_form():
    """A new asset's form, prefilled from ``?project=`` (a project the user may see) when given."""
    project_id = request.args.get("project", "")
    if request.method != "GET" or not is_id(project_id):
        return AssetForm(), None
    found = facts("project", ids=[int(project_id)])
    visible = {c.id for c in writable_counties(current_user)}
    if not found or found[0]["county_id"] not in visible:
        abort(404)
    project = found[0]
    values = services.prefill(project)
    code, east, other = values.pop("sources")[0]
    values["sources"] = f"{code}:{yuan(east).replace(',', '')}:{yuan(other).replace(',', '')}"
    return AssetForm(data=values), project


@bp.route("/new", methods=["GET", "POST"])
@requires("projects.edit")
def create():
    form, project = _prefilled_form()
    _choices(form, [c.id for c in writable_counties(current_user)])
    if form.validate_on_submit():
        response = save(
            form, lambda: services.create_asset(_data(form), actor=current_user),
            lambda asset: f"资产 {asset.number} 已登记。", lambda asset: url_for(".detail", asset_id=asset.id),
        )  # fmt: skip
        if response:
            return response
    return render_template("assets/form.html", form=form, asset=None, project=project)


@bp.route("/<int:asset_id>/edit", methods=["GET", "POST"])
@requires("projects.edit")
def edit(asset_id):
    asset = pages.get(asset_id)
    if not may_write(current_user, asset):
        abort(403)
    if request.method == "GET":
        form = AssetForm(obj=asset, data={"version": asset.version_id})
        form.sources.data = services.sources_text(asset)
    else:
        # Not bound to the record: a field left out of the post is blank (refused if required), never the record's
        # own value (its ``sources`` are rows, the form's are text).
        form = AssetForm()
    _choices(form, [asset.county_id])
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_asset(asset, _data(form), actor=current_user, version=form.version.data),
            "资产已保存。", url_for(".detail", asset_id=asset.id),
        )  # fmt: skip
        if response:
            return response
    return render_template("assets/form.html", form=form, asset=asset, project=None)


def _post(asset_id, form_class, call, success, anchor=""):
    asset = pages.get(asset_id)
    form = form_class()
    if form_class is StateForm:
        _state_choices(form, asset)
    target = url_for(".detail", asset_id=asset.id) + anchor
    return post_step(form, lambda: call(asset, form), lambda _: success(asset), target, invalid="未保存：")


@bp.route("/<int:asset_id>/state", methods=["POST"])
@requires("projects.edit")
def change_state(asset_id):
    return _post(
        asset_id, StateForm,
        lambda asset, form: services.change_state(asset, form.data, actor=current_user, version=form.version.data),
        lambda asset: f"资产状态已变更为“{asset.state.label}”。", "#state",
    )  # fmt: skip


@bp.route("/<int:asset_id>/checks", methods=["POST"])
@requires("projects.edit")
def add_check(asset_id):
    return _post(
        asset_id, CheckForm, lambda asset, form: services.add_check(asset, form.data, actor=current_user),
        lambda asset: "管护检查已登记。", "#checks",
    )  # fmt: skip


@bp.route("/<int:asset_id>/confirm", methods=["POST"])
@requires("projects.edit")
def confirm(asset_id):
    return _post(
        asset_id, ConfirmForm,
        lambda asset, form: services.confirm_asset(asset, actor=current_user, version=form.version.data),
        lambda asset: f"资产 {asset.number} 已核实。",
    )  # fmt: skip


@bp.app_template_global()
def project_assets(project_id: int) -> list[Asset]:
    """The assets formed from a project, as its page lists them (those the viewer may see)."""
    return db.session.scalars(
        db.select(Asset)
        .join(AssetSource, AssetSource.asset_id == Asset.id)
        .where(AssetSource.project_id == project_id, scope_filter(current_user, Asset))
        .order_by(Asset.number)
    ).all()


commands.register(bp)
