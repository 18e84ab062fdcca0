"""Reading the register: the list's filters (shared by the 总账, the 明细台账 and the export), totals by class and
owner level, the ledger rows by township and village, the re-pairing view and overdue checks."""

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from registry.assets.models import Asset, AssetClass, AssetSource, AssetState, OwnerLevel
from registry.assets.services import PENDING, last_checks, overdue_clause
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.web import is_id, like_pattern
from registry.pairings.models import Pairing, Programme
from registry.pairings.services import county_pairing_on
from registry.permissions import scope_filter

FILTER_KEYS = ("q", "county", "township", "village", "asset_class", "owner_level", "state", "programme", "review",
               "overdue", "ended")  # fmt: skip


def filtered(args: dict, user, today: date | None = None) -> sa.Select:
    """Scope first, then the user's filters."""
    today = today or date.today()
    stmt = sa.select(Asset).where(scope_filter(user, Asset))
    if args.get("q"):
        pattern = like_pattern(args["q"])
        stmt = stmt.where(sa.or_(Asset.name.like(pattern), Asset.number.like(pattern), Asset.owner_name.like(pattern),
                                 Asset.caretaker.like(pattern), Asset.caretaker_person.like(pattern)))  # fmt: skip
    for key, column in (("county", Asset.county_id), ("township", Asset.township_id), ("village", Asset.village_id),
                        ("programme", Asset.programme_id)):  # fmt: skip
        if is_id(args.get(key)):
            stmt = stmt.where(column == int(args[key]))
    enums = (("asset_class", Asset.asset_class, AssetClass), ("owner_level", Asset.owner_level, OwnerLevel),
             ("state", Asset.state, AssetState))  # fmt: skip
    for key, column, enum in enums:
        if args.get(key) in enum._value2member_map_:
            stmt = stmt.where(column == args[key])
    if args.get("review") == "yes":
        stmt = stmt.where(Asset.needs_review.is_(True))
    if args.get("overdue") == "yes":
        last = last_checks()
        stmt = stmt.outerjoin(last, last.c.asset_id == Asset.id).where(overdue_clause(today, last))
    if args.get("ended") == "yes":
        stmt = stmt.where(Asset.programme_id.in_(ended_programmes(today)))
    return stmt


def ended_programmes(today: date):
    """SQL: ids of programmes that ended before ``today`` (粤川 after the 2021 re-pairing)."""
    return sa.select(Programme.id).where(Programme.ends_on.is_not(None), Programme.ends_on < today)


@dataclass
class Cell:
    count: int = 0
    value: int = 0
    east: int = 0

    def add(self, count, value, east):
        self.count += count
        self.value += value
        self.east += east


@dataclass
class Totals:
    """Count, 原值 and 东部财政援助 share of a selection, by class × owner level, with row and column totals."""

    cells: dict = field(default_factory=dict)
    by_class: dict = field(default_factory=dict)
    by_level: dict = field(default_factory=dict)
    total: Cell = field(default_factory=Cell)

    def cell(self, asset_class, level) -> Cell:
        return self.cells.get((asset_class, level), Cell())


def totals(stmt: sa.Select) -> Totals:
    """Totals of every asset ``stmt`` selects, in one grouped query."""
    sub = stmt.with_only_columns(Asset.id).order_by(None).subquery()
    rows = db.session.execute(
        sa.select(Asset.asset_class, Asset.owner_level, sa.func.count(Asset.id), sa.func.sum(Asset.original_value_fen),
                  sa.func.sum(Asset.east_fen))
        .where(Asset.id.in_(sa.select(sub.c.id)))
        .group_by(Asset.asset_class, Asset.owner_level)
    )  # fmt: skip
    result = Totals()
    for asset_class, level, count, value, east in rows:
        asset_class, level = AssetClass(asset_class), OwnerLevel(level)
        numbers = (int(count), int(value or 0), int(east or 0))
        result.cells.setdefault((asset_class, level), Cell()).add(*numbers)
        result.by_class.setdefault(asset_class, Cell()).add(*numbers)
        result.by_level.setdefault(level, Cell()).add(*numbers)
        result.total.add(*numbers)
    return result


@dataclass
class LedgerGroup:
    """The 明细台账 of one township (or of the county's own assets, township None), village by village."""

    township: str
    villages: list  # [(village name, [assets], Cell)]
    subtotal: Cell


def ledger(stmt: sa.Select) -> list[LedgerGroup]:
    """Assets ``stmt`` selects, grouped by township and village, with subtotals (the 明细台账)."""
    township, village = aliased(Unit), aliased(Unit)
    rows = db.session.execute(
        stmt.add_columns(township.name, village.name)
        .outerjoin(township, township.id == Asset.township_id)
        .outerjoin(village, village.id == Asset.village_id)
        .order_by(township.name, village.name, Asset.number)
    ).all()
    groups: dict = {}
    for asset, township_name, village_name in rows:
        group = groups.setdefault(township_name or "", LedgerGroup(township_name or "（县级，未分乡镇）", {}, Cell()))
        entry = group.villages.setdefault(village_name or "", [village_name or "（未指定村）", [], Cell()])
        entry[1].append(asset)
        entry[2].add(1, asset.original_value_fen, asset.east_fen)
        group.subtotal.add(1, asset.original_value_fen, asset.east_fen)
    for group in groups.values():
        group.villages = list(group.villages.values())
    return list(groups.values())


def repaired(user, today: date | None = None) -> list[tuple]:
    """The re-pairing view: assets from pairings of programmes that ended (粤川), with the pairing now looking after
    their county (浙川); (asset, source pairing label, current pairing or None)."""
    today = today or date.today()
    stmt = (
        filtered({"ended": "yes"}, user, today)
        .join(Pairing, Pairing.id == Asset.pairing_id)
        .order_by(Asset.county_id, Asset.number)
    )
    current: dict = {}
    result = []
    for asset in db.session.scalars(stmt):
        if asset.county_id not in current:
            current[asset.county_id] = county_pairing_on(asset.county_id, today)
        result.append((asset, current[asset.county_id]))
    return result


def overdue(stmt: sa.Select, today: date) -> sa.Select:
    last = last_checks()
    return stmt.outerjoin(last, last.c.asset_id == Asset.id).where(overdue_clause(today, last))


def last_check_dates(ids) -> dict[int, date]:
    last = last_checks()
    return dict(db.session.execute(sa.select(last.c.asset_id, last.c.last).where(last.c.asset_id.in_(list(ids)))).all())


@dataclass(frozen=True)
class Unmanaged:
    """An asset whose 管护 is not in place, and why (any of the three)."""

    id: int
    county_id: int
    number: str
    value: int
    no_caretaker: bool
    review_stale: bool
    not_handed_over: bool


def unmanaged(counties, *, reviewed_before: datetime, handed_over_projects) -> list[Unmanaged]:
    """Assets not 已处置 (in ``counties``, ids, or everywhere for None) whose 管护 is not in place: 管护主体 or 责任人
    blank or still the legacy path's ``PENDING``; still 待核实 though created before ``reviewed_before``; or no 移交
    date while a source project is among ``handed_over_projects`` (a SELECT of project ids: the caller knows the
    projects stream). In county and number order."""
    blank = sa.or_(*(sa.func.trim(c).in_(("", PENDING)) for c in (Asset.caretaker, Asset.caretaker_person)))
    stale = sa.and_(Asset.needs_review.is_(True), Asset.created_at < reviewed_before)
    no_handover = sa.and_(
        Asset.handed_over_on.is_(None),
        Asset.id.in_(sa.select(AssetSource.asset_id).where(AssetSource.project_id.in_(handed_over_projects))),
    )
    rows = db.session.execute(
        sa.select(Asset.id, Asset.county_id, Asset.number, Asset.original_value_fen, blank, stale, no_handover)
        .where(Asset.state != AssetState.DISPOSED, sa.or_(blank, stale, no_handover),
               sa.true() if counties is None else Asset.county_id.in_(list(counties)))
        .order_by(Asset.county_id, Asset.number)
    )  # fmt: skip
    return [Unmanaged(i, c, n, int(v), bool(b), bool(s), bool(h)) for i, c, n, v, b, s, h in rows]
