"""Who may do what (role permissions) and see which records (scope). The only place access rules live.

Every list, detail page, export and report asks this module for its filter: ``pairing_filter(user)``,
``unit_filter(user)`` and ``record_filter(user, county_col, pairing_col)`` for records of later modules.
A record outside the user's scope is reported as missing (404), never as forbidden, so its existence leaks nothing.
"""

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from flask import abort
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.counties.models import DIVISION_KINDS, Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import overlaps
from registry.kernel.quarter_locks import lock_message, locked_quarter
from registry.kernel.roles import Role
from registry.kernel.scoping import RecordScope
from registry.kernel.services import ServiceError
from registry.kernel.versions import touch
from registry.pairings.models import Pairing, Programme

ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.PROVINCE, Role.PREFECTURE, Role.COUNTY})

#: permission -> roles holding it
PERMISSIONS = {
    "records.view": ALL_ROLES,
    "pairings.manage": STAFF,
    "units.manage": STAFF | {Role.LIAISON},
    "projects.edit": STAFF | {Role.LIAISON},
    "entries.manage": STAFF | {Role.LIAISON},
    "agreements.manage": frozenset({Role.ADMIN, Role.PROVINCE}),
    "placements.edit": STAFF | {Role.LIAISON},
    "purchases.edit": STAFF | {Role.LIAISON},
    "exchanges.edit": STAFF | {Role.LIAISON},
    "channels.manage": frozenset({Role.ADMIN}),
    #: Writing the narrative (亮点/问题/下步打算) of a quarterly report: Sichuan office staff, within scope.
    "reports.narrate": frozenset({Role.PROVINCE, Role.PREFECTURE, Role.COUNTY}),
    #: Seeing identity numbers in full (each view audited); everyone else sees them masked.
    "idnumbers.view": frozenset({Role.PROVINCE, Role.PREFECTURE, Role.COUNTY}),
    "indicators.manage": frozenset({Role.ADMIN}),
    "units.categorise": frozenset({Role.ADMIN}),
    "programmes.manage": frozenset({Role.ADMIN}),
    "users.manage": frozenset({Role.ADMIN}),
    "audit.view": frozenset({Role.ADMIN}),
    #: Disclosure notices (公告公示): drafting, publishing, withdrawing, postings and complaints, within scope. The
    #: county office issues its own ("谁分配、谁使用、谁公开"); East liaisons and readers do not.
    "disclosure.manage": STAFF,
}

#: Pairing levels each staff role may create or change (within its scope).
PAIRING_LEVELS = {
    Role.ADMIN: frozenset(UnitKind),
    Role.PROVINCE: frozenset(UnitKind),
    Role.PREFECTURE: frozenset(UnitKind) - {UnitKind.PROVINCE, UnitKind.PREFECTURE},
    Role.COUNTY: frozenset(UnitKind) - set(DIVISION_KINDS),
}

#: Roles that must have a scope unit, and the side and kinds it may be.
SCOPE_RULES = {
    Role.PREFECTURE: (Side.WEST, {UnitKind.PREFECTURE}),
    Role.COUNTY: (Side.WEST, {UnitKind.COUNTY}),
    Role.LIAISON: (
        Side.EAST,
        {UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY},
    ),
}


def can(user, permission: str) -> bool:
    """True if the user's role holds ``permission``."""
    return bool(user and user.is_authenticated and user.role in PERMISSIONS[permission])


def public(view):
    """Mark a view as reachable without logging in (every other view requires a login)."""
    view.is_public = True
    return view


def requires(permission: str):
    """View decorator: 403 unless the current user holds ``permission``."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not can(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.permission = permission
        return wrapped

    return decorator


@dataclass(frozen=True)
class Scope:
    """What part of the registry a user sees: everything, or the units within one root unit on one side."""

    root_id: int | None = None
    root_kind: UnitKind | None = None
    side: Side | None = None

    @property
    def is_all(self) -> bool:
        return self.root_id is None

    def units_within(self):
        """SELECT of the ids of every unit inside the root (the root included)."""
        column = {
            UnitKind.PROVINCE: Unit.province_id,
            UnitKind.PREFECTURE: Unit.prefecture_id,
            UnitKind.COUNTY: Unit.county_id,
        }.get(self.root_kind, Unit.id)
        return sa.select(Unit.id).where(column == self.root_id)


def scope_of(user) -> Scope:
    """The user's scope; administrators, the province office and unscoped readers see everything."""
    unit = user.scope_unit if user.role is not Role.ADMIN and user.role is not Role.PROVINCE else None
    if unit is None:
        return Scope()
    return Scope(root_id=unit.id, root_kind=unit.kind, side=unit.side)


def pairing_filter(user, pairing_cls=None):
    """WHERE clause limiting pairings to the user's scope."""
    pairing_cls = pairing_cls or Pairing
    scope = scope_of(user)
    if scope.is_all:
        return sa.true()
    column = pairing_cls.west_unit_id if scope.side is Side.WEST else pairing_cls.east_unit_id
    return column.in_(scope.units_within())


def visible_pairing_ids(user):
    """SELECT of the ids of the pairings the user sees."""
    return sa.select(Pairing.id).where(pairing_filter(user))


def unit_filter(user):
    """WHERE clause limiting units: those within the scope, and their partners in visible pairings."""
    scope = scope_of(user)
    if scope.is_all:
        return sa.true()
    partner_column = Pairing.east_unit_id if scope.side is Side.WEST else Pairing.west_unit_id
    partners = sa.select(partner_column).where(pairing_filter(user))
    return sa.or_(Unit.id.in_(scope.units_within()), Unit.id.in_(partners))


def unit_in_scope(user, unit) -> bool:
    """True if ``unit`` lies within the user's own scope (not merely visible as a partner)."""
    scope = scope_of(user)
    if scope.is_all:
        return True
    return scope.root_id in {
        unit.id,
        unit.province_id,
        unit.prefecture_id,
        unit.county_id,
    }


def record_filter(user, county_col, pairing_col=None):
    """WHERE clause for records located in a Sichuan unit and (optionally) attached to a pairing.

    Sichuan staff see records located within their prefecture or county; liaisons see records attached to
    pairings of their East province or city; everyone else sees all.
    """
    scope = scope_of(user)
    if scope.is_all:
        return sa.true()
    if scope.side is Side.WEST:
        return county_col.in_(scope.units_within())
    if pairing_col is None:
        return sa.false()
    return pairing_col.in_(visible_pairing_ids(user))


def declared_scope(model) -> RecordScope:
    """The ``RecordScope`` a scoped model declares (``__scope__``)."""
    scope = getattr(model, "__scope__", None)
    if scope is None:
        raise TypeError(f"{model.__name__} declares no __scope__")
    return scope


def scope_filter(user, model):
    """WHERE clause limiting ``model`` (any class declaring ``__scope__``, or a derived table declaring the same
    columns) to the records ``user`` may see: the one read rule for lists, pages, exports and reports."""
    scope = declared_scope(model)
    pairing = getattr(model, scope.pairing) if scope.pairing else None
    return record_filter(user, getattr(model, scope.county), pairing)


class OutOfScope(ServiceError):
    """A write the gate refuses: the record (as it is, or as it would be) lies outside the user's scope."""


class WriteScope:
    """What one user may write, loaded once (an import asks it for every row): all, a set of Sichuan counties,
    or (East liaisons) a set of pairings."""

    def __init__(self, user):
        self.user = user
        self.scope = scope_of(user) if user is not None else Scope()
        self._counties = None
        self._pairings = None

    @property
    def counties(self) -> set[int]:
        """Ids of the Sichuan units within a Sichuan office's scope."""
        if self._counties is None:
            self._counties = set(db.session.scalars(self.scope.units_within()))
        return self._counties

    @property
    def pairings(self) -> set[int]:
        """Ids of the pairings of a liaison's East province or city."""
        if self._pairings is None:
            self._pairings = set(db.session.scalars(visible_pairing_ids(self.user)))
        return self._pairings

    def allows(self, county_id, pairing_id) -> bool:
        if self.scope.is_all:
            return True
        if self.scope.side is Side.WEST:
            return county_id in self.counties
        return pairing_id is not None and pairing_id in self.pairings

    def allows_county(self, county_id) -> bool:
        """May the user place records in this county at all (for a liaison: some pairing of theirs has it)?"""
        if self.scope.is_all or self.scope.side is Side.WEST:
            return self.allows(county_id, None)
        paired = sa.select(Pairing.id).where(Pairing.west_unit_id == county_id, Pairing.id.in_(self.pairings))
        return bool(self.pairings) and db.session.scalar(paired.limit(1)) is not None


def _reader(record):
    """Reads a field of a model instance or of a mapping of its new values (None when absent)."""
    return record.get if isinstance(record, Mapping) else functools.partial(getattr, record)


def _values(record, scope: RecordScope) -> tuple:
    """(county id, pairing id) of a model instance or of a mapping of its new values."""
    if record is None:
        return None
    get = _reader(record)
    return get(scope.county, None), get(scope.pairing, None) if scope.pairing else None


def authorize_write(user, model, after=None, *, before=None, cache: dict | None = None) -> None:
    """The one write gate: may ``user`` write a ``model`` record that is ``before`` (an instance, None for a new
    record) and will be ``after`` (the instance or a mapping of its new values, None for a delete)?

    Both states must lie in the user's write scope: a record may not be created in, moved into or taken out of
    another office's or province's scope. Every service that creates, changes or deletes a scoped record calls
    this, so forms, imports, status changes and the command line all answer to it. ``user`` None is the system
    (migrations, the demo loader), which may write everything. ``cache`` (an import's) keeps the user's write
    scope between calls, so a 100,000-row import loads it once.

    Then neither state may lie in a quarter the province has approved and locked (``quarter_locks``): that
    holds for everyone, the system included, since the approved figures must stay what was approved.

    :raise OutOfScope: naming the field and, for a liaison, the pairing the record would belong to.
    :raise QuarterLockedError: naming the locked quarter and how to ask for an unlock.
    """
    if user is not None:
        _authorize_scope(user, model, after, before=before, cache=cache)
    scope = declared_scope(model)
    check_quarter_lock(scope, after, before=before, cache=cache)
    # Cached figures of both counties (and of the units above them) are now out of date (``registry.kernel.versions``).
    touch(*(_values(state, scope)[0] for state in (before, after) if state is not None))


def authorize_step(user, model, record, *days, field: str | None = None, cache: dict | None = None) -> None:
    """The write gate for a step taken on an existing record that leaves its own particulars as they are and is
    dated by its own days, not by the record's date (a problem's progress entry and sign-offs: a problem found in
    a locked quarter is still worked on in later ones).

    The record must lie in the user's write scope, as for ``authorize_write``; then each of ``days`` (the step's
    date, the day it is taken) must lie in a quarter left open for the record's county. The record's own date
    (``RecordScope.date``) is not asked: writes of the record itself go through ``authorize_write``.

    :raise OutOfScope: as ``authorize_write``.
    :raise QuarterLockedError: naming the locked quarter of a day, at ``field``.
    """
    if user is not None:
        _authorize_scope(user, model, record, before=record, cache=cache)
    county_id = _values(record, declared_scope(model))[0]
    for day in days:
        check_locked_date(county_id, day, cache=cache, field=field)
    touch(county_id)


def _authorize_scope(user, model, after, *, before, cache) -> None:
    scope = declared_scope(model)
    if scope.write and not can(user, scope.write):
        raise OutOfScope(f"您的角色不能登记或修改{scope.noun}。")
    if cache is None:
        ws = WriteScope(user)
    elif "write_scope" in cache:
        ws = cache["write_scope"]
    else:
        ws = cache["write_scope"] = WriteScope(user)  # once per import, not once per row as setdefault would
    if before is not None and not ws.allows(*_values(before, scope)):
        raise OutOfScope(f"该{scope.noun}不在您的管辖范围内，不能修改。")
    if after is None:
        return
    county_id, pairing_id = _values(after, scope)
    if ws.allows(county_id, pairing_id):
        return
    if ws.scope.side is not Side.EAST:
        county = db.session.get(Unit, county_id) if county_id else None
        name = county.name if county is not None else "所选县"
        raise OutOfScope(f"{name}不在您的管辖范围内，不能在该县登记{scope.noun}。", scope.county)
    raise OutOfScope(_pairing_refusal(scope, pairing_id), scope.pairing_field)


def _pairing_refusal(scope: RecordScope, pairing_id) -> str:
    """ "该记录按户籍县和开始日期归入 佛山市顺德区 ↔ 昭觉县 的结对，不在您的管辖范围内": the pairing is named, since the
    writer chose the county and the date it follows from (a pairing's existence is no secret; its records are)."""
    rule = scope.pairing_rule or "所选结对关系"
    pairing = db.session.get(Pairing, pairing_id) if pairing_id else None
    if pairing is None:
        return f"该{scope.noun}{rule}不属于任何结对关系，不在您的管辖范围内。"
    names = f"{pairing.east_unit.display_name} ↔ {pairing.west_unit.name}"
    return f"该{scope.noun}{rule}归入 {names} 的结对，不在您的管辖范围内。"


def visible_by_id(user, model, ids) -> dict:
    """{id: record} of the ``model`` records with these ids that ``user`` may see (the others are simply absent)."""
    ids, found = list(ids), {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        found.update(
            (r.id, r)
            for r in db.session.scalars(sa.select(model).where(model.id.in_(chunk), scope_filter(user, model)))
        )
    return found


def may_see(user, record) -> bool:
    """May ``user`` see this record (its declared scope)? For messages that would otherwise reveal its details."""
    model = type(record)
    return db.session.scalar(sa.select(model.id).where(model.id == record.id, scope_filter(user, model))) is not None


def may_write(user, record) -> bool:
    """May ``user`` change this existing record (pages offer the edit only then)?"""
    scope = declared_scope(type(record))
    if scope.write and not can(user, scope.write):
        return False
    return WriteScope(user).allows(*_values(record, scope))


def visible_divisions(user, kind: UnitKind, side: Side = Side.WEST) -> list:
    """The divisions of one kind and side ``user`` sees (list filters' choices), parents loaded, in code order."""
    stmt = (
        sa.select(Unit).options(joinedload(Unit.parent)).where(Unit.kind == kind, Unit.side == side, unit_filter(user))
    )
    return db.session.scalars(stmt.order_by(Unit.code)).all()


def visible_partners(user) -> list:
    """The East units of the pairings ``user`` sees, parents loaded, in code order."""
    east = sa.select(Pairing.east_unit_id).where(pairing_filter(user))
    stmt = sa.select(Unit).options(joinedload(Unit.parent)).where(Unit.id.in_(east)).order_by(Unit.code)
    return db.session.scalars(stmt).all()


def writable_counties(user) -> list:
    """The Sichuan counties ``user`` may place records in, parents loaded, in code order (form choices)."""
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST, unit_filter(user))
        .order_by(Unit.code)
    )
    ws = WriteScope(user)
    return [u for u in db.session.scalars(stmt) if ws.allows_county(u.id)]


def own_programmes(user) -> sa.Select | None:
    """SELECT of the programme ids an East liaison works in (their province's and general ones); None for all."""
    scope = scope_of(user)
    if scope.is_all or scope.side is Side.WEST:
        return None
    root = db.session.get(Unit, scope.root_id)
    province_id = root.province_id or root.id
    return sa.select(Programme.id).where(
        sa.or_(Programme.east_province_id == province_id, Programme.east_province_id.is_(None))
    )


def programme_filter(user, programme_col):
    """WHERE clause on a record of a whole programme (an agreement): East liaisons see their own province's
    programmes and general ones; everyone else sees all."""
    own = own_programmes(user)
    return sa.true() if own is None else programme_col.in_(own)


def get_visible_or_404(model, ident, where=None, *, user=None):
    """Load ``model`` by primary key only if the user may see it (its declared scope, or ``where``); 404 otherwise."""
    if where is None:
        where = scope_filter(user if user is not None else current_user, model)
    obj = db.session.scalar(sa.select(model).where(model.id == ident, where))
    if obj is None:
        abort(404)
    return obj


def can_manage_pairing(user, *, level, west_unit, east_unit=None) -> bool:
    """May ``user`` create or change a pairing of this level with this Sichuan (and East) unit?"""
    if not can(user, "pairings.manage") or level not in PAIRING_LEVELS.get(user.role, ()):
        return False
    return west_unit is not None and unit_in_scope(user, west_unit)


def can_manage_unit(user, parent) -> bool:
    """May ``user`` add or change an organisation located under ``parent``?"""
    return can(user, "units.manage") and parent is not None and unit_in_scope(user, parent)


def report_pairings(user) -> sa.Select | None:
    """SELECT of the pairings whose records an East liaison's reports count (their own); None for everyone else,
    whose reports count every record of the units they may see (``report_visible``)."""
    scope = scope_of(user)
    if scope.is_all or scope.side is Side.WEST:
        return None
    return visible_pairing_ids(user)


def report_scope_label(user) -> str:
    """Says on a report whose pairings it is limited to ("宁波市的结对关系"); empty when it is not limited."""
    return "" if report_pairings(user) is None else f"{user.scope_unit.name}的结对关系"


def report_visible(user, unit, period) -> bool:
    """May ``user`` see the quarterly figures of this Sichuan county, prefecture or the province?

    Sichuan staff and readers: units within their scope. East liaisons: a unit with one of their pairings
    (its own, or a county's or prefecture's within it) valid during the period — they get only their pairings'
    reports.
    """

    if unit is None or unit.side is not Side.WEST or unit.kind not in DIVISION_KINDS:
        return False
    scope = scope_of(user)
    if scope.is_all or scope.side is Side.WEST:
        return unit_in_scope(user, unit)
    within = {UnitKind.PROVINCE: Unit.province_id, UnitKind.PREFECTURE: Unit.prefecture_id}.get(unit.kind, Unit.id)
    paired = sa.select(Pairing.id).where(
        Pairing.west_unit_id.in_(sa.select(Unit.id).where(sa.or_(within == unit.id, Unit.id == unit.id))),
        overlaps(Pairing.valid_from, Pairing.valid_to, period.start, period.end),
        pairing_filter(user),
    )
    return db.session.scalar(paired.limit(1)) is not None


# ---- locked quarters (the write gate's second question) --------------------------------------------------------


class QuarterLockedError(ServiceError):
    """A write the gate refuses because the record (as it is, or as it would be) lies in a locked quarter."""


def _placed(record, scope: RecordScope) -> list[tuple]:
    """(county id, date, field) of each date that places a record (an instance or a mapping of its new values) in a
    quarter: the date it counts from and, if it has one, the date it stops counting."""
    get = _reader(record)
    fields = [scope.date, scope.end_date] if scope.end_date else [scope.date]
    return [(get(scope.county, None), get(name, None), name) for name in fields]


def check_quarter_lock(scope: RecordScope, after=None, *, before=None, cache: dict | None = None) -> None:
    """Refuse a write whose record lies, before or after it, in a quarter locked for its county. A record type
    without a date (``RecordScope.date`` empty) is checked by its service through ``check_locked_date``."""
    if not scope.date:
        return
    for state in (before, after):
        if state is not None:
            for county_id, day, field in _placed(state, scope):
                check_locked_date(county_id, day, cache=cache, field=field)


def check_locked_date(county_id, day, *, cache: dict | None = None, field: str | None = None) -> None:
    """:raise QuarterLockedError: when ``day`` lies in a quarter the province has locked for the county."""
    quarter = locked_quarter(county_id, day, cache)
    if quarter is not None:
        raise QuarterLockedError(lock_message(quarter), field)


# ---- closing a quarter: who takes each step of a quarterly report ------------------------------------------------

PERMISSIONS.update(
    {
        #: 填报/提交: a county office its county, a prefecture office its prefecture, the province office its own.
        "reports.submit": frozenset({Role.PROVINCE, Role.PREFECTURE, Role.COUNTY}),
        #: 审核 (通过 or 退回): a prefecture office its counties' reports.
        "reports.review": frozenset({Role.PREFECTURE}),
        #: 审定 and the decision on unlock requests: the province office only (never an administrator).
        "reports.approve": frozenset({Role.PROVINCE}),
        #: 确认 or 提出异议 (双台账): an East liaison, for the figures of their own pairings.
        "reports.confirm": frozenset({Role.LIAISON}),
        #: Answering an East partner's dispute, and asking for an unlock: the Sichuan offices below the province.
        "reports.answer": frozenset({Role.PREFECTURE, Role.COUNTY}),
        "reports.unlock": frozenset({Role.PREFECTURE, Role.COUNTY, Role.PROVINCE}),
    }
)


def can_submit_report(user, unit) -> bool:
    """A unit submits its own report: county staff their county, prefecture staff their prefecture, the province
    office the province's."""
    if not can(user, "reports.submit") or unit is None or unit.side is not Side.WEST:
        return False
    own = {Role.COUNTY: UnitKind.COUNTY, Role.PREFECTURE: UnitKind.PREFECTURE, Role.PROVINCE: UnitKind.PROVINCE}
    if unit.kind is not own[user.role]:
        return False
    return user.role is Role.PROVINCE or unit_in_scope(user, unit)


def can_review_report(user, unit) -> bool:
    """A prefecture office reviews (审核) the reports of the counties within it."""
    return (
        can(user, "reports.review")
        and unit is not None
        and unit.kind is UnitKind.COUNTY
        and unit.side is Side.WEST
        and unit_in_scope(user, unit)
    )


def can_approve_report(user, unit) -> bool:
    """The province office approves (审定) every report and decides unlock requests; administrators cannot."""
    return can(user, "reports.approve") and unit is not None and unit.side is Side.WEST


def can_answer_dispute(user, unit) -> bool:
    """The county's own office or its prefecture answers an East partner's dispute about a county's figures."""
    return can(user, "reports.answer") and unit is not None and unit_in_scope(user, unit)


def can_request_unlock(user, unit) -> bool:
    """Who may submit a unit's report may ask to reopen it; so may a prefecture office for its counties."""
    return can(user, "reports.unlock") and (can_submit_report(user, unit) or can_review_report(user, unit))


def confirmable_pairings(user, unit, period) -> list:
    """The pairings of a county valid during ``period`` whose East partner the liaison ``user`` speaks for: the
    ones they 确认 or dispute (双台账). Empty for everyone but a liaison."""
    if not can(user, "reports.confirm") or unit is None or unit.kind is not UnitKind.COUNTY:
        return []
    stmt = (
        sa.select(Pairing)
        .options(joinedload(Pairing.east_unit))
        .where(
            Pairing.west_unit_id == unit.id,
            overlaps(Pairing.valid_from, Pairing.valid_to, period.start, period.end),
            pairing_filter(user),
        )
        .order_by(Pairing.valid_from, Pairing.id)
    )
    return list(db.session.scalars(stmt))


# ---- rectification ledger (整改台账): who records problems, and the two sign-offs of 双销号 ----------------------

PERMISSIONS.update(
    {
        #: Registering problems, reporting progress, asking for 销号, linking records: Sichuan office staff and
        #: administrators, within scope (the gate's write rule on ``Problem``).
        "problems.edit": STAFF,
        #: Signing a problem off (销号) or returning it (退回): the Sichuan offices, never administrators.
        "problems.review": frozenset({Role.PROVINCE, Role.PREFECTURE, Role.COUNTY}),
    }
)

#: The office at each level of the Sichuan divisions (the responsible unit's own office).
OFFICE_AT = {UnitKind.COUNTY: Role.COUNTY, UnitKind.PREFECTURE: Role.PREFECTURE, UnitKind.PROVINCE: Role.PROVINCE}


def can_close_locally(user, unit) -> bool:
    """双销号, local side: the office of the unit the problem concerns, at that unit's level (a county office its
    county's problems, a prefecture office its prefecture's own, the province office the province's)."""
    if not can(user, "problems.review") or unit is None or unit.side is not Side.WEST:
        return False
    if OFFICE_AT.get(unit.kind) is not user.role:
        return False
    return user.role is Role.PROVINCE or unit_in_scope(user, unit)


def can_close_as_supervisor(user, unit) -> bool:
    """双销号, supervising side: an office above the unit — the prefecture office over its counties, the province
    office over every county and prefecture; the province's own problems are supervised by the province office
    too (a second person: the service refuses one person signing both sides)."""
    if not can(user, "problems.review") or unit is None or unit.side is not Side.WEST:
        return False
    if user.role is Role.PROVINCE:
        return True
    return user.role is Role.PREFECTURE and unit.kind is UnitKind.COUNTY and unit_in_scope(user, unit)


def can_review_problem(user, problem) -> bool:
    """双销号, either side: who may sign a problem off or return it (the problem workflow's 审核销号 and 退回)."""
    return can_close_locally(user, problem.unit) or can_close_as_supervisor(user, problem.unit)


# ---- workflow steps (registry/kernel/workflow.py) taken by whoever may write the record --------------------------


def write_gate(user, record) -> None:
    """Who may take a step that anyone who may write the record takes (an asset's change of state, publishing or
    withdrawing a notice): the write gate on the record as it stands, its scope and its locked quarter.

    :raise OutOfScope: as ``authorize_write``; returns None (the workflow kit reads a gate that raises as yes).
    """
    authorize_write(user, type(record), record, before=record)


def linkable_model(record_type: str):
    """The mapped class of a table that holds records a problem may name (``__tablename__``), or None: a class
    declaring ``__scope__``, or one belonging (many-to-one) to such a class (a fund transaction to its project)."""
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        if getattr(cls, "__tablename__", None) == record_type and _scope_path(cls) is not None:
            return cls
    return None


def _scope_path(cls):
    """(the class whose ``__scope__`` decides, the relationship leading to it or None)."""
    if getattr(cls, "__scope__", None) is not None:
        return cls, None
    for rel in sa.inspect(cls).relationships:
        target = rel.mapper.class_
        if rel.direction.name == "MANYTOONE" and getattr(target, "__scope__", None) is not None:
            return target, rel
    return None


def visible_records(user, record_type: str):
    """SELECT of the records of this table ``user`` may see (their own scope, or their owner's), or None for a table
    whose records a problem may not name."""
    cls = linkable_model(record_type)
    if cls is None:
        return None
    owner, rel = _scope_path(cls)
    stmt = sa.select(cls)
    if rel is not None:
        stmt = stmt.join(getattr(cls, rel.key))
    return stmt.where(sa.true() if user is None else scope_filter(user, owner))


def visible_record(user, record_type: str, record_id):
    """The record of this table and id if ``user`` may see it (its own scope, or its owner's); None otherwise."""
    stmt = visible_records(user, record_type)
    if stmt is None or not isinstance(record_id, int):
        return None
    return db.session.scalar(stmt.where(linkable_model(record_type).id == record_id))
