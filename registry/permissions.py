"""Who may do what (role permissions) and see which records (scope). The only place access rules live.

Every list, detail page, export and report asks this module for its filter: ``pairing_filter(user)``,
``unit_filter(user)`` and ``record_filter(user, county_col, pairing_col)`` for records of later modules.
A record outside the user's scope is reported as missing (404), never as forbidden, so its existence leaks nothing.
"""

import functools
from dataclasses import dataclass

import sqlalchemy as sa
from flask import abort
from flask_login import current_user

from registry.counties.models import DIVISION_KINDS, Side, Unit, UnitKind
from registry.extensions import db
from registry.roles import Role

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
    from registry.pairings.models import Pairing

    pairing_cls = pairing_cls or Pairing
    scope = scope_of(user)
    if scope.is_all:
        return sa.true()
    column = pairing_cls.west_unit_id if scope.side is Side.WEST else pairing_cls.east_unit_id
    return column.in_(scope.units_within())


def visible_pairing_ids(user):
    """SELECT of the ids of the pairings the user sees."""
    from registry.pairings.models import Pairing

    return sa.select(Pairing.id).where(pairing_filter(user))


def unit_filter(user):
    """WHERE clause limiting units: those within the scope, and their partners in visible pairings."""
    from registry.pairings.models import Pairing

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


def county_writable(user, county) -> bool:
    """May ``user`` place or keep a record (project, entry…) in this Sichuan county?

    Sichuan staff: counties within their scope. Liaisons: counties paired with their side (the record's pairing
    must then also be one of theirs, which the caller checks with ``pairing_filter``).
    """
    scope = scope_of(user)
    if county is None:
        return False
    if scope.is_all or scope.side is Side.WEST:
        return unit_in_scope(user, county)
    return db.session.scalar(sa.select(Unit.id).where(Unit.id == county.id, unit_filter(user))) is not None


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


def project_filter(user):
    """WHERE clause limiting projects (and their funds) to the user's scope."""
    from registry.projects.models import Project

    return record_filter(user, Project.county_id, Project.pairing_id)


def own_programmes(user) -> sa.Select | None:
    """SELECT of the programme ids an East liaison works in (their province's and general ones); None for all."""
    from registry.pairings.models import Programme

    scope = scope_of(user)
    if scope.is_all or scope.side is Side.WEST:
        return None
    root = db.session.get(Unit, scope.root_id)
    province_id = root.province_id or root.id
    return sa.select(Programme.id).where(
        sa.or_(Programme.east_province_id == province_id, Programme.east_province_id.is_(None))
    )


def agreement_filter(user):
    """WHERE clause on Agreement: East liaisons see their own province's programmes (and general ones)."""
    from registry.agreements.models import Agreement

    own = own_programmes(user)
    return sa.true() if own is None else Agreement.programme_id.in_(own)


def placement_filter(user):
    """WHERE clause on Placement: located in the origin county, attached to the pairing of its start date."""
    from registry.placements.models import Placement

    return record_filter(user, Placement.origin_county_id, Placement.pairing_id)


def placement_cell_filter(user):
    """WHERE clause on PlacementCell: the cells of the placements ``placement_filter`` shows (same columns)."""
    from registry.placements.models import PlacementCell

    return record_filter(user, PlacementCell.origin_county_id, PlacementCell.pairing_id)


def purchase_filter(user):
    """WHERE clause on Purchase: by the seller's county, or the pairing of the purchase date."""
    from registry.purchases.models import Purchase

    return record_filter(user, Purchase.seller_county_id, Purchase.pairing_id)


def purchase_totals_filter(user):
    """WHERE clause on PurchaseTotals: the totals of the purchases ``purchase_filter`` shows (same columns)."""
    from registry.purchases.models import PurchaseTotals

    return record_filter(user, PurchaseTotals.seller_county_id, PurchaseTotals.pairing_id)


def exchange_filter(user):
    """WHERE clause on Exchange: by the Sichuan county concerned, or the pairing of the arrival date."""
    from registry.exchanges.models import Exchange

    return record_filter(user, Exchange.county_id, Exchange.pairing_id)


def entry_filter(user):
    """WHERE clause on IndicatorEntry, like any record located in a county and attached to a pairing."""
    from registry.agreements.models import IndicatorEntry

    return record_filter(user, IndicatorEntry.county_id, IndicatorEntry.pairing_id)


def get_visible_or_404(model, ident, where):
    """Load ``model`` by primary key only if it satisfies ``where`` (a scope filter); 404 otherwise."""
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
    from registry.pairings.models import Pairing
    from registry.periods import overlaps

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
