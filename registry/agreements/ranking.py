"""进度排名: which counties (or prefectures) are behind on an agreement, at a cut-off date.

For one agreement and a cut-off, one row per county (or per prefecture) with, for every active indicator,
目标 | 完成 | 完成率 | 序时进度. The figures are ``services.progress`` of that unit — called once per unit, so a
ranking can never disagree with the county page, the agreement page or the quarterly report. 序时进度 is the share
of the agreement's year elapsed at the cut-off; a 完成率 below it is "behind". The page, the XLSX export, the home
pages and the quarterly PDF are all fed the same ``Ranking``.

Scope: which rows a user gets is decided here (``counties_for``), from ``registry.permissions``: Sichuan offices
and scoped readers their own counties, an East liaison the counties of their pairings during the year.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.agreements.models import Agreement, Measure, Target
from registry.agreements.services import Progress, counties_within, progress, progress_many
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import overlaps
from registry.pairings.models import Pairing
from registry.permissions import pairing_filter, scope_of

LEVELS = {"county": "县(市、区)", "prefecture": "市(州)"}
#: Level of a single-row ranking of one unit's own figures (``for_unit``).
UNIT_LEVELS = {"province": "省"}


def elapsed_share(year: int, cutoff: date) -> Decimal:
    """序时进度: the share of ``year`` elapsed at the end of ``cutoff`` in percent (2 places), 0 before the year
    begins and 100 after it ends. 30 June 2024 is day 182 of 366: 49.73."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    if cutoff < start:
        return Decimal("0.00")
    days = (min(cutoff, end) - start).days + 1
    total = (end - start).days + 1
    return (Decimal(days) * 100 / Decimal(total)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def clamp_cutoff(year: int, cutoff: date | None, today: date | None = None) -> date:
    """The cut-off used for ``year``: the given day, or today; never past the year's end."""
    return min(cutoff or today or date.today(), date(year, 12, 31))


# ---- plain data ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One indicator of the ranking."""

    indicator_id: int
    code: str
    name: str
    unit: str
    is_money: bool
    is_part: bool


@dataclass(frozen=True)
class Cell:
    target: int | None
    actual: int | None
    rate: Decimal | None
    #: Why there is no actual figure (no source of records for the indicator).
    pending: str
    #: 完成率 below 序时进度.
    behind: bool


@dataclass(frozen=True)
class Row:
    unit_id: int
    code: str
    name: str
    #: The prefecture of a county row ("" for a prefecture row).
    parent: str
    cells: tuple[Cell, ...]
    #: True when a prefecture row's targets are the sum of its counties' (it has none of its own).
    summed_targets: bool = False

    @property
    def behind_count(self) -> int:
        """How many indicators are below 序时进度."""
        return sum(c.behind for c in self.cells)

    @property
    def rated(self) -> int:
        """How many indicators have a 完成率 at all (a target and a figure)."""
        return sum(c.rate is not None for c in self.cells)


@dataclass(frozen=True)
class Ranking:
    agreement_id: int
    title: str
    programme: str
    year: int
    cutoff: date
    #: 序时进度 in percent.
    elapsed: Decimal
    level: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...] = field(default=())

    @property
    def level_label(self) -> str:
        return LEVELS.get(self.level) or UNIT_LEVELS[self.level]

    @property
    def behind_rows(self) -> int:
        return sum(1 for r in self.rows if r.behind_count)

    def sorted(self, key: str = "behind") -> list[Row]:
        """Rows in the order of ``key``: ``behind`` (most indicators behind first), ``code`` (division code),
        or an indicator code (lowest 完成率 first); a leading ``-`` reverses. Rows without a 完成率 go last."""
        descending = key.startswith("-")
        key = key.lstrip("-")
        rows = list(self.rows)
        if key == "code":
            return sorted(rows, key=lambda r: r.code, reverse=descending)
        index = next((i for i, c in enumerate(self.columns) if c.code == key), None)
        if index is None:  # "behind", and anything unknown: the question the page answers first
            lowest = [_lowest_rate(r) for r in rows]
            order = sorted(
                range(len(rows)), key=lambda i: (-rows[i].behind_count, lowest[i] is None, lowest[i] or 0, rows[i].code)
            )
            ordered = [rows[i] for i in order]
            return ordered[::-1] if descending else ordered
        rated = [r for r in rows if r.cells[index].rate is not None]
        unrated = [r for r in rows if r.cells[index].rate is None]
        rated.sort(key=lambda r: (r.cells[index].rate, r.code), reverse=descending)
        return rated + sorted(unrated, key=lambda r: r.code)


def _lowest_rate(row: Row) -> Decimal | None:
    rates = [c.rate for c in row.cells if c.rate is not None]
    return min(rates) if rates else None


# ---- scope -------------------------------------------------------------------------------------------------------


def agreement_counties(agreement: Agreement) -> sa.Select:
    """SELECT of the Sichuan county ids the agreement concerns: those with a target in it, and those with a
    county-level pairing of its programme at some time during its year."""
    targeted = sa.select(Target.unit_id).where(Target.agreement_id == agreement.id)
    paired = sa.select(Pairing.west_unit_id).where(
        Pairing.programme_id == agreement.programme_id,
        Pairing.level == UnitKind.COUNTY,
        overlaps(Pairing.valid_from, Pairing.valid_to, date(agreement.year, 1, 1), date(agreement.year, 12, 31)),
    )
    return sa.select(Unit.id).where(
        Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST, sa.or_(Unit.id.in_(targeted), Unit.id.in_(paired))
    )


def user_counties(user, agreement: Agreement) -> sa.ColumnElement:
    """WHERE on Unit: the counties ``user`` may rank. Sichuan offices and scoped readers: within their scope;
    East liaisons: counties with one of their pairings (at county level or below) during the agreement's year."""
    scope = scope_of(user)
    if scope.is_all:
        return sa.true()
    if scope.side is Side.WEST:
        return Unit.id.in_(scope.units_within())
    year = agreement.year
    own = (
        sa.select(Unit.county_id)
        .join(Pairing, Pairing.west_unit_id == Unit.id)
        .where(
            pairing_filter(user),
            Unit.county_id.is_not(None),
            overlaps(Pairing.valid_from, Pairing.valid_to, date(year, 1, 1), date(year, 12, 31)),
        )
    )
    return Unit.id.in_(own)


def counties_for(agreement: Agreement, *, user=None, within: Unit | None = None, ids=None) -> list[Unit]:
    """The counties of the agreement's ranking, in code order (prefecture loaded): limited to ``user``'s scope,
    to those inside ``within`` (a prefecture or the province) and to ``ids``, each when given."""
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.id.in_(agreement_counties(agreement)))
        .order_by(Unit.code)
    )
    if user is not None:
        stmt = stmt.where(user_counties(user, agreement))
    if within is not None and within.kind is not UnitKind.COUNTY:
        stmt = stmt.where(Unit.id.in_(counties_within(within)))
    elif within is not None:
        stmt = stmt.where(Unit.id == within.id)
    if ids is not None:
        stmt = stmt.where(Unit.id.in_(list(ids)))
    return list(db.session.scalars(stmt))


def may_rank_prefectures(user) -> bool:
    """A row per prefecture sums whole prefectures: only for users who see the whole province."""
    return user is None or scope_of(user).is_all


# ---- building ------------------------------------------------------------------------------------------------------


def _cell(p: Progress, elapsed: Decimal) -> Cell:
    rate = p.rate
    return Cell(
        target=p.target,
        actual=p.actual,
        rate=rate,
        pending=p.pending,
        behind=rate is not None and rate < elapsed,
    )


def _columns(rows: list[Progress]) -> tuple[Column, ...]:
    return tuple(
        Column(
            indicator_id=p.indicator_id,
            code=p.code,
            name=p.name,
            is_money=p.measure is Measure.MONEY,
            unit="万元" if p.measure is Measure.MONEY else p.unit,
            is_part=p.is_part,
        )  # fmt: skip
        for p in rows
    )


def build(agreement: Agreement, counties: list[Unit], cutoff: date | None = None, level: str = "county", *,
          many: dict | None = None) -> Ranking:  # fmt: skip
    """The ranking of ``counties`` (a row each) or of their prefectures (``level="prefecture"``) at ``cutoff``.

    Every row's figures from one ``progress_many`` (a query per indicator for all rows, each row exactly its own
    ``progress``), or from ``many`` when the caller computed it with other units (``with_unit``). A prefecture
    without targets of its own is given the sum of its counties' targets (``Row.summed_targets``); its figures are
    the prefecture's own (each person counted once).
    """
    if level not in LEVELS:
        raise ValueError(f"未知的排名层级：{level}")
    cutoff = clamp_cutoff(agreement.year, cutoff)
    elapsed = elapsed_share(agreement.year, cutoff)
    columns: tuple[Column, ...] = ()
    rows = []
    if level == "county":
        many = many if many is not None else progress_many(agreement, counties, cutoff)
        for county in counties:
            figures = many[county.id]
            columns = columns or _columns(figures)
            rows.append(
                Row(
                    unit_id=county.id,
                    code=county.code or "",
                    name=county.name,
                    parent=county.parent.name if county.parent else "",
                    cells=tuple(_cell(p, elapsed) for p in figures),
                )  # fmt: skip
            )
    else:
        prefectures = {c.parent.id: c.parent for c in counties if c.parent is not None}
        # A prefecture without targets of its own is given its counties' sum (services.unit_targets).
        if many is None:
            many = progress_many(agreement, list(prefectures.values()), cutoff)
        for prefecture in sorted(prefectures.values(), key=lambda u: u.code or ""):
            figures = many[prefecture.id]
            columns = columns or _columns(figures)
            summed = any(p.summed_target for p in figures)
            rows.append(
                Row(
                    unit_id=prefecture.id,
                    code=prefecture.code or "",
                    name=prefecture.name,
                    parent="",
                    cells=tuple(_cell(p, elapsed) for p in figures),
                    summed_targets=summed,
                )  # fmt: skip
            )
    return Ranking(
        agreement_id=agreement.id, title=agreement.title, programme=agreement.programme.name, year=agreement.year,
        cutoff=cutoff, elapsed=elapsed, level=level, columns=columns, rows=tuple(rows),
    )  # fmt: skip


def for_user(agreement: Agreement, user, cutoff: date | None = None, level: str = "county", within=None) -> Ranking:
    """The ranking ``user`` may see (rows limited to their scope; prefecture rows only for the whole province)."""
    if level == "prefecture" and not may_rank_prefectures(user):
        level = "county"
    return build(agreement, counties_for(agreement, user=user, within=within), cutoff, level)


def for_unit(agreement: Agreement, unit: Unit, cutoff: date | None = None, *, many: dict | None = None) -> Ranking:
    """One row: ``unit``'s own figures against 序时进度 — a county's as in its ranking, a prefecture's as in the
    prefecture ranking (its counties' targets summed when it has none), the province's with its own targets.
    ``many``: ``progress_many`` already computed for ``unit`` among others (``with_unit``)."""
    if unit.kind is UnitKind.COUNTY:
        return build(agreement, [unit], cutoff, many=many)
    if unit.kind is UnitKind.PREFECTURE:
        counties = counties_for(agreement, within=unit)
        if counties:
            return build(agreement, counties[:1], cutoff, "prefecture", many=many)
    cutoff = clamp_cutoff(agreement.year, cutoff)
    elapsed = elapsed_share(agreement.year, cutoff)
    figures = many[unit.id] if many is not None else progress(agreement, unit, cutoff)
    cells = tuple(_cell(p, elapsed) for p in figures)
    row = Row(unit_id=unit.id, code=unit.code or "", name=unit.name, parent="", cells=cells,
              summed_targets=any(p.summed_target for p in figures))  # fmt: skip
    return Ranking(
        agreement_id=agreement.id, title=agreement.title, programme=agreement.programme.name, year=agreement.year,
        cutoff=cutoff, elapsed=elapsed, level="province" if unit.kind is UnitKind.PROVINCE else "prefecture",
        columns=_columns(figures), rows=(row,),
    )  # fmt: skip


def with_unit(agreement: Agreement, unit: Unit, user, cutoff: date | None = None) -> tuple[Ranking, Ranking]:
    """``for_unit(agreement, unit)`` and ``for_user(agreement, user)`` (county level) from one ``progress_many`` over
    the unit and the user's counties: the home page of the province office asks both, and apart they read the same
    records twice (every county's people in work, for the province's union and again for each county). Each unit's
    figures are its own ``progress`` either way."""
    counties = counties_for(agreement, user=user)
    units = {c.id: c for c in counties}
    if unit.kind is UnitKind.PREFECTURE and counties_for(agreement, within=unit):
        units.setdefault(unit.id, unit)
    elif unit.kind is not UnitKind.PREFECTURE:
        units.setdefault(unit.id, unit)
    many = progress_many(agreement, list(units.values()), cutoff) if units else {}
    own = for_unit(agreement, unit, cutoff, many=many if unit.id in many else None)
    return own, build(agreement, counties, cutoff, many=many)


def year_agreements(year: int, where=None) -> list[Agreement]:
    """The agreements of ``year`` (optionally filtered, e.g. by ``permissions.programme_filter``), programme loaded."""
    stmt = sa.select(Agreement).options(joinedload(Agreement.programme)).where(Agreement.year == year)
    if where is not None:
        stmt = stmt.where(where)
    return list(db.session.scalars(stmt.order_by(Agreement.id)))


def for_report(unit: Unit, year: int, cutoff: date, county_ids, agreement_keys) -> list[Ranking]:
    """The rankings a prefecture's or the province's quarterly report prints: for each of the report's agreements
    (``agreement_keys``: (title, programme name) as its summary table lists them), a row per county the report
    covers (``county_ids``: its paired counties, already limited to an East liaison's pairings)."""
    if unit.kind is UnitKind.COUNTY:
        return []
    keys = set(agreement_keys)
    result = []
    for agreement in year_agreements(year):
        if (agreement.title, agreement.programme.name) not in keys:
            continue
        counties = counties_for(agreement, within=unit, ids=county_ids)
        if counties:
            result.append(build(agreement, counties, cutoff))
    return result


# ---- spreadsheet -----------------------------------------------------------------------------------------------------


def xlsx_table(ranking: Ranking, rows: list[Row]) -> tuple[list[str], list[list]]:
    """Headers and rows of the XLSX export: the page's columns, money in 万元 and rates in percent as numbers."""
    headers = ["序号", ranking.level_label]
    if ranking.level == "county":
        headers.append("所属市(州)")
    for c in ranking.columns:
        unit = f"（{c.unit}）" if c.unit else ""
        headers += [f"{c.name}·目标{unit}", f"{c.name}·完成{unit}", f"{c.name}·完成率(%)", f"{c.name}·序时进度(%)"]
    headers.append("低于序时进度的指标数")
    body = []
    for number, row in enumerate(rows, start=1):
        line = [number, row.name] + ([row.parent] if ranking.level == "county" else [])
        for column, cell in zip(ranking.columns, row.cells, strict=True):
            line += [
                _number(cell.target, column),
                cell.pending or _number(cell.actual, column),
                cell.rate,
                ranking.elapsed,
            ]
        line.append(row.behind_count)
        body.append(line)
    return headers, body


def _number(value: int | None, column: Column):
    if value is None:
        return None
    if column.is_money:
        return (Decimal(value) / 1_000_000).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return value
