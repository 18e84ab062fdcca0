"""The quarterly figures of a county, prefecture or the province: one query layer for the dashboard and the PDF.

``quarter_figures(unit, quarter, pairings)`` returns plain frozen data (no ORM objects, no identity numbers),
so the page and the report are fed the same numbers and a template cannot reach back into the database.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.agreements import calculators
from registry.agreements.models import Measure, Target
from registry.agreements.services import active_indicators, agreements_for, counties_within
from registry.audit.models import AuditEvent
from registry.counties.models import Side, Unit, UnitKind
from registry.counties.services import category_on
from registry.database import among
from registry.exchanges import figures as exchanges
from registry.exchanges.models import Direction, Field, PersonType
from registry.extensions import db
from registry.money import rate
from registry.pairings.models import Pairing
from registry.pairings.services import partners_during
from registry.periods import Period, Quarter, overlaps
from registry.placements import figures as placements
from registry.placements.models import Destination
from registry.projects import figures as projects
from registry.projects.models import FundSource, FundStage
from registry.purchases import figures as purchases
from registry.reports.models import QuarterNarrative

# ---- plain data ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitInfo:
    id: int
    name: str
    full_name: str
    kind: str
    kind_label: str
    code: str
    category: str

    @property
    def is_county(self) -> bool:
        return self.kind == UnitKind.COUNTY.value


@dataclass(frozen=True)
class Partner:
    """A pairing valid at some time during the quarter, as the cover shows it."""

    east: str
    west: str
    level: str
    programme: str
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class IndicatorRow:
    """One row of 指标 | 单位 | 年度目标 | 本季度 | 年累计 | 完成率 | 上年同期 (分 for money, counts otherwise)."""

    code: str
    name: str
    is_money: bool
    unit: str
    is_part: bool
    target: int | None
    quarter: int | None
    year_to_date: int | None
    last_year: int | None
    #: Why there is no figure (no source of records); shown instead of numbers.
    pending: str = ""
    #: Why 上年同期 is empty (the programme was not running in that period of the year before).
    no_last_year: str = ""

    @property
    def rate(self) -> Decimal | None:
        return rate(self.year_to_date, self.target)


@dataclass(frozen=True)
class AgreementFigures:
    title: str
    programme: str
    rows: tuple[IndicatorRow, ...]


@dataclass(frozen=True)
class FundRow:
    """Funds of one source (or the total) at each stage, cumulative to the quarter's end."""

    label: str
    planned: int
    arrived: int
    disbursed: int
    quarter_disbursed: int

    @property
    def undisbursed(self) -> int:
        return self.arrived - self.disbursed

    @property
    def usage(self) -> Decimal | None:
        """资金使用率: 拨付 ÷ 到位."""
        return rate(self.disbursed, self.arrived)


@dataclass(frozen=True)
class ProjectRow:
    id: int
    code: str
    name: str
    programme: str
    category: str
    status: str
    funds: tuple[FundRow, ...]
    total: FundRow
    beneficiaries: int
    beneficiaries_lifted: int


@dataclass(frozen=True)
class DestinationRow:
    """People in work during the period by destination class; a person counts once per class and once in total."""

    label: str
    quarter: int
    year_to_date: int
    lifted_year_to_date: int


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    counting_type: str
    records: int
    quarter: int
    year_to_date: int


@dataclass(frozen=True)
class PostingRow:
    direction: str
    person_type: str
    field: str
    in_post_quarter: int
    in_post_at_end: int


@dataclass(frozen=True)
class RosterRow:
    name: str
    direction: str
    person_type: str
    field: str
    sending_unit: str
    receiving_unit: str
    position: str
    arrival: date
    departure: date | None


@dataclass(frozen=True)
class CountyRow:
    """One paired county in a prefecture's or the province's summary."""

    id: int
    name: str
    partners: str
    projects: int
    arrived: int
    disbursed: int
    people: int
    people_lifted: int
    consumption: int

    @property
    def usage(self) -> Decimal | None:
        return rate(self.disbursed, self.arrived)


@dataclass(frozen=True)
class Narrative:
    highlights: str = ""
    problems: str = ""
    next_steps: str = ""
    updated_by: str = ""
    updated_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.highlights or self.problems or self.next_steps)


@dataclass(frozen=True)
class QuarterFigures:
    """Everything the dashboard and the report show for one unit and quarter."""

    unit: UnitInfo
    quarter: Quarter
    cutoff: date
    #: Money is shown in 亿元 for the province, in 万元 below it.
    money_unit: str
    partners: tuple[Partner, ...]
    agreements: tuple[AgreementFigures, ...]
    funds: tuple[FundRow, ...]
    funds_total: FundRow
    projects: tuple[ProjectRow, ...]
    monthly_disbursed: tuple[tuple[str, int], ...]
    destinations: tuple[DestinationRow, ...]
    people_quarter: int
    people_year_to_date: int
    lifted_year_to_date: int
    channels: tuple[ChannelRow, ...]
    postings: tuple[PostingRow, ...]
    roster: tuple[RosterRow, ...]
    counties: tuple[CountyRow, ...]
    narrative: Narrative
    data_version: int
    generated_at: datetime
    #: Whose pairings the figures are limited to, when the viewer sees only some (an East liaison).
    limited_to: str = ""

    @property
    def consumption_quarter(self) -> int:
        return sum(c.quarter for c in self.channels)

    @property
    def consumption_year_to_date(self) -> int:
        return sum(c.year_to_date for c in self.channels)


# ---- the query layer --------------------------------------------------------------------------------------------


def data_version() -> int:
    """The newest audit event: every write leaves one, so a report names the state of the data it was made from."""
    return db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(AuditEvent.id), 0)))


def unit_info(unit: Unit, on: date | None = None) -> UnitInfo:
    """The unit as a report names it; ``on`` picks the assistance category valid that day (else the current one)."""
    category = category_on(unit, on) if on is not None else unit.category
    return UnitInfo(
        id=unit.id, name=unit.name, full_name=unit.full_name, kind=unit.kind.value, kind_label=unit.kind.label,
        code=unit.code or "", category=category.label if category else "",
    )  # fmt: skip


def quarter_figures(unit: Unit, quarter: Quarter, pairings=None, limited_to: str = "") -> QuarterFigures:
    """All figures of ``unit`` (a Sichuan county, prefecture or the province) for ``quarter``.

    :param pairings: a SELECT of the pairing ids whose records count (an East liaison's own, see
        ``permissions.report_pairings``); None counts every record.
    :param limited_to: says on the cover and the page whose pairings the figures are limited to.
    """
    if unit.side is not Side.WEST or unit.kind not in (UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY):
        raise ValueError("季度报告只针对四川省、市(州)或县(市、区)。")
    # The ids themselves, not a sub-SELECT: ~50 queries filter by them, and PostgreSQL without fresh statistics
    # planned the sub-SELECT as a units scan per placement row (0.5 s for a county instead of 0.07 s).
    counties = list(db.session.scalars(counties_within(unit)))
    ytd = quarter.year_to_date
    partners = _partners(unit, quarter, pairings)
    funds, funds_total = _funds(counties, pairings, quarter)
    people_q, _ = placements.people_in_work(counties, pairings, quarter)
    people_y, lifted_y = placements.people_in_work(counties, pairings, ytd)
    is_county = unit.kind is UnitKind.COUNTY
    return QuarterFigures(
        unit=unit_info(unit, quarter.end),
        quarter=quarter,
        cutoff=min(quarter.end, date.today()),
        money_unit="亿元" if unit.kind is UnitKind.PROVINCE else "万元",
        partners=partners,
        agreements=_agreements(unit, quarter, counties, pairings),
        funds=funds,
        funds_total=funds_total,
        projects=_projects(unit, quarter, pairings) if is_county else (),
        monthly_disbursed=_monthly_disbursed(counties, pairings, quarter),
        destinations=_destinations(counties, pairings, quarter),
        people_quarter=people_q,
        people_year_to_date=people_y,
        lifted_year_to_date=lifted_y,
        channels=_channels(counties, pairings, quarter),
        postings=_postings(counties, pairings, quarter),
        roster=_roster(counties, pairings, quarter) if is_county else (),
        counties=() if is_county else _county_rows(unit, quarter, pairings),
        narrative=narrative_of(unit.id, quarter),
        data_version=data_version(),
        generated_at=datetime.now(UTC),
        limited_to=limited_to,
    )


def _partners(unit: Unit, quarter: Quarter, pairings) -> tuple[Partner, ...]:
    where = among(Pairing.id, pairings)
    include_parents = unit.kind is UnitKind.COUNTY
    pairings = partners_during(unit.id, quarter, include_parents=include_parents, where=where)
    if unit.kind is UnitKind.PROVINCE:
        pairings = [p for p in pairings if p.west_unit_id == unit.id]
    return tuple(
        Partner(
            east=p.east_unit.display_name,
            west=p.west_unit.display_name,
            level=p.level.label,
            programme=p.programme.name,
            valid_from=p.valid_from,
            valid_to=p.valid_to,
        )  # fmt: skip
        for p in pairings
    )


def _agreements(unit: Unit, quarter: Quarter, counties, pairings) -> tuple[AgreementFigures, ...]:
    """The summary table per agreement of the quarter's year: target, quarter, year to date, 完成率, 上年同期."""
    year = quarter.year
    agreements = agreements_for(unit, year)
    if pairings is not None:
        own = set(db.session.scalars(sa.select(Pairing.programme_id).where(Pairing.id.in_(pairings))))
        agreements = [a for a in agreements if a.programme_id in own]
    if not agreements:
        return ()
    indicators = active_indicators()
    targets = {
        (t.agreement_id, t.indicator_id): t.value
        for t in db.session.scalars(
            sa.select(Target).where(Target.agreement_id.in_([a.id for a in agreements]), Target.unit_id == unit.id)
        )
    }
    last_period = quarter.previous_year().year_to_date
    result = []
    for agreement in agreements:
        # 上年同期 needs no agreement last year, only the programme running then (浙川 has none before 2021-04).
        programme = agreement.programme
        has_last = (programme.starts_on is None or programme.starts_on <= last_period.end) and (
            programme.ends_on is None or programme.ends_on >= last_period.start
        )
        rows = []
        for indicator in indicators:
            calculate = calculators.for_indicator(indicator)

            def figure(period: Period, calculate=calculate, programme_id=agreement.programme_id):
                return None if calculate is None else int(calculate(counties, programme_id, period, pairings))

            rows.append(
                IndicatorRow(
                    code=indicator.code,
                    name=indicator.name,
                    is_money=indicator.measure is Measure.MONEY,
                    unit=indicator.unit,
                    is_part=indicator.parent_id is not None,
                    target=targets.get((agreement.id, indicator.id)),
                    quarter=figure(quarter),
                    year_to_date=figure(quarter.year_to_date),
                    last_year=figure(last_period) if has_last else None,
                    pending="" if calculate else calculators.PENDING.get(indicator.code, "暂无统计来源"),
                    no_last_year="" if has_last else f"{programme.name}在上年同期尚未开展或已结束",
                )
            )
        result.append(AgreementFigures(title=agreement.title, programme=agreement.programme.name, rows=tuple(rows)))
    return tuple(result)


def _funds(counties, pairings, quarter: Quarter) -> tuple[tuple[FundRow, ...], FundRow]:
    """Funds by source, cumulative to the quarter's end, of the projects in the counties (all years), with what
    was disbursed within the quarter; summed by the projects module's own totals."""
    cumulative = projects.fund_totals(counties, pairings, until=quarter.end)
    in_quarter = projects.fund_totals(counties, pairings, since=quarter.start, until=quarter.end)
    rows = tuple(
        FundRow(source.label, planned, arrived, disbursed, in_quarter.by_source[source][FundStage.DISBURSED])
        for source, planned, arrived, disbursed, _, _ in cumulative.rows()
    )
    total = FundRow("合计", cumulative.planned, cumulative.arrived, cumulative.disbursed, in_quarter.disbursed)
    return rows, total


def _fund_row(label, by_stage) -> FundRow:
    return FundRow(
        label=label,
        planned=by_stage[FundStage.PLANNED][0],
        arrived=by_stage[FundStage.ARRIVED][0],
        disbursed=by_stage[FundStage.DISBURSED][0],
        quarter_disbursed=by_stage[FundStage.DISBURSED][1],
    )


def _projects(unit: Unit, quarter: Quarter, pairings) -> tuple[ProjectRow, ...]:
    """The county's projects of the quarter's year, and earlier ones still moving money in it."""
    projects_of_year = projects.year_projects(unit.id, quarter, pairings)
    if not projects_of_year:
        return ()
    cells = projects.fund_cells([p.id for p in projects_of_year], quarter)
    rows = []
    for p in projects_of_year:
        funds = []
        for source in FundSource:
            if any((p.id, source, stage) in cells for stage in FundStage):
                funds.append(_fund_row(source.label, {s: cells.get((p.id, source, s), (0, 0)) for s in FundStage}))
        total = {s: tuple(sum(cells.get((p.id, src, s), (0, 0))[i] for src in FundSource) for i in (0, 1))
                 for s in FundStage}  # fmt: skip
        rows.append(
            ProjectRow(
                id=p.id,
                code=p.code,
                name=p.name,
                programme=p.programme.name,
                category=p.category.label,
                status=p.status.label,
                funds=tuple(funds),
                total=_fund_row("合计", total),
                beneficiaries=p.beneficiaries,
                beneficiaries_lifted=p.beneficiaries_lifted,
            )  # fmt: skip
        )
    return tuple(rows)


def _monthly_disbursed(counties, pairings, quarter: Quarter) -> tuple[tuple[str, int], ...]:
    """Money disbursed (拨付) per month from January to the quarter's last month."""
    by_month = projects.monthly_disbursed(counties, pairings, quarter.year_to_date)
    return tuple((f"{m}月", by_month.get(m, 0)) for m in range(1, quarter.end.month + 1))


def _destinations(counties, pairings, quarter: Quarter) -> tuple[DestinationRow, ...]:
    in_quarter = placements.people_by_destination(counties, pairings, quarter)
    ytd = placements.people_by_destination(counties, pairings, quarter.year_to_date)
    lifted = placements.people_by_destination(counties, pairings, quarter.year_to_date, lifted_only=True)
    return tuple(DestinationRow(d.label, in_quarter.get(d, 0), ytd.get(d, 0), lifted.get(d, 0)) for d in Destination)


def _channels(counties, pairings, quarter: Quarter) -> tuple[ChannelRow, ...]:
    return tuple(
        ChannelRow(name, kind.label, n, q, y)
        for name, kind, n, q, y in purchases.by_channel(
            counties, pairings, quarter.year_to_date, recent_from=quarter.start
        )
    )


def _postings(counties, pairings, quarter: Quarter) -> tuple[PostingRow, ...]:
    """People in post during the quarter and on its last day, by direction, type and field."""
    during = exchanges.postings_by_kind(counties, pairings, quarter)
    at_end = exchanges.postings_by_kind(counties, pairings, Period(quarter.end, quarter.end))
    order = [(d, t, f) for d in Direction for t in PersonType for f in [None, *Field]]
    return tuple(
        PostingRow(key[0].label, key[1].label, key[2].label if key[2] else "", during[key], at_end.get(key, 0))
        for key in order
        if key in during
    )


def _roster(counties, pairings, quarter: Quarter) -> tuple[RosterRow, ...]:
    return tuple(
        RosterRow(
            name=e.person_name,
            direction=e.direction.label,
            person_type=e.person_type.label,
            field=e.field.label if e.field else "",
            sending_unit=e.sending_unit,
            receiving_unit=e.receiving_unit,
            position=e.position,
            arrival=e.arrival_date,
            departure=e.departure_date,
        )  # fmt: skip
        for e in exchanges.roster(counties, pairings, quarter)
    )


def paired_counties(unit: Unit, quarter: Quarter, pairings=None) -> list[Unit]:
    """Sichuan counties within ``unit`` that had a county-level pairing at some time during the quarter."""

    stmt = (
        sa.select(Unit)
        .join(Pairing, Pairing.west_unit_id == Unit.id)
        .where(
            Unit.id.in_(counties_within(unit)),
            overlaps(Pairing.valid_from, Pairing.valid_to, quarter.start, quarter.end),
            among(Pairing.id, pairings),
        )
        .distinct()
        .order_by(Unit.code)
    )
    return list(db.session.scalars(stmt))


def _county_rows(unit: Unit, quarter: Quarter, pairings) -> tuple[CountyRow, ...]:
    """Year-to-date key figures of each paired county within a prefecture or the province, in few grouped queries."""
    counties = paired_counties(unit, quarter, pairings)
    if not counties:
        return ()
    ids = [c.id for c in counties]
    ytd = quarter.year_to_date
    partners: dict[int, list[str]] = {}
    for p in db.session.scalars(
        sa.select(Pairing)
        .options(joinedload(Pairing.east_unit))
        .where(
            Pairing.west_unit_id.in_(ids),
            overlaps(Pairing.valid_from, Pairing.valid_to, quarter.start, quarter.end),
            among(Pairing.id, pairings),
        )
        .order_by(Pairing.valid_from)
    ):
        partners.setdefault(p.west_unit_id, []).append(p.east_unit.display_name)
    # Counted as the 项目数 indicator counts: the year's projects approved by the cut-off, not terminated.
    project_counts = projects.project_counts_by_county(ids, pairings, ytd)
    money = projects.money_by_county(ids, pairings, until=quarter.end)
    people = placements.people_by_county(ids, pairings, ytd)
    consumption = purchases.amount_by_county(ids, pairings, ytd)
    return tuple(
        CountyRow(
            id=c.id,
            name=c.name,
            partners="、".join(dict.fromkeys(partners.get(c.id, []))),
            projects=int(project_counts.get(c.id, 0)),
            arrived=money.get((c.id, FundStage.ARRIVED), 0),
            disbursed=money.get((c.id, FundStage.DISBURSED), 0),
            people=people.get(c.id, (0, 0))[0],
            people_lifted=people.get(c.id, (0, 0))[1],
            consumption=int(consumption.get(c.id) or 0),
        )  # fmt: skip
        for c in counties
    )


def narrative_of(unit_id: int, quarter: Quarter) -> Narrative:
    row = db.session.scalar(
        sa.select(QuarterNarrative).where(
            QuarterNarrative.unit_id == unit_id,
            QuarterNarrative.year == quarter.year,
            QuarterNarrative.quarter == quarter.number,
        )
    )
    if row is None:
        return Narrative()
    return Narrative(
        highlights=row.highlights, problems=row.problems, next_steps=row.next_steps,
        updated_by=row.updated_by_name, updated_at=row.updated_at,
    )  # fmt: skip
